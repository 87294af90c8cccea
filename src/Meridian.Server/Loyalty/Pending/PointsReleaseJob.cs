using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;

namespace Meridian.Loyalty.Pending;

/// <summary>
/// Releases pending points once their return window has passed: each held lot whose <c>held_until</c> is due becomes
/// spendable through <see cref="PointsLedger.ReleaseAsync"/>. Exactly once across nodes and restarts (see
/// <see cref="LotSweep"/>); besides, a release's source key (<c>release:{lot}</c>) is unique per member.
/// </summary>
public sealed class PointsReleaseJob(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<PointsReleaseJob> logger)
    : LotSweep(scopes, opts, time, logger)
{
    public const string JobName = "points-release";
    protected override string Name => JobName;

    protected override IQueryable<PointLot> Due(IQueryable<PointLot> lots, DateTime now) =>
        lots.Where(l => l.HeldUntil != null && l.HeldUntil <= now).OrderBy(l => l.HeldUntil).ThenBy(l => l.Id);

    protected override Task<LedgerEntry?> PostAsync(PointsLedger ledger, long lotId, long memberId, CancellationToken ct) =>
        ledger.ReleaseAsync(lotId, memberId, ct);
}
