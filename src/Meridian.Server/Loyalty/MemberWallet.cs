using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Loyalty.Members;
using Meridian.Loyalty.Rewards;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty;

/// <summary>
/// The loyalty module's public contract for a member's own view of their points (the staff API and the customer
/// self-service API both serve it): membership by profile, balance with what expires when, history, rewards on offer.
/// Reads within the caller's brands.
/// </summary>
public sealed class MemberWallet(MeridianDb db, MemberLinks links, ProgrammeRules rules)
{
    /// <summary>The profile's membership (its first, when it has several), also when enrolled under a profile since merged into it.</summary>
    public async Task<long?> MemberOfProfileAsync(long profileId, CancellationToken ct) => (await links.OfProfileAsync(profileId, ct))?.Id;

    /// <summary>The spendable balance and when its points expire (soonest first, up to ten dates); null when no such member.</summary>
    public async Task<BalanceDto?> BalanceAsync(long memberId, CancellationToken ct)
    {
        var rows = await WithExpiringAsync(memberId, ct);
        if (rows.Count == 0) return null;
        var member = rows[0].Member;
        var tier = member.TierId is { } tierId ? (await rules.OfAsync(db, member.ProgrammeId, ct)).Tiers.SingleOrDefault(t => t.Id == tierId) : null;
        var expiring = rows.Where(r => r.ExpiresAt is not null).OrderBy(r => r.ExpiresAt).Select(r => new ExpiringPointsDto(r.ExpiresAt!.Value, r.Points)).ToList();
        return new BalanceDto(member.Id, member.NetBalance, member.Pending, member.Owed, member.QualifyingPoints, tier is null ? null : TierDto.From(tier), expiring);
    }

    /// <summary>
    /// The member with each of its next ten expiry dates and the points due then (one row with no date when nothing
    /// expires; no row when no such member), in one query: the balance is read far more often than anything else in
    /// loyalty, and on PostgreSQL a second round trip cost more than both queries' execution.
    /// </summary>
    private async Task<List<MemberExpiring>> WithExpiringAsync(long memberId, CancellationToken ct) =>
        await (from m in db.Set<LoyaltyMember>().AsNoTracking().Where(m => m.Id == memberId)
               from e in db.Set<PointLot>().Where(l => l.MemberId == memberId && l.Remaining > 0 && l.ExpiresAt != null)
                   .GroupBy(l => l.ExpiresAt).Select(g => new { ExpiresAt = g.Key, Points = (long?)g.Sum(l => l.Remaining) })
                   .OrderBy(g => g.ExpiresAt).Take(10).DefaultIfEmpty()
               select new MemberExpiring(m, e!.ExpiresAt, e.Points ?? 0)).ToListAsync(ct);

    private sealed record MemberExpiring(LoyaltyMember Member, DateTime? ExpiresAt, long Points);

    /// <summary>The member's entries, oldest first, with their lots and draws; null when no such member.</summary>
    public async Task<Page<EntryDto>?> EntriesAsync(long memberId, PageRequest page, CancellationToken ct)
    {
        if (!await db.Set<LoyaltyMember>().AnyAsync(m => m.Id == memberId, ct)) return null;
        var entries = await db.Set<LedgerEntry>().AsNoTracking().Where(e => e.MemberId == memberId && e.Id > page.After).OrderBy(e => e.Id)
            .Take(page.Take + 1).Include(e => e.Draws).ThenInclude(d => d.Lot).Include(e => e.Lot).AsSplitQuery().ToListAsync(ct);
        return page.ToPage(entries.Select(e => LoyaltyEndpoints.ToDto(e)!).ToList(), e => e.Id);
    }

    /// <summary>The rewards the member's programme offers now, cheapest first.</summary>
    public async Task<List<RewardDto>> RewardsAsync(long memberId, CancellationToken ct)
    {
        var programmeId = await db.Set<LoyaltyMember>().Where(m => m.Id == memberId).Select(m => m.ProgrammeId).SingleAsync(ct);
        var rewards = await db.Set<LoyaltyReward>().AsNoTracking().Where(r => r.ProgrammeId == programmeId && r.Active)
            .OrderBy(r => r.PointsCost).ThenBy(r => r.Id).ToListAsync(ct);
        return rewards.Select(RewardDto.From).ToList();
    }
}
