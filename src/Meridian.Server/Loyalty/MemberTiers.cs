using Meridian.Loyalty.Members;

namespace Meridian.Loyalty;

/// <summary>What other modules may ask about a customer's loyalty standing without reading the Loyalty tables (offers: tier conditions).</summary>
public sealed class MemberTiers(MemberLinks links)
{
    /// <summary>The tier of the profile's membership in its brand's programme (null: not a member, or below every tier).</summary>
    public async Task<long?> TierOfAsync(long profileId, CancellationToken ct) => (await links.OfProfileAsync(profileId, ct))?.TierId;
}
