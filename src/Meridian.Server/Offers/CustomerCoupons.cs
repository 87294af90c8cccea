using Meridian.Data;
using Meridian.Hosting;
using Meridian.Offers.Data;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Offers;

/// <summary>
/// The offers module's public contract for the coupons a customer holds (served to staff and, through self-service,
/// to the customer): those of the profile and of profiles merged into it, within the caller's brands, and the issued
/// coupons of group templates listing the profile's brand that the same person holds at the template's brand (usable
/// here, so listed here).
/// </summary>
public sealed class CustomerCoupons(MeridianDb db, ProfileDirectory profiles, Groups.GroupCoupons group)
{
    public async Task<Page<CouponDto>> OfProfileAsync(long profileId, CouponStatus? status, PageRequest page, CancellationToken ct)
    {
        var owners = await profiles.WithMergedAsync(profileId, ct);
        var rows = await db.Set<OfferCoupon>().AsNoTracking()
            .Where(c => c.ProfileId != null && owners.Contains(c.ProfileId.Value) && c.Id > page.After && (status == null || c.Status == status))
            .OrderBy(c => c.Id).Take(page.Take + 1).ToListAsync(ct);
        if (status is null or CouponStatus.Issued && await profiles.FindLiveAsync(profileId, ct) is { } live)
        {
            var (elsewhere, _) = await group.HeldElsewhereAsync(live.BrandId, live.ProfileId, null, ct);
            rows = [.. rows.Concat(elsewhere.Where(c => c.Id > page.After)).DistinctBy(c => c.Id).OrderBy(c => c.Id).Take(page.Take + 1)];
        }
        // A coupon held at a sister brand names no profile: that brand's profile ids are not this brand's to see.
        return page.ToPage(rows.Select(c => c.ProfileId is { } holder && owners.Contains(holder) ? CouponDto.From(c) : CouponDto.From(c) with { ProfileId = null })
            .ToList(), c => c.Id);
    }

    /// <summary>A status as the API writes it (<c>unassigned</c>, <c>issued</c>, ...); null when none is given.</summary>
    public static bool TryStatus(string? text, out CouponStatus? status)
    {
        status = null;
        if (text is null) return true;
        if (!Enum.TryParse<CouponStatus>(text, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed) || text.Any(char.IsDigit)) return false;
        status = parsed;
        return true;
    }

    public static Microsoft.AspNetCore.Http.HttpResults.ValidationProblem BadStatus() =>
        Problems.Validation("status", $"One of {string.Join(", ", Enum.GetNames<CouponStatus>().Select(n => n.ToLowerInvariant()))}.");
}
