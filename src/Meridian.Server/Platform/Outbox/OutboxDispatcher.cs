using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Platform.Outbox;

public sealed class OutboxOptions
{
    /// <summary>How often to look for work when no in-process publish has signalled any.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>How long a claimed delivery stays with its node before another node may take it over.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);
    public int BatchSize { get; set; } = 50;
    public int MaxAttempts { get; set; } = 10;
    /// <summary>Identifies this process in leases and in <c>delivered_by</c>; defaults to host name and process id.</summary>
    public string? NodeName { get; set; }
    public bool Enabled { get; set; } = true;
}

/// <summary>Wakes the dispatcher as soon as this process commits an event, so in-process delivery needs no polling delay.</summary>
public sealed class OutboxSignal : Hosting.WorkSignal;

/// <summary>
/// Delivers outbox events to subscribers, at least once. Work is shared through the database: fan-out inserts are
/// idempotent (a unique key per message, subscriber and target), and deliveries are claimed with a lease
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
        foreach (var delivery in claimed) await DeliverAsync(delivery, ct);
        return fannedOut > 0 || claimed.Count > 0;
    }

    private async Task<int> FanOutAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var messages = await db.Set<OutboxMessage>().Where(m => !m.FannedOut).OrderBy(m => m.Id).Take(opts.BatchSize).ToListAsync(ct);
        if (messages.Count == 0) return 0;

        var subscribers = scope.ServiceProvider.GetServices<IEventSubscriber>().ToList();
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var message in messages)
        {
            foreach (var subscriber in subscribers)
            {
                foreach (var target in await subscriber.TargetsAsync(message, ct))
                {
                    // Two nodes may fan out the same message at once: the unique key makes the second insert a no-op.
                    await db.Database.ExecuteSqlAsync($"""
                        INSERT INTO outbox_deliveries (message_id, subscriber, target, status, attempts, next_attempt_at)
                        VALUES ({message.Id}, {subscriber.Name}, {target}, 0, 0, {now})
                        ON CONFLICT (message_id, subscriber, target) DO NOTHING
                        """, ct);
                }
            }
            message.FannedOut = true;
        }
        await db.SaveChangesAsync(ct);
        return messages.Count;
    }

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
        Add(command, "owner", node);
        Add(command, "until", now + opts.Lease);
        Add(command, "now", now);
        Add(command, "limit", opts.BatchSize);
        var claimed = new List<Claimed>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            claimed.Add(new Claimed(reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4)));
        return claimed;
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        command.Parameters.Add(p);
    }

    private async Task DeliverAsync(Claimed delivery, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var tenant = scope.ServiceProvider.GetRequiredService<TenantScope>();
        tenant.RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var message = await db.Set<OutboxMessage>().AsNoTracking().SingleAsync(m => m.Id == delivery.MessageId, ct);
        var subscriber = scope.ServiceProvider.GetServices<IEventSubscriber>().FirstOrDefault(s => s.Name == delivery.Subscriber);

        string? error = subscriber is null ? $"No subscriber named '{delivery.Subscriber}' in this build." : null;
        if (subscriber is not null)
        {
            try
            {
                // Subscribers see only the event's brand, as a request from that brand would.
                if (message.BrandId is { } brand) tenant.Restrict(message.GroupId, [brand], brand);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(opts.Lease / 2);
                await subscriber.HandleAsync(message, delivery.Target, timeout.Token);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                error = $"{ex.GetType().Name}: {ex.Message}";
                logger.LogWarning("Delivery {DeliveryId} of event {MessageId} to {Subscriber} failed (attempt {Attempt}): {Error}",
                    delivery.Id, delivery.MessageId, delivery.Subscriber, delivery.Attempts, ex.GetType().Name);
            }
            finally
            {
                tenant.RunAsSystem();
            }
        }

        var now = time.GetUtcNow().UtcDateTime;
        var mine = db.Set<OutboxDelivery>().Where(d => d.Id == delivery.Id && d.LeaseOwner == node);
        if (error is null)
        {
            await mine.ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Delivered)
                .SetProperty(d => d.DeliveredAt, now)
                .SetProperty(d => d.DeliveredBy, node)
                .SetProperty(d => d.LeaseUntil, (DateTime?)null), ct);
            return;
        }

        var dead = delivery.Attempts >= opts.MaxAttempts;
        var backoff = TimeSpan.FromSeconds(Math.Min(3600, Math.Pow(2, delivery.Attempts)));
        var truncated = error.Length > 1000 ? error[..1000] : error;
        await mine.ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, dead ? DeliveryStatus.Dead : DeliveryStatus.Pending)
            .SetProperty(d => d.NextAttemptAt, now + backoff)
            .SetProperty(d => d.LastError, truncated)
            .SetProperty(d => d.LeaseUntil, (DateTime?)null), ct);
    }
}
