using System.Globalization;
using System.Text.Json;

namespace Meridian.Ingestion.Tracking;

/// <summary>Why a message was not accepted: stable codes, stored with the reject and counted per source and day.</summary>
public static class RejectReasons
{
    public const string InvalidJson = "invalid_json";
    public const string NotAnObject = "not_an_object";
    public const string UnknownType = "unknown_type";
    public const string MissingIdentity = "missing_identity";
    public const string MissingEvent = "missing_event";
    public const string MissingPreviousId = "missing_previous_id";
    public const string MissingGroupId = "missing_group_id";
    public const string InvalidField = "invalid_field";
    public const string InvalidTimestamp = "invalid_timestamp";
    public const string EventTooLarge = "event_too_large";
    public const string BatchTooLarge = "batch_too_large";
    public const string EmptyBatch = "empty_batch";
    public const string SourceDisabled = "source_disabled";

    // Bulk import: a row of a file that cannot become a message.
    public const string InvalidCsv = "invalid_csv";
    public const string InvalidEncoding = "invalid_encoding";
    public const string InvalidNumber = "invalid_number";
    public const string InvalidDate = "invalid_date";
    public const string MissingOrderId = "missing_order_id";
}

/// <summary>A message that passed validation, ready to store.</summary>
public sealed record AcceptedMessage(
    string MessageId, string Type, string? Name, string? UserId, string? AnonymousId, DateTime Timestamp, string Payload, int Index);

public sealed record RejectedMessage(int? Index, string? MessageId, string Reason, string Detail, string Payload);

/// <summary>
/// Reads Segment-Spec messages (identify, track, page, screen, group, alias) as the official SDKs send them, and
/// decides for each whether it can be accepted. Lenient where the SDKs differ (ids as numbers, <c>originalTimestamp</c>
/// from RudderStack), strict where data would be wrong (a timestamp that is not a date, a track without an event).
/// </summary>
public static class SegmentMessages
{
    public const int MaxEventBytes = 32 * 1024;
    public const int MaxBatchBytes = 500 * 1024;
    public static readonly string[] Types = ["identify", "track", "page", "screen", "group", "alias"];

    /// <summary>Validates one message; <paramref name="pathType"/> is the type the endpoint implies (null in a batch).</summary>
    public static (AcceptedMessage? Accepted, RejectedMessage? Rejected) Read(
        JsonElement item, string raw, string? pathType, int index, DateTime receivedAt, DateTime? batchSentAt)
    {
        int? at = pathType is null ? index : null;
        RejectedMessage Reject(string reason, string detail, string? messageId = null) => new(at, messageId, reason, detail, raw);

        if (item.ValueKind != JsonValueKind.Object) return (null, Reject(RejectReasons.NotAnObject, "A message must be a JSON object."));
        if (System.Text.Encoding.UTF8.GetByteCount(raw) > MaxEventBytes)
            return (null, Reject(RejectReasons.EventTooLarge, $"A message may be at most {MaxEventBytes / 1024} KB."));

        if (!TryText(item, "messageId", out var messageId)) return (null, Reject(RejectReasons.InvalidField, "messageId must be a string."));
        messageId ??= "mdn-" + Guid.CreateVersion7(receivedAt).ToString("N");
        if (messageId.Length > 200) return (null, Reject(RejectReasons.InvalidField, "messageId may be at most 200 characters."));

        string? type = pathType;
        if (type is null)
        {
            if (!TryText(item, "type", out type) || type is null) return (null, Reject(RejectReasons.UnknownType, "Each batch item needs a type.", messageId));
            type = type.ToLowerInvariant();
        }
        if (!Types.Contains(type)) return (null, Reject(RejectReasons.UnknownType, $"'{type}' is not one of {string.Join(", ", Types)}.", messageId));

        if (!TryText(item, "userId", out var userId)) return (null, Reject(RejectReasons.InvalidField, "userId must be a string or a number.", messageId));
        if (!TryText(item, "anonymousId", out var anonymousId)) return (null, Reject(RejectReasons.InvalidField, "anonymousId must be a string or a number.", messageId));
        if (userId?.Length > 500 || anonymousId?.Length > 500) return (null, Reject(RejectReasons.InvalidField, "userId and anonymousId may be at most 500 characters.", messageId));
        if (string.IsNullOrWhiteSpace(userId) && string.IsNullOrWhiteSpace(anonymousId))
            return (null, Reject(RejectReasons.MissingIdentity, "A message needs a userId or an anonymousId.", messageId));

        string? name = null;
        switch (type)
        {
            case "track":
                if (!TryText(item, "event", out name) || string.IsNullOrWhiteSpace(name))
                    return (null, Reject(RejectReasons.MissingEvent, "A track needs the name of the event in 'event'.", messageId));
                break;
            case "page" or "screen":
                if (!TryText(item, "name", out name)) return (null, Reject(RejectReasons.InvalidField, "name must be a string.", messageId));
                break;
            case "alias":
                if (!TryText(item, "previousId", out var previous) || string.IsNullOrWhiteSpace(previous) || string.IsNullOrWhiteSpace(userId))
                    return (null, Reject(RejectReasons.MissingPreviousId, "An alias needs a userId and the previousId it replaces.", messageId));
                break;
            case "group":
                if (!TryText(item, "groupId", out var groupId) || string.IsNullOrWhiteSpace(groupId))
                    return (null, Reject(RejectReasons.MissingGroupId, "A group call needs a groupId.", messageId));
                break;
        }
        if (name?.Length > 500) return (null, Reject(RejectReasons.InvalidField, "The event or page name may be at most 500 characters.", messageId));

        if (!TryDate(item, "timestamp", out var timestamp) || !TryDate(item, "originalTimestamp", out var original) || !TryDate(item, "sentAt", out var sentAt))
            return (null, Reject(RejectReasons.InvalidTimestamp, "timestamp, originalTimestamp and sentAt must be ISO 8601 dates.", messageId));

        return (new AcceptedMessage(messageId, type, name, userId, anonymousId,
            EventTime(timestamp ?? original, sentAt ?? batchSentAt, receivedAt), raw, index), null);
    }

    /// <summary>
    /// The client's clock may be wrong, but the gap between when it recorded the event and when it sent it is right:
    /// <c>timestamp = receivedAt - (sentAt - timestamp)</c>. Without sentAt the client's time is taken as is.
    /// </summary>
    public static DateTime EventTime(DateTime? clientTime, DateTime? sentAt, DateTime receivedAt) =>
        clientTime is not { } t ? receivedAt
        : sentAt is { } s ? receivedAt - (s - t)
        : t;

    /// <summary>A string field, or a number written as one (SDKs send numeric user ids); false if it is anything else.</summary>
    public static bool TryText(JsonElement item, string property, out string? value)
    {
        value = null;
        if (!item.TryGetProperty(property, out var p)) return true;
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                value = p.GetString();
                return value is null || !value.Contains('\0', StringComparison.Ordinal);
            case JsonValueKind.Number:
                value = p.GetRawText();
                return true;
            case JsonValueKind.Null:
                return true;
            default:
                return false;
        }
    }

    public static bool TryDate(JsonElement item, string property, out DateTime? value)
    {
        value = null;
        if (!item.TryGetProperty(property, out var p) || p.ValueKind == JsonValueKind.Null) return true;
        if (p.ValueKind != JsonValueKind.String
            || !DateTimeOffset.TryParse(p.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
            || parsed.Year < 1970 || parsed.Year > 9000)
            return false;
        value = parsed.UtcDateTime;
        return true;
    }
}
