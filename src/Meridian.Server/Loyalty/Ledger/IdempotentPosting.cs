using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// Runs a value-moving request at most once per <c>Idempotency-Key</c> (per brand). The first successful response is
/// stored in the transaction that moved the points, so a retry gets it back byte for byte whether the first attempt
/// committed or not; the same key with another request is refused with 422. Refusals (404, 409) are not stored: the
/// points did not move, and a retry is judged afresh. Two requests racing with one key meet at the key's unique index.
/// </summary>
public sealed class IdempotentPosting(MeridianDb db, TenantScope tenant, TimeProvider time)
{
    public const string Header = "Idempotency-Key";
    private static readonly JsonSerializerOptions Json = MeridianJson.Options;

    public async Task<IResult> RunAsync<TResponse>(HttpContext http, object request, Func<Task<TResponse?>> post, string notFound, CancellationToken ct)
        where TResponse : class
    {
        var key = http.Request.Headers[Header].ToString();
        if (string.IsNullOrWhiteSpace(key) || key.Length > 200)
            return Problems.Validation(Header, "Send an Idempotency-Key header (at most 200 characters) with every request that moves points.");
        var hash = IdempotencyKeys.RequestHash(http.Request.Method, http.Request.Path, request);
        if (await FindAsync(key, ct) is { } earlier) return Replay(earlier, hash);

        try
        {
            // SQLite: the postings of this process write in turn (a FIFO) rather than in SQLite's sleep-and-retry on its
            // one write lock, where 16 concurrent earns idled most of the time (single earns 186-284/s).
            using var turn = await db.Database.WriterTurnAsync(ct);
            using var noSavepoints = PointsLedger.NoSavepoints(db);
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            if (await post() is not { } response) return Problems.NotFound(notFound);
            var stored = new IdempotentRequest
            {
                TenantId = tenant.Brand, Key = key, RequestHash = hash, StatusCode = StatusCodes.Status200OK,
                Body = JsonSerializer.Serialize(response, Json), CreatedAt = Instants.Now(time),
            };
            db.Add(stored);
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
            return Stored(stored);
        }
        catch (DbUpdateException)
        {
            // Most likely a concurrent request with the same key committed first: answer as it did.
            db.ChangeTracker.Clear();
            if (await FindAsync(key, ct) is { } raced) return Replay(raced, hash);
            throw;
        }
    }

    private Task<IdempotentRequest?> FindAsync(string key, CancellationToken ct) =>
        db.Set<IdempotentRequest>().AsNoTracking().SingleOrDefaultAsync(r => r.TenantId == tenant.Brand && r.Key == key, ct);

    private static IResult Replay(IdempotentRequest earlier, string hash) => earlier.RequestHash == hash
        ? Stored(earlier)
        : TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, type: ProblemTypes.IdempotencyKeyReused,
            title: "The Idempotency-Key was used for another request.",
            detail: "This key came with a different request earlier; repeat that request exactly, or send a new key.");

    private static IResult Stored(IdempotentRequest stored) => Results.Content(stored.Body, "application/json; charset=utf-8", Encoding.UTF8, stored.StatusCode);
}
