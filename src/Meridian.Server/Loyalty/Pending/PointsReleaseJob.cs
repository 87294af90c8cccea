using Meridian.Data;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;

using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Pending;

/// <summary>
/// Releases pending points once their return window has passed: each held lot whose <c>held_until</c> is due becomes
/// spendable through <see cref="PointsLedger.ReleaseAsync"/>. Exactly once across nodes and restarts (see
/// <see cref="LedgerSweep"/>); besides, a release's source key (<c>release:{lot}</c>) is unique per member.
/// </summary>
public sealed class PointsReleaseJob(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<PointsReleaseJob> logger)
    : LedgerSweep(scopes, opts, time, logger)
{
    public const string JobName = "points-release";
    protected override string Name => JobName;

    protected override Task<List<DueItem>> DueAsync(MeridianDb db, DateTime now, int take, CancellationToken ct) =>
        db.Set<PointLot>().AsNoTracking().Where(l => l.HeldUntil != null && l.HeldUntil <= now).OrderBy(l => l.HeldUntil).ThenBy(l => l.Id)
            .Select(l => new DueItem(l.Id, l.MemberId)).Take(take).ToListAsync(ct);

    protected override async Task<bool> HandleAsync(PointsLedger ledger, DueItem lot, CancellationToken ct) =>
        await ledger.ReleaseAsync(lot.Id, lot.MemberId, ct) is not null;
}
