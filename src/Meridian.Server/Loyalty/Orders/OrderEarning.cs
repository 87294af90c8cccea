using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Earning;
using Meridian.Loyalty.Ledger;
using Meridian.Loyalty.Members;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Identity;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Orders;

/// <summary>
/// Members earn from their orders and from events with an earning rule: follows the event log behind identity
/// resolution (so each event has its profile) and turns <c>Order Completed</c> into points (the order's eligible amount,
/// without excluded SKUs and categories, times the programme's points per currency unit, rounded as configured, then
/// multiplied), held for the programme's return window when it has one; <c>Order Refunded</c> into the reversal of its
/// share of those points (all of them when the refund names no amount), by the programme's refund policy; and any other
/// track event with an active earning rule into the rule's points, within its caps per day and per member. Exactly once:
/// each posting commits with the follower's new log position, and the entry's source key (<c>order:{order_id}</c>,
/// <c>event:{id}</c>) is unique per member, so an order sent twice (or replayed after a crash) earns once; refunds never
/// take back more than the order earned; caps are counted under the member's row lock. One node at a time holds the lease.
/// In a programme shared by the group, the member is found through its profile at the event's brand, the posting is
/// recorded at that brand, and an order's key names the brand (<c>order:{brand}:{order_id}</c>): two brands' order
/// numbers may collide, and a refund at a brand takes back what that brand's order earned.
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
        // An idle poll writes nothing while this node holds the lease with more than half of it left: every posting, and
        // the batch's end, commit with the position moved only while this node holds the lease, and renew it.
        var now = Instants.Now(time);
        var job = await db.Set<LoyaltyJob>().AsNoTracking().SingleOrDefaultAsync(j => j.Name == Name, ct);
        if (job is null || Leases.NeedsWrite(job.LeaseOwner, job.LeaseUntil, node, now, opts.Lease))
        {
            if (!await LoyaltyJob.TakeLeaseAsync(db, Name, node, opts.Lease, now, ct)) return 0;
            job = await db.Set<LoyaltyJob>().AsNoTracking().SingleAsync(j => j.Name == Name, ct);
        }
        var resolved = await services.GetRequiredService<ProfileDirectory>().ResolvedUpToAsync(ct);
        var events = (await services.GetRequiredService<EventLog>().ReadAfterAsync(new EventLogPosition(job.PositionTx, job.PositionId), opts.BatchSize, ct))
            .TakeWhile(e => e.TxId < resolved.TxId || (e.TxId == resolved.TxId && e.Id <= resolved.Id)).ToList();
        if (events.Count == 0) return 0;

        var ruled = (await db.Set<EarningRule>().AsNoTracking().Where(r => r.Active).Select(r => r.Event).Distinct().ToListAsync(ct)).ToHashSet();
        // Brands without a programme have no members: their events need no profile lookup (one query a batch, not one an event).
        var loyal = (await db.Set<LoyaltyProgrammeBrand>().AsNoTracking().Select(b => b.BrandId).ToListAsync(ct)).ToHashSet();
        var earning = events.Where(e => e.Type == "track" && loyal.Contains(e.TenantId) && e.Name is { } name
            && (name is OrderFacts.Completed or OrderFacts.Refunded || ruled.Contains(name))).ToList();
        var profiles = await services.GetRequiredService<ProfileDirectory>().ProfilesOfEventsAsync([.. earning.Select(e => e.Id)], ct);
        foreach (var e in earning)
        {
            // Most orders are not members': find out before taking a transaction, which on SQLite holds the one write lock
            // from its start. A transaction per order, members or not, stalled ingestion and resolution for seconds at a time.
            if (!profiles.TryGetValue(e.Id, out var profile) || await WorkAsync(services, e, profile.ProfileId, ct) is not { } work) continue;
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            await PostAsync(services, e, work, ct);
            if (!await AdvanceAsync(db, e, ct)) return 0;
            await transaction.CommitAsync(ct);
            db.ChangeTracker.Clear();
        }
        return await AdvanceAsync(db, events[^1], ct) ? events.Count : 0;
    }

    /// <summary>An event that earns (an order, or an event of a rule) for a member of a programme.</summary>
    private sealed record Work(LoyaltyMember Member, LoyaltyProgramme Programme, (string OrderId, decimal Amount)? Order, EarningRule? Rule);

    /// <summary>What the event earns and for whom, or null when it earns nothing.</summary>
    private static async Task<Work?> WorkAsync(IServiceProvider services, LoggedEvent e, long profileId, CancellationToken ct)
    {
        (string, decimal)? order = null;
        if (e.Name is OrderFacts.Completed or OrderFacts.Refunded)
        {
            using var message = JsonDocument.Parse(e.Payload);
            if (OrderFacts.Order(message.RootElement) is not { } found) return null;
            order = found;
        }
        var db = services.GetRequiredService<MeridianDb>();
        if (await services.GetRequiredService<MemberLinks>().AtBrandAsync(e.TenantId, profileId, ct) is not { } member) return null;
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleAsync(p => p.Id == member.ProgrammeId, ct);
        if (order is not null) return new Work(member, programme, order, null);
        var rule = await db.Set<EarningRule>().AsNoTracking().SingleOrDefaultAsync(r => r.ProgrammeId == programme.Id && r.Event == e.Name && r.Active, ct);
        return rule is null ? null : new Work(member, programme, null, rule);
    }

    private async Task PostAsync(IServiceProvider services, LoggedEvent e, Work work, CancellationToken ct)
    {
        var (member, programme, _, rule) = work;
        var ledger = services.GetRequiredService<PointsLedger>().At(e.TenantId);
        try
        {
            if (rule is not null)
            {
                var db = services.GetRequiredService<MeridianDb>();
                await ledger.EarnAsync(member.Id, e.Name, ct, $"event:{e.Id}", async (_, _) => await WithinCapsAsync(db, rule, member.Id, ct)
                    ? new PointsLedger.Earning(rule.Points, $"rule {rule.Id} ({rule.Event})", 0, rule.Id)
                    : null);
                return;
            }
            await PostOrderAsync(services, e, work, ct);
        }
        catch (BusinessRuleException refused)
        {
            // A refund the balance no longer covers (the points were spent) under the refuse policy: left for staff.
            logger.LogWarning("Event {Event} ({Name}) of member {Member} left unposted: {Reason}", e.Id, e.Name, member.Id, refused.Message);
        }
    }

    /// <summary>Whether the member may still earn by the rule: counted under the member's row lock, so two events cannot both take the last place.</summary>
    private async Task<bool> WithinCapsAsync(MeridianDb db, EarningRule rule, long memberId, CancellationToken ct)
    {
        var earned = db.Set<LedgerEntry>().Where(x => x.MemberId == memberId && x.EarningRuleId == rule.Id && x.Kind == EntryKinds.Earn);
        if (rule.PerMemberCap is { } ever && await earned.CountAsync(ct) >= ever) return false;
        var today = time.GetUtcNow().UtcDateTime.Date;
        return rule.PerDayCap is not { } daily || await earned.CountAsync(x => x.CreatedAt >= today, ct) < daily;
    }

    private static async Task PostOrderAsync(IServiceProvider services, LoggedEvent e, Work work, CancellationToken ct)
    {
        var (member, programme, (orderId, amount)) = (work.Member, work.Programme, work.Order!.Value);
        var orders = services.GetRequiredService<OrderPoints>();
        using var message = JsonDocument.Parse(e.Payload);
        if (e.Name == OrderFacts.Completed)
            await orders.CompletedAsync(programme, member.Id, e.TenantId, message.RootElement, orderId, amount, ct);
        else if (await orders.RefundableAsync(programme, member.Id, e.TenantId, message.RootElement, orderId, amount, ct) is { Points: > 0 } refund)
            await orders.RefundAsync(member.Id, e.TenantId, refund.Earned, refund.Points, amount, ct);
    }

    /// <summary>Moves the follower's position, only while this node holds the lease.</summary>
    private async Task<bool> AdvanceAsync(MeridianDb db, LoggedEvent e, CancellationToken ct) =>
        await db.Set<LoyaltyJob>().Where(j => j.Name == Name && j.LeaseOwner == node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.PositionTx, e.TxId).SetProperty(j => j.PositionId, e.Id)
                .SetProperty(j => j.LeaseUntil, time.GetUtcNow().UtcDateTime + opts.Lease), ct) == 1;
}
