using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Meridian.Ingestion.Tracking;

public sealed record TrackResponse(bool Success, int Accepted, int Duplicates, IReadOnlyList<RejectedItem> Rejected);

public sealed record RejectedItem(int? Index, string? MessageId, string Reason, string Detail);

/// <summary>
/// The HTTP Tracking API of the Segment Spec, so that Segment's and RudderStack's SDKs work unchanged when pointed
/// at Meridian: <c>/v1/identify|track|page|screen|group|alias|batch</c>, write key as HTTP Basic user name or
/// <c>writeKey</c> in the body. Every message is stored before the 200; what cannot be accepted is stored as a reject.
/// </summary>
public static class TrackingEndpoints
{
    public const string RateLimitPolicy = "ingestion";

    public static IEndpointRouteBuilder MapTracking(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("Tracking API").RequireRateLimiting(RateLimitPolicy);
        foreach (var type in SegmentMessages.Types)
            v1.MapPost("/" + type, (HttpContext http, WriteKeyStore keys, IngestWriter store, TenantScope tenant, TimeProvider time, CancellationToken ct) =>
                Receive(http, type, keys, store, tenant, time, ct)).WithName("track-" + type);
        v1.MapPost("/batch", Batch);
        v1.MapPost("/import", Batch).WithName("import");
        return app;
    }

    public static Task<Results<Ok<TrackResponse>, ProblemHttpResult>> Batch(
        HttpContext http, WriteKeyStore keys, IngestWriter store, TenantScope tenant, TimeProvider time, CancellationToken ct) =>
        Receive(http, null, keys, store, tenant, time, ct);

    private static async Task<Results<Ok<TrackResponse>, ProblemHttpResult>> Receive(
        HttpContext http, string? type, WriteKeyStore keys, IngestWriter store, TenantScope tenant, TimeProvider time, CancellationToken ct)
    {
        var receivedAt = time.GetUtcNow().UtcDateTime;
        var limit = type is null ? SegmentMessages.MaxBatchBytes : SegmentMessages.MaxEventBytes;
        var (body, tooLarge) = await ReadBodyAsync(http.Request, limit, ct);
        var text = Encoding.UTF8.GetString(body);

        JsonDocument? document = null;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            // handled below, once the source is known, so that the reject can be stored
        }
        using var _ = document;
        var root = document?.RootElement;

        var writeKey = WriteKeyStore.FromBasicAuth(http.Request)
            ?? (root is { ValueKind: JsonValueKind.Object } r && r.TryGetProperty("writeKey", out var wk) && wk.ValueKind == JsonValueKind.String ? wk.GetString() : null);
        var source = string.IsNullOrEmpty(writeKey) ? null : await keys.FindAsync(writeKey, ct);
        if (source is null)
            return TypedResults.Problem(statusCode: 401, type: ProblemTypes.Unauthorized, title: "Authentication is required.",
                detail: "Send the source's write key as the HTTP Basic user name (or as 'writeKey' in the body).");
        tenant.Restrict(source.GroupId, [source.TenantId], source.TenantId);

        async Task<ProblemHttpResult> RejectWhole(string reason, string detail)
        {
            await store.StoreAsync(new IngestBatch(source, [], [new RejectedMessage(null, null, reason, detail, text)], receivedAt, null));
            var problem = TypedResults.Problem(statusCode: 400, type: ProblemTypes.Validation, title: "The message was not accepted.", detail: detail,
                extensions: new Dictionary<string, object?> { ["reason"] = reason });
            return problem;
        }

        if (tooLarge)
            return await RejectWhole(type is null ? RejectReasons.BatchTooLarge : RejectReasons.EventTooLarge,
                $"The body exceeds {limit / 1024} KB; a single message may be at most {SegmentMessages.MaxEventBytes / 1024} KB and a batch {SegmentMessages.MaxBatchBytes / 1024} KB.");
        if (root is not { } json) return await RejectWhole(RejectReasons.InvalidJson, "The body is not valid JSON.");
        if (json.ValueKind != JsonValueKind.Object) return await RejectWhole(RejectReasons.NotAnObject, "The body must be a JSON object.");
        if (!source.Enabled) return await RejectWhole(RejectReasons.SourceDisabled, "The source is disabled; its events are kept as rejects.");

        var accepted = new List<AcceptedMessage>();
        var rejected = new List<RejectedMessage>();
        string? batchContext = null;
        if (type is not null)
        {
            var (ok, bad) = SegmentMessages.Read(json, text, type, 0, receivedAt, null);
            if (bad is not null) return await RejectWhole(bad.Reason, bad.Detail);
            accepted.Add(ok!);
        }
        else
        {
            if (!json.TryGetProperty("batch", out var batch) || batch.ValueKind != JsonValueKind.Array)
                return await RejectWhole(RejectReasons.EmptyBatch, "A batch needs a 'batch' array of messages.");
            if (!SegmentMessages.TryDate(json, "sentAt", out var batchSentAt))
                return await RejectWhole(RejectReasons.InvalidTimestamp, "sentAt must be an ISO 8601 date.");
            if (json.TryGetProperty("context", out var context) && context.ValueKind == JsonValueKind.Object) batchContext = context.GetRawText();
            var index = 0;
            foreach (var item in batch.EnumerateArray())
            {
                var (ok, bad) = SegmentMessages.Read(item, item.GetRawText(), null, index++, receivedAt, batchSentAt);
                if (ok is not null) accepted.Add(ok);
                else rejected.Add(bad!);
            }
        }

        var result = await store.StoreAsync(new IngestBatch(source, accepted, rejected, receivedAt, batchContext));
        return TypedResults.Ok(new TrackResponse(true, result.Accepted, result.Duplicates,
            rejected.Select(r => new RejectedItem(r.Index, r.MessageId, r.Reason, r.Detail)).ToList()));
    }

    /// <summary>Reads at most <paramref name="limit"/> bytes (gunzipping if the SDK compressed them); flags a longer body.</summary>
    private static async Task<(byte[] Body, bool TooLarge)> ReadBodyAsync(HttpRequest request, int limit, CancellationToken ct)
    {
        var input = request.Headers.ContentEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase)
            ? new GZipStream(request.Body, CompressionMode.Decompress)
            : request.Body;
        await using var _ = input == request.Body ? null : input;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await input.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    buffer.Write(chunk, 0, (int)Math.Min(read, limit - buffer.Length));
                    return (buffer.ToArray(), true);
                }
                buffer.Write(chunk, 0, read);
            }
        }
        catch (InvalidDataException)
        {
            return ([], false); // not gzip after all: an empty body, rejected as invalid JSON
        }
        return (buffer.ToArray(), false);
    }
}
