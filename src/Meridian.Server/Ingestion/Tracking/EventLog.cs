using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Ingestion.Tracking;

/// <summary>An accepted message as other modules read it from the event log.</summary>
public sealed record LoggedEvent(long Id, long TxId, long TenantId, long SourceId, string Type, string? Name, string? UserId,
    string? AnonymousId, DateTime Timestamp, string Payload, string? BatchContext, DateTime ReceivedAt);

/// <summary>Raised in this process whenever events are appended to the log, for consumers that follow it.</summary>
public sealed class EventLogSignal : Hosting.WorkSignal;

/// <summary>A place in the event log. Ordered by (TxId, Id); TxId is always 0 on SQLite.</summary>
public readonly record struct EventLogPosition(long TxId, long Id);

/// <summary>
/// The public way to read the event log in order, for consumers such as identity resolution. Reading in id order
/// alone would skip events on PostgreSQL: ids are handed out when a transaction inserts, not when it commits, so a
/// smaller id can become visible after a larger one. Each row therefore carries the id of the transaction that wrote
/// it, and only rows below the <see cref="CommitHorizon"/> are read: nothing can appear behind them.
/// (SQLite has one writer at a time, so its ids become visible in order.)
/// </summary>
public sealed class EventLog(MeridianDb db)
{
    public async Task<IReadOnlyList<LoggedEvent>> ReadAfterAsync(EventLogPosition after, int limit, CancellationToken ct)
    {
        var postgres = db.Database.IsNpgsql();
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = postgres
            ? $"""
              SELECT id, tx_id, tenant_id, source_id, type, name, user_id, anonymous_id, timestamp, payload, batch_context, received_at FROM events
               WHERE (tx_id, id) > (@tx, @id) AND tx_id < {CommitHorizon.Sql("events", "@tx", "@id")}
               ORDER BY tx_id, id LIMIT @limit
              """
            : """
              SELECT id, 0, tenant_id, source_id, type, name, user_id, anonymous_id, timestamp, payload, batch_context, received_at FROM events
               WHERE id > @id ORDER BY id LIMIT @limit
              """;
        command.AddParameter("@tx", after.TxId);
        command.AddParameter("@id", after.Id);
        command.AddParameter("@limit", limit);
        var events = new List<LoggedEvent>(limit);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            events.Add(new LoggedEvent(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6),
                reader.IsDBNull(7) ? null : reader.GetString(7), DateTime.SpecifyKind(reader.GetDateTime(8), DateTimeKind.Utc),
                reader.GetString(9), reader.IsDBNull(10) ? null : reader.GetString(10), DateTime.SpecifyKind(reader.GetDateTime(11), DateTimeKind.Utc)));
        return events;
    }

    /// <summary>How many events lie after a position (a consumer's backlog), counting no further than <paramref name="limit"/> when given.</summary>
    public async Task<long> BacklogAsync(EventLogPosition after, CancellationToken ct, long? limit = null)
    {
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        var newer = db.Database.IsNpgsql() ? "(tx_id, id) > (@tx, @id)" : "id > @id";
        command.CommandText = limit is null
            ? $"SELECT count(*) FROM events WHERE {newer}"
            : $"SELECT count(*) FROM (SELECT 1 FROM events WHERE {newer} LIMIT {limit.Value}) b";
        command.AddParameter("@tx", after.TxId);
        command.AddParameter("@id", after.Id);
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The given events (for a profile's timeline), in no particular order; ids not in the scope's brands are skipped.</summary>
    public async Task<IReadOnlyList<LoggedEvent>> GetAsync(IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        if (ids.Count == 0) return [];
        return await db.Set<RawEvent>().AsNoTracking().Where(e => ids.Contains(e.Id))
            .Select(e => new LoggedEvent(e.Id, 0, e.TenantId, e.SourceId, e.Type, e.Name, e.UserId, e.AnonymousId, e.Timestamp, e.Payload, e.BatchContext, e.ReceivedAt))
            .ToListAsync(ct);
    }

    /// <summary>
    /// Data-subject erasure: the events keep their place (counts and orders stay consistent for accounting) but lose
    /// everything personal: payload, user and anonymous ids.
    /// </summary>
    public async Task<int> EraseAsync(IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        var erased = 0;
        foreach (var chunk in ids.Chunk(500))
            erased += await db.Set<RawEvent>().Where(e => chunk.Contains(e.Id)).ExecuteUpdateAsync(s => s
                .SetProperty(e => e.Payload, "{\"erased\":true}")
                .SetProperty(e => e.BatchContext, (string?)null)
                .SetProperty(e => e.UserId, (string?)null)
                .SetProperty(e => e.AnonymousId, (string?)null), ct);
        return erased;
    }
}
