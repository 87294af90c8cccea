using Meridian.Data;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Tiers;

/// <summary>
/// For programmes whose downgrade policy is periodic: re-evaluates each member's tier every
/// <see cref="LoyaltyProgramme.TierReviewDays"/> days (up or down by its qualifying value in the window, never below the
/// staff-set floor). Exactly once per member and period across nodes (see <see cref="LedgerSweep"/>): the member's
/// review time is re-read under its row lock.
/// </summary>
public sealed class TierReviewJob(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<TierReviewJob> logger)
    : LedgerSweep(scopes, opts, time, logger)
{
    public const string JobName = "tier-review";
    protected override string Name => JobName;

    protected override async Task<List<DueItem>> DueAsync(MeridianDb db, DateTime now, int take, CancellationToken ct)
    {
        var due = new List<DueItem>();
        var programmes = await db.Set<LoyaltyProgramme>().AsNoTracking().Where(p => p.TierDowngrade == TierDowngrade.Periodic)
            .ToListAsync(ct);
        foreach (var programme in programmes)
        {
            var cutoff = PointsLedger.TierReviewDueBefore(programme, now);
            due.AddRange(await db.Set<LoyaltyMember>().AsNoTracking()
                .Where(m => m.ProgrammeId == programme.Id && (m.TierReviewedAt == null || m.TierReviewedAt <= cutoff)).OrderBy(m => m.Id)
                .Select(m => new DueItem(m.Id, m.Id)).Take(take - due.Count).ToListAsync(ct));
            if (due.Count >= take) break;
        }
        return due;
    }

    protected override Task<bool> HandleAsync(PointsLedger ledger, DueItem member, CancellationToken ct) => ledger.ReviewTierAsync(member.MemberId, ct);
}
