using Meridian.Data;
using Meridian.Loyalty.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty;

/// <summary>What other modules may ask about a customer's loyalty standing without reading the Loyalty tables (offers: tier conditions).</summary>
public sealed class MemberTiers(MeridianDb db)
{
    /// <summary>The tier of the profile's membership in its brand's programme (null: not a member, or below every tier).</summary>
    public Task<long?> TierOfAsync(long profileId, CancellationToken ct) =>
        db.Set<LoyaltyMember>().AsNoTracking().Where(m => m.ProfileId == profileId).OrderBy(m => m.Id).Select(m => m.TierId).FirstOrDefaultAsync(ct);
}
