using Meridian.Data;
using Meridian.Offers.Data;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Offers.Groups;

/// <summary>
/// Group coupons: a template of one brand usable at other brands of its group (<see cref="CouponConditions.Brands"/>).
/// The coupon stays with the profile it was issued to; at a listed brand it is the same person's (profiles are per
/// brand; one person's profiles share a phone, email or unionid). This is the one place the module reads coupons past
/// the caller's brand, and only those of templates that list the brand, held by that person.
/// </summary>
public sealed class GroupCoupons(MeridianDb db, ProfileDirectory profiles)
{
    /// <summary>
    /// The coupons the customer's profiles at other brands hold of templates usable at <paramref name="brand"/>: the
    /// issued ones, or (with <paramref name="codes"/>) those with these codes whatever their status; and those profiles.
    /// A brand no group template lists costs one indexed query.
    /// </summary>
    public async Task<(List<OfferCoupon> Coupons, List<long> Holders)> HeldElsewhereAsync(long brand, long profileId, IReadOnlyCollection<string>? codes,
        CancellationToken ct)
    {
        var owners = await db.Set<OfferTemplateBrand>().IgnoreQueryFilters().Where(x => x.BrandId == brand).Select(x => x.TenantId).Distinct().ToListAsync(ct);
        if (owners.Count == 0) return ([], []);
        var holders = await profiles.SamePersonAsync(profileId, owners, ct);
        if (holders.Count == 0) return ([], []);
        var query = from c in db.Set<OfferCoupon>().IgnoreQueryFilters()
                    join usable in db.Set<OfferTemplateBrand>().IgnoreQueryFilters() on c.TemplateId equals usable.TemplateId
                    where usable.BrandId == brand && owners.Contains(c.TenantId) && c.ProfileId != null && holders.Contains(c.ProfileId.Value)
                    select c;
        query = codes is null ? query.Where(c => c.Status == CouponStatus.Issued) : query.Where(c => codes.Contains(c.Code));
        return (await query.AsNoTracking().OrderBy(c => c.Id).Take(1000).ToListAsync(ct), holders);
    }
}
