using System.Text.Json;
using Meridian.Data;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Members;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Tiers;

/// <summary>A member's tier and what it brings, as other modules (offers, journeys) and front ends ask for it.</summary>
public sealed record TierBenefits(long MemberId, long ProgrammeId, long? TierId, string? Tier, int MultiplierPercent, IReadOnlyList<string> Benefits)
{
    public bool Has(string benefit) => Benefits.Contains(benefit, StringComparer.OrdinalIgnoreCase);
}

/// <summary>
/// The loyalty module's public contract for tier benefits: another module asks by profile, within the caller's brands,
/// and never reads the module's tables itself. Also served as <c>GET /api/v1/loyalty/members/{id}/benefits</c>.
/// </summary>
public sealed class MemberBenefits(MeridianDb db, MemberLinks links)
{
    /// <summary>The benefits of the profile's membership (its first, when it has several); null when it is no member.</summary>
    public async Task<TierBenefits?> OfProfileAsync(long profileId, CancellationToken ct) =>
        await links.OfProfileAsync(profileId, ct) is { } member
            ? await OfMemberAsync(member.Id, ct)
            : null;

    public async Task<TierBenefits?> OfMemberAsync(long memberId, CancellationToken ct)
    {
        var member = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == memberId, ct);
        if (member is null) return null;
        var tier = member.TierId is { } tierId ? await db.Set<LoyaltyTier>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == tierId, ct) : null;
        return new TierBenefits(member.Id, member.ProgrammeId, tier?.Id, tier?.Name, tier?.MultiplierPercent ?? 100,
            tier is null ? [] : JsonSerializer.Deserialize<List<string>>(tier.Benefits) ?? []);
    }
}
