using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Identity;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Orders;

/// <summary>
/// Members earn from their orders: follows the event log behind identity resolution (so each event has its profile)
/// and turns <c>Order Completed</c> into points (the programme's points per currency unit, times the tier's multiplier)
/// and <c>Order Refunded</c> into the reversal of its share of those points (all of them when the refund names no
/// amount). Exactly once: each order's posting commits with the follower's new log position, and the entry's source
/// key (<c>order:{order_id}</c>) is unique per member, so an order sent twice (or replayed after a crash) earns once;
/// refunds never take back more than the order earned. One node at a time holds the lease.
/// </summary>
public sealed class OrderEarning(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<OrderEarning> logger)
    : BackgroundService
{
    public const string Name = "order-earning";
    private readonly string node = opts.Node;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync("Order earning", opts.PollInterval, time, logger, async ct =>
        {
            while (await RunOnceAsync(ct) > 0) { }
        }, stoppingToken);
    }

    /// <summary>Handles one batch of resolved events if this node holds the lease; returns how many it read.</summary>
    internal async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<MeridianDb>();
        if (!await LoyaltyJob.TakeLeaseAsync(db, Name, node, opts.Lease, time.GetUtcNow().UtcDateTime, ct)) return 0;

        var job = await db.Set<LoyaltyJob>().AsNoTracking().SingleAsync(j => j.Name == Name, ct);
        var resolved = await services.GetRequiredService<ProfileDirectory>().ResolvedUpToAsync(ct);
        var events = (await services.GetRequiredService<EventLog>().ReadAfterAsync(new EventLogPosition(job.PositionTx, job.PositionId), opts.BatchSize, ct))
            .TakeWhile(e => e.TxId < resolved.TxId || (e.TxId == resolved.TxId && e.Id <= resolved.Id)).ToList();
        if (events.Count == 0) return 0;

        foreach (var e in events.Where(e => e.Type == "track" && e.Name is OrderFacts.Completed or OrderFacts.Refunded))
        {
            // Most orders are not members': find out before taking a transaction, which on SQLite holds the one write lock
            // from its start. A transaction per order, members or not, stalled ingestion and resolution for seconds at a time.
            if (await MemberOrderAsync(services, e, ct) is not { } work) continue;
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            await PostAsync(services, e, work, ct);
            if (!await AdvanceAsync(db, e, ct)) return 0;
            await transaction.CommitAsync(ct);
            db.ChangeTracker.Clear();
        }
        return await AdvanceAsync(db, events[^1], ct) ? events.Count : 0;
    }

    private sealed record MemberOrder((string OrderId, decimal Amount) Order, LoyaltyMember Member, long PerUnit);

    /// <summary>The order and the member it earns for, or null when the event earns nothing.</summary>
    private static async Task<MemberOrder?> MemberOrderAsync(IServiceProvider services, LoggedEvent e, CancellationToken ct)
    {
        using var message = JsonDocument.Parse(e.Payload);
        if (OrderFacts.Order(message.RootElement) is not { } order) return null;
        if (await services.GetRequiredService<ProfileDirectory>().ProfileOfEventAsync(e.Id, ct) is not { } profile) return null;
        var db = services.GetRequiredService<MeridianDb>();
        var member = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.TenantId == e.TenantId && m.ProfileId == profile.ProfileId, ct);
        if (member is null) return null;
        var perUnit = await db.Set<LoyaltyProgramme>().Where(p => p.Id == member.ProgrammeId).Select(p => p.PointsPerCurrencyUnit).SingleAsync(ct);
        return new MemberOrder(order, member, perUnit);
    }

    private async Task PostAsync(IServiceProvider services, LoggedEvent e, MemberOrder work, CancellationToken ct)
    {
        var (order, member, perUnit) = work;
        var db = services.GetRequiredService<MeridianDb>();
        var ledger = services.GetRequiredService<PointsLedger>();
        var key = $"order:{order.OrderId}";
        try
        {
            if (e.Name == OrderFacts.Completed)
            {
                var basePoints = (long)Math.Floor(order.Amount * perUnit);
                if (basePoints > 0)
                    await ledger.EarnAsync(member.Id, basePoints, order.OrderId, ct, $"order {order.OrderId}: {order.Amount} × {perUnit} per unit", key);
            }
            else if (await db.Set<LedgerEntry>().AsNoTracking().SingleOrDefaultAsync(x => x.MemberId == member.Id && x.SourceKey == key, ct) is { } earned
                     && Math.Min(earned.Points - await ledger.ReversedAsync(earned, ct), RefundedPoints(earned, order.Amount, perUnit)) is var back and > 0)
            {
                await ledger.ReverseAsync(member.Id, earned.Id, $"order refunded: {order.Amount}", ct, back);
            }
        }
        catch (BusinessRuleException rule)
        {
            // A refund the balance no longer covers (the points were spent): left for staff until refund policies exist.
            logger.LogWarning("Order {Order} of member {Member} (event {Event}) left unposted: {Reason}", order.OrderId, member.Id, e.Id, rule.Message);
        }
    }

    /// <summary>
    /// The share of an earning a refund takes back: the refunded amount's points (per unit, fractions dropped) times the
    /// multiplier the earning had; a refund without an amount takes back all of it.
    /// </summary>
    private static long RefundedPoints(LedgerEntry earned, decimal refunded, long perUnit) =>
        refunded <= 0 || earned.BasePoints is not > 0 ? earned.Points : (long)Math.Floor(refunded * perUnit) * earned.Points / earned.BasePoints.Value;

    /// <summary>Moves the follower's position, only while this node holds the lease.</summary>
    private async Task<bool> AdvanceAsync(MeridianDb db, LoggedEvent e, CancellationToken ct) =>
        await db.Set<LoyaltyJob>().Where(j => j.Name == Name && j.LeaseOwner == node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.PositionTx, e.TxId).SetProperty(j => j.PositionId, e.Id)
                .SetProperty(j => j.LeaseUntil, time.GetUtcNow().UtcDateTime + opts.Lease), ct) == 1;
}
