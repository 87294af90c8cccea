using System.Text.Json;

namespace Meridian.Messaging.Channels;

/// <summary>A message rendered for one customer, ready for its channel.</summary>
public sealed record Outgoing(long MessageId, long BrandId, string BrandSlug, long ProfileId, string? To, string? Subject, string Body, JsonElement Settings);

/// <summary>What a channel did with a message: accepted it, failed for now (retry later) or failed for good.</summary>
public sealed record ChannelResult(bool Sent, bool Permanent, string? ExternalId, string? Error)
{
    public static ChannelResult Accepted(string? externalId = null) => new(true, false, externalId, null);
    public static ChannelResult Retry(string error) => new(false, false, null, error);
    public static ChannelResult Fail(string error) => new(false, true, null, error);
}

/// <summary>One way of reaching a customer. Errors it returns name no address and no content: they are stored and shown to staff.</summary>
public interface IMessageChannel
{
    string Name { get; }
    /// <summary>The identifier type the message goes to (<c>phone</c>, <c>email</c>), or null when it needs none.</summary>
    string? AddressType { get; }
    /// <summary>The consent channel (<see cref="Profiles.Data.Consents.Channels"/>) checked before sending.</summary>
    string ConsentChannel(JsonElement settings);
    /// <summary>Why the brand's settings cannot send (null: they can); checked when they are saved and before each send.</summary>
    string? Invalid(JsonElement settings);
    /// <summary>Members of the settings that are secrets: shown shortened, kept when a change leaves them out.</summary>
    string[] Secrets { get; }
    Task<ChannelResult> SendAsync(Outgoing message, CancellationToken ct);
}

internal static class ChannelSettingsJson
{
    public static string? String(JsonElement settings, string name) =>
        settings.ValueKind == JsonValueKind.Object && settings.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static int? Int(JsonElement settings, string name) =>
        settings.ValueKind == JsonValueKind.Object && settings.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    public static bool? Bool(JsonElement settings, string name) =>
        settings.ValueKind == JsonValueKind.Object && settings.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    /// <summary>An absolute http(s) URL, or null.</summary>
    public static Uri? Url(JsonElement settings, string name) =>
        String(settings, name) is { } text && Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? uri : null;

    /// <summary>Enough of a secret to recognise it, never enough to use it.</summary>
    public static string Mask(string secret) => secret.Length <= 8 ? "…" : secret[..4] + "…" + secret[^2..];

    /// <summary>The settings with the named members masked.</summary>
    public static JsonElement WithMasked(JsonElement settings, params string[] secrets)
    {
        if (settings.ValueKind != JsonValueKind.Object) return settings;
        var copy = System.Text.Json.Nodes.JsonNode.Parse(settings.GetRawText())!.AsObject();
        foreach (var name in secrets)
            if (String(settings, name) is { } secret) copy[name] = Mask(secret);
        return JsonSerializer.SerializeToElement(copy);
    }
}

/// <summary>SMS through the brand's HTTP gateway (settings: <c>gatewayUrl</c>, <c>token</c>).</summary>
internal sealed class SmsChannel(IHttpClientFactory clients) : IMessageChannel
{
    public string Name => MessageChannels.Sms;
    public string? AddressType => "phone";
    public string ConsentChannel(JsonElement settings) => "sms";

    public string? Invalid(JsonElement settings) =>
        ChannelSettingsJson.Url(settings, "gatewayUrl") is null ? "gatewayUrl: an absolute http or https URL of the SMS gateway is required." : null;

    public string[] Secrets => ["token"];

    public async Task<ChannelResult> SendAsync(Outgoing message, CancellationToken ct)
    {
        // A client per send (the factory rotates handlers); this channel lives as long as the delivery worker.
        var gateway = new SmsGateway(clients.CreateClient(nameof(SmsGateway)));
        var result = await gateway.SendAsync(ChannelSettingsJson.Url(message.Settings, "gatewayUrl")!, ChannelSettingsJson.String(message.Settings, "token"),
            message.To!, message.Body, message.BrandSlug, $"msg_{message.MessageId}", ct);
        return result.Accepted ? ChannelResult.Accepted(result.MessageId ?? $"msg_{message.MessageId}")
            : result.Permanent ? ChannelResult.Fail(result.Error!) : ChannelResult.Retry(result.Error!);
    }
}

/// <summary>The in-app inbox: the message row itself is what the customer reads (<c>/api/v1/me/inbox</c>); nothing to configure.</summary>
internal sealed class InboxChannel : IMessageChannel
{
    public string Name => MessageChannels.Inbox;
    public string? AddressType => null;
    public string ConsentChannel(JsonElement settings) => "in_app";
    public string? Invalid(JsonElement settings) => null;
    public string[] Secrets => [];
    public Task<ChannelResult> SendAsync(Outgoing message, CancellationToken ct) => Task.FromResult(ChannelResult.Accepted());
}
