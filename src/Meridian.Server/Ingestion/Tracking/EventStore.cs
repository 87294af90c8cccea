using System.Data.Common;
using System.Text;
using Meridian.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Ingestion.Tracking;

public sealed record StoreResult(int Accepted, int Duplicates, int Rejected);

/// <summary>
/// The ingestion write path: accepted messages, rejects and the day's counters in one transaction, as multi-row
/// inserts on the context's own connection (measured: change tracking would cost more than the inserts). A repeated
/// messageId of the same source is dropped by the unique key, so client retries are harmless.
/// </summary>
public sealed class EventStore(MeridianDb db, EventLogSignal appended)
{
    private const int RowsPerStatement = 200;

    public Task<StoreResult> StoreAsync(WriteKeySource source, IReadOnlyList<AcceptedMessage> accepted,
        IReadOnlyList<RejectedMessage> rejected, DateTime receivedAt, string? batchContext, CancellationToken ct) =>
        StoreAsync(source, accepted, rejected, receivedAt, batchContext, null, ct);

    /// <summary>
    /// As above; <paramref name="alsoInTransaction"/> runs before the commit, told what was stored, so that a caller's own
    /// bookkeeping (an import's progress) commits with the events or not at all. It may throw to roll everything back.
    /// </summary>
    public async Task<StoreResult> StoreAsync(WriteKeySource source, IReadOnlyList<AcceptedMessage> accepted,
        IReadOnlyList<RejectedMessage> rejected, DateTime receivedAt, string? batchContext,
        Func<DbTransaction, StoreResult, CancellationToken, Task>? alsoInTransaction, CancellationToken ct)
    {
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var tx = transaction.GetDbTransaction();
            var inserted = 0;
            foreach (var chunk in accepted.Chunk(RowsPerStatement))
                inserted += await InsertEventsAsync(tx, source, chunk, receivedAt, batchContext, ct);
            foreach (var chunk in rejected.Chunk(RowsPerStatement))
                await InsertRejectsAsync(tx, source, chunk, receivedAt, ct);
            await CountAsync(tx, source, receivedAt, inserted, accepted.Count - inserted, rejected, accepted.Count > 0 ? accepted.Max(m => m.Timestamp) : null, ct);
            var result = new StoreResult(inserted, accepted.Count - inserted, rejected.Count);
            if (alsoInTransaction is not null) await alsoInTransaction(tx, result, ct);
            await transaction.CommitAsync(ct);
            if (inserted > 0) appended.Notify();
            return result;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static async Task<int> InsertEventsAsync(DbTransaction tx, WriteKeySource source, AcceptedMessage[] rows,
        DateTime receivedAt, string? batchContext, CancellationToken ct)
    {
        await using var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        var sql = new StringBuilder("INSERT INTO events (tenant_id, source_id, message_id, type, name, user_id, anonymous_id, timestamp, received_at, payload, batch_context) VALUES ");
        Add(command, "t", source.TenantId);
        Add(command, "s", source.SourceId);
        Add(command, "r", receivedAt);
        Add(command, "c", batchContext);
        for (var i = 0; i < rows.Length; i++)
        {
            var m = rows[i];
            if (i > 0) sql.Append(',');
            sql.Append($"(@t, @s, @m{i}, @y{i}, @n{i}, @u{i}, @a{i}, @ts{i}, @r, @p{i}, @c)");
            Add(command, $"m{i}", m.MessageId);
            Add(command, $"y{i}", m.Type);
            Add(command, $"n{i}", m.Name);
            Add(command, $"u{i}", m.UserId);
            Add(command, $"a{i}", m.AnonymousId);
            Add(command, $"ts{i}", m.Timestamp);
            Add(command, $"p{i}", m.Payload);
        }
        sql.Append(" ON CONFLICT (source_id, message_id) DO NOTHING");
        command.CommandText = sql.ToString();
        return await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task InsertRejectsAsync(DbTransaction tx, WriteKeySource source, RejectedMessage[] rows, DateTime receivedAt, CancellationToken ct)
    {
        await using var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        var sql = new StringBuilder("INSERT INTO rejected_events (tenant_id, source_id, received_at, reason, detail, message_id, batch_index, payload) VALUES ");
        Add(command, "t", source.TenantId);
        Add(command, "s", source.SourceId);
        Add(command, "r", receivedAt);
        for (var i = 0; i < rows.Length; i++)
        {
            var m = rows[i];
            if (i > 0) sql.Append(',');
            sql.Append($"(@t, @s, @r, @why{i}, @d{i}, @m{i}, @i{i}, @p{i})");
            Add(command, $"why{i}", m.Reason);
            Add(command, $"d{i}", m.Detail.Length > 1000 ? m.Detail[..1000] : m.Detail);
            Add(command, $"m{i}", m.MessageId is { Length: > 200 } id ? id[..200] : m.MessageId);
            Add(command, $"i{i}", m.Index);
            // A rejected payload may be invalid UTF-16 or hold NULs (which PostgreSQL refuses): keep it readable instead.
            Add(command, $"p{i}", m.Payload.Replace('\0', '\uFFFD'));
        }
        command.CommandText = sql.ToString();
        await command.ExecuteNonQueryAsync(ct);
    }

    private async Task CountAsync(DbTransaction tx, WriteKeySource source, DateTime receivedAt, int accepted, int duplicates,
        IReadOnlyList<RejectedMessage> rejected, DateTime? lastEventAt, CancellationToken ct)
    {
        var day = receivedAt.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var greatest = db.Database.IsNpgsql() ? "GREATEST" : "MAX";
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
            Add(command, "s", source.SourceId);
            Add(command, "d", day);
            Add(command, "t", source.TenantId);
            Add(command, "a", (long)accepted);
            Add(command, "dup", (long)duplicates);
            Add(command, "rej", (long)rejected.Count);
            Add(command, "last", lastEventAt);
            await command.ExecuteNonQueryAsync(ct);
        }
        foreach (var group in rejected.GroupBy(r => r.Reason))
        {
            await using var command = tx.Connection!.CreateCommand();
            command.Transaction = tx;
            command.CommandText = """
                INSERT INTO source_daily_rejections (source_id, day, reason, tenant_id, count) VALUES (@s, @d, @why, @t, @n)
                ON CONFLICT (source_id, day, reason) DO UPDATE SET count = source_daily_rejections.count + excluded.count
                """;
            Add(command, "s", source.SourceId);
            Add(command, "d", day);
            Add(command, "why", group.Key);
            Add(command, "t", source.TenantId);
            Add(command, "n", (long)group.Count());
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    private static void Add(DbCommand command, string name, object? value)
    {
        var p = command.CreateParameter();
        // With the '@' written out, Microsoft.Data.Sqlite binds by one lookup instead of trying each prefix in turn
        // (measured: that search dominated the cost of a 200-row insert).
        p.ParameterName = "@" + name;
        p.Value = value ?? DBNull.Value;
        command.Parameters.Add(p);
    }
}
