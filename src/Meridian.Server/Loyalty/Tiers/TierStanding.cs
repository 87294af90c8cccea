using Meridian.Data;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Tiers;

/// <summary>
/// Where a member stands: the tier its qualifying points or spend reach within the programme's window, never below the
/// tier staff set as a floor, and lower than the current tier only when the programme's downgrade policy allows it at
/// that moment (a refund, a periodic review). Called by <see cref="PointsLedger"/> under the member's row lock.
/// </summary>
public sealed class TierStanding(MeridianDb db, EventPublisher events, TimeProvider time)
{
    /// <summary>
    /// The member's qualifying value at <paramref name="now"/>: what orders and rules earned (or the orders' spend) within
    /// the window, less what refunds took back. Spending, expiry and adjustments do not count.
    /// </summary>
    public async Task<long> QualifyingAsync(LoyaltyProgramme programme, LoyaltyMember member, DateTime now, CancellationToken ct)
    {
        if (!SumsEntries(programme)) return member.QualifyingPoints;
        var entries = db.Set<LedgerEntry>().Where(e => e.MemberId == member.Id && e.Account == LedgerAccounts.Issued);
        if (programme.TierWindow != TierWindow.Lifetime)
        {
            var from = programme.TierWindowStart(now);
            entries = entries.Where(e => e.CreatedAt >= from);
        }
        return programme.TierBasis == TierBasis.Spend
            ? await entries.SumAsync(e => e.QualifyingSpend, ct)
            : await entries.SumAsync(e => e.Points + e.Pending, ct);
    }

    /// <summary>Whether the qualifying value is summed from the ledger's entries (else the member row's running total is it).</summary>
    public static bool SumsEntries(LoyaltyProgramme programme) => programme is not { TierBasis: TierBasis.QualifyingPoints, TierWindow: TierWindow.Lifetime };

    /// <summary>
    /// Moves the member to the tier it qualifies for (never below its floor); down only with <paramref name="mayDowngrade"/>.
    /// Publishes <c>tier.changed</c> when the tier moves, at the brand where the posting that moved it happened.
    /// <paramref name="member"/> carries its values after the posting.
    /// </summary>
    public async Task EvaluateAsync(LoyaltyProgramme programme, LoyaltyMember member, List<LoyaltyTier> tiers, bool mayDowngrade, string why,
        PointsLedger.Site site, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var current = tiers.SingleOrDefault(t => t.Id == member.TierId);
        var target = Target(programme, member, tiers, await QualifyingAsync(programme, member, now, ct), mayDowngrade);
        if (target?.Id == current?.Id) return;
        await db.Set<LoyaltyMember>().Where(m => m.Id == member.Id).ExecuteUpdateAsync(s => s.SetProperty(m => m.TierId, target?.Id), ct);
        var direction = Rank(target) > Rank(current) ? "up" : "down";
        events.Publish(programme.GroupId, site.BrandId, () => new TierChanged(member.Id, site.ProfileId, current?.Id, target?.Id, target?.Name, direction, why));
    }

    /// <summary>The tier a member with this qualifying value stands at: what it reaches, never below its floor, lower than its current tier only with <paramref name="mayDowngrade"/>.</summary>
    public static LoyaltyTier? Target(LoyaltyProgramme programme, LoyaltyMember member, List<LoyaltyTier> tiers, long qualifying, bool mayDowngrade)
    {
        var reached = LoyaltyTier.For(tiers, programme.TierBasis, qualifying);
        var floor = tiers.SingleOrDefault(t => t.Id == member.TierFloorId);
        var current = tiers.SingleOrDefault(t => t.Id == member.TierId);
        var target = Rank(floor) > Rank(reached) ? floor : reached;
        return !mayDowngrade && Rank(target) < Rank(current) ? current : target;
    }

    private static int Rank(LoyaltyTier? tier) => tier?.Rank ?? int.MinValue;
}
