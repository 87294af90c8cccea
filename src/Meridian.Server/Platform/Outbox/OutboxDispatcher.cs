using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Meridian.Platform.Outbox;

public sealed class OutboxOptions
{
    /// <summary>How often to look for work when no in-process publish has signalled any.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>How long a claimed delivery stays with its node before another node may take it over.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>Deliveries claimed a round (each may wait on a webhook endpoint, so fewer than the messages fanned out).</summary>
    public int BatchSize { get; set; } = 100;
    /// <summary>Messages fanned out a round: one statement writes all their deliveries, one moves the fan-out position past them.</summary>
    public int FanOutBatchSize { get; set; } = 500;
    public int MaxAttempts { get; set; } = 10;
    /// <summary>Identifies this process in leases and in <c>delivered_by</c>; defaults to host name and process id.</summary>
    public string? NodeName { get; set; }
    public bool Enabled { get; set; } = true;
}

/// <summary>Wakes the dispatcher as soon as this process commits an event, so in-process delivery needs no polling delay.</summary>
public sealed class OutboxSignal : Hosting.WorkSignal;

/// <summary>
/// Delivers outbox events to subscribers, at least once. Work is shared through the database: fan-out follows one
/// position in the outbox, which a node moves only from where it read it (so two nodes never both fan out a batch from
/// the same place, nor move the position back), and deliveries are claimed with a lease
/// (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL), so several nodes on one database never work on the same delivery
/// at the same time, and a node that dies mid-delivery leaves it for another once the lease lapses.
/// </summary>
internal sealed class OutboxDispatcher(
    IServiceScopeFactory scopes, IOptions<OutboxOptions> options, OutboxSignal signal, TimeProvider time,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    private readonly OutboxOptions opts = options.Value;
    private readonly string node = options.Value.NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            var busy = false;
            try
            {
                busy = await RunOnceAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Outbox dispatch tick failed");
            }
            if (busy) continue;
            try
            {
                await signal.WaitAsync(opts.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One round of fan-out and delivery. Returns true if it found work (so the caller loops at once).</summary>
    internal async Task<bool> RunOnceAsync(CancellationToken ct)
    {
        var fannedOut = await FanOutAsync(ct);
        var claimed = await ClaimAsync(ct);
        if (claimed.Count > 0) await DeliverAllAsync(claimed, ct);
        return fannedOut > 0 || claimed.Count > 0;
    }

    /// <summary>
    /// Creates one delivery per interested subscriber and target for the next batch of messages after the fan-out
    /// position, and moves the position past them, in one transaction: one statement moves it, one writes the deliveries.
    /// </summary>
    private async Task<int> FanOutAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var (from, messages) = await ReadNextAsync(db, opts.FanOutBatchSize, ct);
        if (messages.Count == 0) return 0;

        var subscribers = scope.ServiceProvider.GetServices<IEventSubscriber>().ToList();
        var now = time.GetUtcNow().UtcDateTime;
        var deliveries = new List<object?[]>();
        foreach (var (_, message) in messages)
            foreach (var subscriber in subscribers)
                foreach (var target in await subscriber.TargetsAsync(message, ct))
                    deliveries.Add([message.Id, subscriber.Name, target, (int)DeliveryStatus.Pending, 0, now]);

        var (lastTx, last) = messages[^1];
        // SQLite: in turn with this process's postings and batches (WriterTurnAsync), not in SQLite's sleep-and-retry.
        using var turn = await db.Database.WriterTurnAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        // Moved only from where this round read it, before anything is written: of two nodes that read the same batch, the
        // second finds no row (on PostgreSQL once the first commits) and gives the round up; its next round reads on.
        var moved = await db.Set<OutboxPosition>()
            .Where(p => p.Name == OutboxPosition.FanOut && p.PositionTx == from.Tx && p.PositionId == from.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.PositionTx, lastTx).SetProperty(p => p.PositionId, last.Id), ct);
        if (moved == 0) return 0;
        // A message may come round again (those the old flag marked fanned out after the first it had not: see the
        // migration OutboxFanOutPosition): the unique key makes its rows no-ops.
        await BulkInsert.InsertAsync(tx.GetDbTransaction(), "outbox_deliveries", ["message_id", "subscriber", "target", "status", "attempts", "next_attempt_at"],
            deliveries, " ON CONFLICT (message_id, subscriber, target) DO NOTHING", ct);
        await tx.CommitAsync(ct);
        return messages.Count;
    }

    /// <summary>
    /// The fan-out position and the next messages after it, each with the transaction that wrote it, in one statement;
    /// every row carries the position as read, which the compare-and-set moves it from. No row (no message after the
    /// position, or no position row) is no work. Reading in id order alone would skip messages on PostgreSQL: ids are
    /// handed out when a transaction inserts, not when it commits, so a smaller id can become visible after a larger
    /// one. Messages are read in (transaction, id) order, and only those below the <see cref="CommitHorizon"/>: nothing can
    /// appear behind them (as <see cref="Ingestion.Tracking.EventLog"/> reads the event log).
    /// SQLite has one writer at a time, so its ids become visible in order.
    /// </summary>
    private static async Task<((long Tx, long Id) From, List<(long Tx, OutboxMessage Message)> Messages)> ReadNextAsync(MeridianDb db, int limit,
        CancellationToken ct)
    {
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        // PostgreSQL: the subquery per position row reads the batch from the (tx_id, id) index.
        command.CommandText = db.Database.IsNpgsql()
            ? $"""
              SELECT p.position_tx, p.position_id, m.tx_id, m.id, m.group_id, m.brand_id, m.type, m.payload, m.occurred_at
                FROM outbox_positions p
               CROSS JOIN LATERAL (
                     SELECT tx_id, id, group_id, brand_id, type, payload, occurred_at FROM outbox_messages
                      WHERE (tx_id, id) > (p.position_tx, p.position_id) AND tx_id < {CommitHorizon.Sql("outbox_messages", "p.position_tx", "p.position_id")}
                      ORDER BY tx_id, id LIMIT @limit) m
               WHERE p.name = @name
               ORDER BY m.tx_id, m.id
              """
            : """
              SELECT p.position_tx, p.position_id, 0, m.id, m.group_id, m.brand_id, m.type, m.payload, m.occurred_at
                FROM outbox_positions p JOIN outbox_messages m ON m.id > p.position_id
               WHERE p.name = @name
               ORDER BY m.id LIMIT @limit
              """;
        command.AddParameter("@name", OutboxPosition.FanOut);
        command.AddParameter("@limit", limit);
        (long, long) from = default;
        var messages = new List<(long, OutboxMessage)>(limit);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            from = (reader.GetInt64(0), reader.GetInt64(1));
            messages.Add((reader.GetInt64(2), new OutboxMessage
            {
                Id = reader.GetInt64(3), GroupId = reader.GetInt64(4), BrandId = reader.IsDBNull(5) ? null : reader.GetInt64(5),
                Type = reader.GetString(6), Payload = reader.GetString(7), OccurredAt = DateTime.SpecifyKind(reader.GetDateTime(8), DateTimeKind.Utc),
            }));
        }
        return (from, messages);
    }

    /// <summary>The messages not fanned out yet: those after the fan-out position.</summary>
    internal static IQueryable<OutboxMessage> NotFannedOut(MeridianDb db) => db.Database.IsNpgsql()
        ? db.Set<OutboxMessage>().FromSql(
            $"SELECT m.* FROM outbox_messages m WHERE (m.tx_id, m.id) > (SELECT position_tx, position_id FROM outbox_positions WHERE name = {OutboxPosition.FanOut})")
        : db.Set<OutboxMessage>().FromSql(
            $"SELECT m.* FROM outbox_messages m WHERE m.id > (SELECT position_id FROM outbox_positions WHERE name = {OutboxPosition.FanOut})");

    private sealed record Claimed(long Id, long MessageId, string Subscriber, string Target, int Attempts);

    private async Task<List<Claimed>> ClaimAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var now = time.GetUtcNow().UtcDateTime;
        var skipLocked = db.Database.IsNpgsql() ? "FOR UPDATE SKIP LOCKED" : "";
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.CommandText = $"""
            UPDATE outbox_deliveries
               SET lease_owner = @owner, lease_until = @until, attempts = attempts + 1
             WHERE id IN (SELECT id FROM outbox_deliveries
                           WHERE status = 0 AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
                           ORDER BY id LIMIT @limit {skipLocked})
               AND status = 0 AND (lease_until IS NULL OR lease_until < @now)
            RETURNING id, message_id, subscriber, target, attempts
            """;
        command.AddParameter("@owner", node);
        command.AddParameter("@until", now + opts.Lease);
        command.AddParameter("@now", now);
        command.AddParameter("@limit", opts.BatchSize);
        var claimed = new List<Claimed>();
        using var turn = await db.Database.WriterTurnAsync(ct);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            claimed.Add(new Claimed(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4)));
        return claimed;
    }

    /// <summary>
    /// Delivers a round's claims: their messages read in one query; a subscriber that takes batches
    /// (<see cref="IBatchEventSubscriber"/>) gets all of its deliveries at once, and the others one by one, each in a
    /// scope of its own; the delivered are marked in one statement.
    /// </summary>
    private async Task DeliverAllAsync(List<Claimed> claimed, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var messageIds = claimed.Select(c => c.MessageId).Distinct().ToList();
        var messages = await db.Set<OutboxMessage>().AsNoTracking().Where(m => messageIds.Contains(m.Id)).ToDictionaryAsync(m => m.Id, ct);

        var delivered = new List<long>();
        foreach (var group in claimed.GroupBy(c => c.Subscriber))
        {
            var deliveries = group.ToList();
            if (deliveries.Count > 1 && await DeliverBatchAsync(deliveries, messages, ct))
            {
                delivered.AddRange(deliveries.Select(d => d.Id));
                continue;
            }
            foreach (var delivery in deliveries)
                if (await DeliverAsync(delivery, messages[delivery.MessageId], ct) is { } error) await FailAsync(db, delivery, error, ct);
                else delivered.Add(delivery.Id);
        }

        if (delivered.Count == 0) return;
        var now = time.GetUtcNow().UtcDateTime;
        using var turn = await db.Database.WriterTurnAsync(ct);
        await db.Set<OutboxDelivery>().Where(d => delivered.Contains(d.Id) && d.LeaseOwner == node).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, DeliveryStatus.Delivered)
            .SetProperty(d => d.DeliveredAt, now)
            .SetProperty(d => d.DeliveredBy, node)
            .SetProperty(d => d.LeaseUntil, (DateTime?)null), ct);
    }

    /// <summary>
    /// All of one subscriber's deliveries at once, when it takes batches. False when it does not, or when the batch
    /// failed: the caller then delivers them one by one, so each failure is kept with its own delivery.
    /// </summary>
    private async Task<bool> DeliverBatchAsync(List<Claimed> deliveries, Dictionary<long, OutboxMessage> messages, CancellationToken ct)
    {
        await using var scope = SystemScope(deliveries[0].Subscriber, out _, out var found);
        if (found is not IBatchEventSubscriber subscriber) return false;
        try
        {
            using var timeout = HandlerTimeout(ct);
            await subscriber.HandleManyAsync([.. deliveries.Select(d => (messages[d.MessageId], d.Target))], timeout.Token);
            return true;
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            logger.LogWarning("A batch of {Count} deliveries to {Subscriber} failed, delivering them one by one: {Error}",
                deliveries.Count, deliveries[0].Subscriber, ex.GetType().Name);
            return false;
        }
    }

    /// <summary>One delivery in a scope of its own; the error, or null when delivered.</summary>
    private async Task<string?> DeliverAsync(Claimed delivery, OutboxMessage message, CancellationToken ct)
    {
        await using var scope = SystemScope(delivery.Subscriber, out var tenant, out var subscriber);
        if (subscriber is null) return $"No subscriber named '{delivery.Subscriber}' in this build.";
        try
        {
            // Subscribers see only the event's brand, as a request from that brand would.
            if (message.BrandId is { } brand) tenant.Restrict(message.GroupId, [brand], brand);
            using var timeout = HandlerTimeout(ct);
            await subscriber.HandleAsync(message, delivery.Target, timeout.Token);
            return null;
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            logger.LogWarning("Delivery {DeliveryId} of event {MessageId} to {Subscriber} failed (attempt {Attempt}): {Error}",
                delivery.Id, delivery.MessageId, delivery.Subscriber, delivery.Attempts, ex.GetType().Name);
            return $"{ex.GetType().Name}: {ex.Message}";
        }
    }

    /// <summary>A scope of its own running as the system, with the subscriber of that name in it (null when this build has none).</summary>
    private AsyncServiceScope SystemScope(string subscriberName, out TenantScope tenant, out IEventSubscriber? subscriber)
    {
        var scope = scopes.CreateAsyncScope();
        tenant = scope.ServiceProvider.GetRequiredService<TenantScope>();
        tenant.RunAsSystem();
        subscriber = scope.ServiceProvider.GetServices<IEventSubscriber>().FirstOrDefault(s => s.Name == subscriberName);
        return scope;
    }

    /// <summary>Cancelled after half the lease, so that a handler that hangs gives its deliveries up before another node may claim them.</summary>
    private CancellationTokenSource HandlerTimeout(CancellationToken ct)
    {
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(opts.Lease / 2);
        return timeout;
    }

    /// <summary>A failed delivery waits to be tried again (backing off exponentially), or is dead after the last attempt.</summary>
    private async Task FailAsync(MeridianDb db, Claimed delivery, string error, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var dead = delivery.Attempts >= opts.MaxAttempts;
        var backoff = TimeSpan.FromSeconds(Math.Min(3600, Math.Pow(2, delivery.Attempts)));
        var truncated = error.Length > 1000 ? error[..1000] : error;
        using var turn = await db.Database.WriterTurnAsync(ct);
        await db.Set<OutboxDelivery>().Where(d => d.Id == delivery.Id && d.LeaseOwner == node).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, dead ? DeliveryStatus.Dead : DeliveryStatus.Pending)
            .SetProperty(d => d.NextAttemptAt, now + backoff)
            .SetProperty(d => d.LastError, truncated)
            .SetProperty(d => d.LeaseUntil, (DateTime?)null), ct);
    }
}
