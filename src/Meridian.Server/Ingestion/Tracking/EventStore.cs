using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Ingestion.Tracking;

public sealed record StoreResult(int Accepted, int Duplicates, int Rejected);

/// <summary>What one request (or one import chunk) hands to the store: its messages, its rejects and when it arrived.</summary>
public sealed record IngestBatch(WriteKeySource Source, IReadOnlyList<AcceptedMessage> Accepted, IReadOnlyList<RejectedMessage> Rejected,
    DateTime ReceivedAt, string? BatchContext)
{
    public int Rows => Accepted.Count + Rejected.Count;
}

/// <summary>
/// The ingestion write path: accepted messages, rejects and the day's counters in one transaction, as multi-row
/// inserts on the context's own connection (measured: change tracking would cost more than the inserts). A repeated
/// messageId of the same source is dropped by the unique key, so client retries are harmless. Several batches may
/// share one transaction (<see cref="IngestWriter"/>'s group commit); their counters are then added up first, so the
/// per-source counter row is written once per commit, not once per request.
/// </summary>
public sealed class EventStore(MeridianDb db, EventLogSignal appended)
{
    public async Task<StoreResult> StoreAsync(IngestBatch batch, CancellationToken ct) => (await StoreAsync([batch], null, ct))[0];

    /// <summary>
    /// Stores the batches in one transaction. <paramref name="alsoInTransaction"/> runs before the commit, told what was
    /// stored, so that a caller's own bookkeeping (an import's progress) commits with the events or not at all. It may
    /// throw to roll everything back.
    /// </summary>
    public async Task<StoreResult[]> StoreAsync(IReadOnlyList<IngestBatch> batches,
        Func<DbTransaction, StoreResult[], CancellationToken, Task>? alsoInTransaction, CancellationToken ct)
    {
        await using var open = await db.Database.OpenedAsync(ct);
        // In turn with identity resolution (SQLite): group commits follow each other at once, and left to SQLite's
        // sleep-and-retry the projector lost nearly every race for the lock (100-300 ms a batch, measured).
        using var turn = await db.Database.WriterTurnAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var tx = transaction.GetDbTransaction();
        var results = new StoreResult[batches.Count];
        for (var b = 0; b < batches.Count; b++)
        {
            var batch = batches[b];
            var inserted = await BulkInsert.InsertAsync(tx, "events", EventColumns, EventRows(batch), " ON CONFLICT (source_id, message_id) DO NOTHING", ct);
            await BulkInsert.InsertAsync(tx, "rejected_events", RejectColumns, RejectRows(batch), "", ct);
            results[b] = new StoreResult(inserted, batch.Accepted.Count - inserted, batch.Rejected.Count);
        }
        await CountAsync(tx, batches, results, ct);
        if (alsoInTransaction is not null) await alsoInTransaction(tx, results, ct);
        await transaction.CommitAsync(ct);
        if (results.Any(r => r.Accepted > 0)) appended.Notify();
        return results;
    }

    private static readonly string[] EventColumns =
        ["tenant_id", "source_id", "message_id", "type", "name", "user_id", "anonymous_id", "timestamp", "received_at", "payload", "batch_context"];

    private static readonly string[] RejectColumns =
        ["tenant_id", "source_id", "received_at", "reason", "detail", "message_id", "batch_index", "payload"];

    private static IEnumerable<object?[]> EventRows(IngestBatch batch) => batch.Accepted.Select(m => new object?[]
    {
        batch.Source.TenantId, batch.Source.SourceId, m.MessageId, m.Type, m.Name, m.UserId, m.AnonymousId, m.Timestamp, batch.ReceivedAt,
        m.Payload, batch.BatchContext,
    });

    private static IEnumerable<object?[]> RejectRows(IngestBatch batch) => batch.Rejected.Select(m => new object?[]
    {
        batch.Source.TenantId, batch.Source.SourceId, batch.ReceivedAt, m.Reason, m.Detail.Length > 1000 ? m.Detail[..1000] : m.Detail,
        m.MessageId is { Length: > 200 } id ? id[..200] : m.MessageId, m.Index,
        // A rejected payload may be invalid UTF-16 or hold NULs (which PostgreSQL refuses): keep it readable instead.
        m.Payload.Replace('\0', '\uFFFD'),
    });

