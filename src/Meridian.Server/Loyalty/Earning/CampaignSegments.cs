using Meridian.Audiences;
using Meridian.Data;
using Meridian.Loyalty.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Earning;

/// <summary>Which running campaigns' segments each member is in, read at posting time.</summary>
public sealed record MemberSegments(IReadOnlyDictionary<long, HashSet<long>> SegmentsOfMember, SegmentMemberships Memberships)
{
    public static readonly MemberSegments None = new(new Dictionary<long, HashSet<long>>(), SegmentMemberships.None);

    public bool In(long memberId, long segmentId) => SegmentsOfMember.TryGetValue(memberId, out var segments) && segments.Contains(segmentId);
}

/// <summary>
/// Campaigns for a segment (<see cref="LoyaltyCampaign.SegmentId"/>): a member qualifies when its profile at the
/// segment's brand (<see cref="LoyaltyMemberProfile"/>: the programme's brand, or for a programme shared by the group
/// the brand the segment belongs to) is in the segment now. Read through Audiences' <see cref="SegmentMembers"/> on
/// every posting (two queries for any number of members, none when no running campaign names a segment); the
/// programme's rules are cached per node (<see cref="Ledger.ProgrammeRules"/>), membership never is.
/// </summary>
public sealed class CampaignSegments(MeridianDb db, SegmentMembers segments)
{
    public async Task<MemberSegments> OfAsync(IReadOnlyCollection<LoyaltyMember> members, IEnumerable<LoyaltyCampaign> campaigns, DateTime now, CancellationToken ct)
    {
        var wanted = campaigns.Where(c => c.SegmentId is not null && c.Runs(now)).Select(c => c.SegmentId!.Value).Distinct().ToList();
        if (wanted.Count == 0 || members.Count == 0) return MemberSegments.None;
        var ids = members.Select(m => m.Id).ToList();
        var links = await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => ids.Contains(p.MemberId))
            .Select(p => new { p.MemberId, p.BrandId, p.ProfileId }).ToListAsync(ct);
        // A segment holds profiles of its own brand only, so each member's profile at another brand never matches it.
        var memberships = await segments.OfAsync(links.Select(l => l.BrandId).Distinct().ToList(), wanted, links.Select(l => l.ProfileId).Distinct().ToList(), ct);
        var byMember = links.GroupBy(l => l.MemberId).ToDictionary(g => g.Key,
            g => wanted.Where(s => g.Any(l => memberships.Pairs.Contains((s, l.ProfileId)))).ToHashSet());
        return new MemberSegments(byMember, memberships);
    }
}