    private async Task CountAsync(DbTransaction tx, IReadOnlyList<IngestBatch> batches, StoreResult[] results, CancellationToken ct)
    {
        var greatest = db.Database.IsNpgsql() ? "GREATEST" : "MAX";
        var days = batches.Select((b, i) => (Batch: b, Result: results[i], Day: Day(b.ReceivedAt)))
            .GroupBy(x => (x.Batch.Source.SourceId, x.Batch.Source.TenantId, x.Day));
        foreach (var day in days)
        {
            await using (var command = tx.Connection!.CreateCommand())
            {
                command.Transaction = tx;
                command.CommandText = $"""
                    INSERT INTO source_daily_stats (source_id, day, tenant_id, accepted, duplicates, rejected, last_event_at)
                    VALUES (@s, @d, @t, @a, @dup, @rej, @last)
                    ON CONFLICT (source_id, day) DO UPDATE SET
                      accepted = source_daily_stats.accepted + excluded.accepted,
                      duplicates = source_daily_stats.duplicates + excluded.duplicates,
                      rejected = source_daily_stats.rejected + excluded.rejected,
                      last_event_at = COALESCE({greatest}(source_daily_stats.last_event_at, excluded.last_event_at), source_daily_stats.last_event_at, excluded.last_event_at)
                    """;
                command.AddParameter("@s", day.Key.SourceId);
                command.AddParameter("@d", day.Key.Day);
                command.AddParameter("@t", day.Key.TenantId);
                command.AddParameter("@a", (long)day.Sum(x => x.Result.Accepted));
                command.AddParameter("@dup", (long)day.Sum(x => x.Result.Duplicates));
                command.AddParameter("@rej", (long)day.Sum(x => x.Result.Rejected));
                command.AddParameter("@last", day.SelectMany(x => x.Batch.Accepted).Select(m => (DateTime?)m.Timestamp).Max());
                await command.ExecuteNonQueryAsync(ct);
            }
            foreach (var reason in day.SelectMany(x => x.Batch.Rejected).GroupBy(r => r.Reason))
                await AddToDailyCountAsync(tx, "source_daily_rejections", "reason", day.Key.TenantId, day.Key.SourceId, day.Key.Day, reason.Key, reason.Count(), ct);
        }
    }

    /// <summary>
    /// Adds to the per-day counts of identifiers that could not be normalised, in the caller's transaction (identity
    /// resolution counts them with the batch it commits, so each is counted once).
    /// </summary>
    public static async Task CountIdentifierFailuresAsync(DbTransaction tx, IEnumerable<(long TenantId, long SourceId, DateTime ReceivedAt, string Type)> failures,
        CancellationToken ct)
    {
        foreach (var group in failures.GroupBy(f => (f.TenantId, f.SourceId, Day: Day(f.ReceivedAt), f.Type)))
            await AddToDailyCountAsync(tx, "source_daily_identifier_failures", "identifier_type", group.Key.TenantId, group.Key.SourceId, group.Key.Day,
                group.Key.Type, group.Count(), ct);
    }

    /// <summary>Adds <paramref name="n"/> to a per source, day and key counter (rejects by reason, identifier failures by type).</summary>
    private static async Task AddToDailyCountAsync(DbTransaction tx, string table, string keyColumn, long tenantId, long sourceId, string day, string key,
        long n, CancellationToken ct)
    {
        await using var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        command.CommandText = $"""
            INSERT INTO {table} (source_id, day, {keyColumn}, tenant_id, count) VALUES (@s, @d, @k, @t, @n)
            ON CONFLICT (source_id, day, {keyColumn}) DO UPDATE SET count = {table}.count + excluded.count
            """;
        command.AddParameter("@s", sourceId);
        command.AddParameter("@d", day);
        command.AddParameter("@k", key);
        command.AddParameter("@t", tenantId);
        command.AddParameter("@n", n);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static string Day(DateTime receivedAt) => receivedAt.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
}
