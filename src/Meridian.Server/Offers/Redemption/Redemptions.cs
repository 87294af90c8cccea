using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Offers.Cart;
using Meridian.Offers.Claims;
using Meridian.Offers.Codes;
using Meridian.Offers.Data;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Offers.Redemption;

public sealed record CouponRedeemed(long CouponId, long TemplateId, long ProfileId, long RedemptionId, string OrderReference, long Discount) : IDomainEvent
{
    public string EventType => "coupon.redeemed";
}

public sealed record CouponReversed(long CouponId, long TemplateId, long ProfileId, long RedemptionId, string OrderReference, bool ReturnedToCustomer) : IDomainEvent
{
    public string EventType => "coupon.reversed";
}

public sealed record RedeemedCouponDto(long CouponId, string Code, long TemplateId, long Discount);

public sealed record RedemptionDto(long Id, long ProfileId, string OrderReference, RedemptionStatus Status, long TotalDiscount,
    IReadOnlyList<RedeemedCouponDto> Coupons, DateTime CreatedAt, DateTime? ReversedAt, string? ReverseReason);

/// <summary>A code of the request and why it cannot be used (in a 422 <c>coupon-not-applicable</c>).</summary>
public sealed record CodeRefusal(string Code, IReadOnlyList<Reason> Reasons);

/// <summary>
/// Redeems coupons against an order and reverses redemptions on refund. The guard against using a coupon twice is the
/// conditional <c>UPDATE offer_coupons ... WHERE status = issued</c> in the redeeming transaction, and against
/// overspending a promotion <c>budget_used + discount &lt;= budget</c> on its template row: both hold across nodes.
/// A group coupon redeemed at a sister brand is recorded with that brand, so the coupon and template rows it touches
/// (found by the redemption's own ids, checked by the caller) are written past the brand's filter.
/// </summary>
public sealed class Redemptions(MeridianDb db, EventPublisher events, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = MeridianJson.Options;

    public Task<OfferRedemption?> FindByKeyAsync(long tenantId, string key, CancellationToken ct) =>
        db.Set<OfferRedemption>().AsNoTracking().SingleOrDefaultAsync(r => r.TenantId == tenantId && r.IdempotencyKey == key, ct);

    /// <summary>
    /// Redeems the judged coupons (all applicable, stacking allowed, in apply order) in one transaction; returns the
    /// stored response. Throws the 409s when another request used a coupon or the budget first.
    /// </summary>
    public async Task<OfferRedemption> RedeemAsync(long tenantId, long groupId, long profileId, string orderReference, string key, string hash,
        Combination combination, CancellationToken ct)
    {
        var now = Instants.Now(time);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var redemption = new OfferRedemption
        {
            TenantId = tenantId, GroupId = groupId, ProfileId = profileId, OrderReference = orderReference, IdempotencyKey = key, RequestHash = hash,
            TotalDiscount = combination.Total, CreatedAt = now,
        };
        db.Add(redemption);
        await db.SaveChangesAsync(ct);
        foreach (var (coupon, discount) in combination.Coupons)
        {
            var used = await db.Set<OfferCoupon>().IgnoreQueryFilters().Where(c => c.Id == coupon.CouponId && c.Status == CouponStatus.Issued)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.Status, CouponStatus.Redeemed).SetProperty(c => c.RedemptionId, redemption.Id)
                    .SetProperty(c => c.Discount, discount).SetProperty(c => c.RedeemedAt, now), ct);
            if (used == 0)
                throw new BusinessRuleException($"Coupon {CouponCodes.Display(coupon.Code)} was already used.", StatusCodes.Status409Conflict, ProblemTypes.CouponAlreadyRedeemed)
                    { Extensions = { ["code"] = CouponCodes.Display(coupon.Code) } };
            var budgeted = await db.Set<OfferTemplate>().IgnoreQueryFilters().Where(t => t.Id == coupon.Template.Id && (t.Budget == null || t.BudgetUsed + discount <= t.Budget))
                .ExecuteUpdateAsync(s => s.SetProperty(t => t.BudgetUsed, t => t.BudgetUsed + discount), ct);
            if (budgeted == 0)
                throw new BusinessRuleException($"The budget of '{coupon.Template.Name}' does not cover {discount} more.", StatusCodes.Status409Conflict, ProblemTypes.BudgetExhausted)
                    { Extensions = { ["code"] = CouponCodes.Display(coupon.Code) } };
            events.Publish(groupId, tenantId, () => new CouponRedeemed(coupon.CouponId, coupon.Template.Id, profileId, redemption.Id, orderReference, discount));
        }
        redemption.Response = JsonSerializer.Serialize(ToDto(redemption, combination.Coupons.Select(c => new RedeemedCouponDto(c.Coupon.CouponId,
            CouponCodes.Display(c.Coupon.Code), c.Coupon.Template.Id, c.Discount)).ToList()), Json);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return redemption;
    }

    /// <summary>
    /// Reverses a redemption (its order was refunded): each coupon's discount leaves the budget, and the coupon goes
    /// back to the customer when its template says so and it is still valid, else it is void. A second reversal
    /// changes nothing and answers as the first. Null when the redemption does not exist.
    /// </summary>
    public async Task<RedemptionDto?> ReverseAsync(long id, string? reason, CancellationToken ct)
    {
        var now = Instants.Now(time);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var reversed = await db.Set<OfferRedemption>().Where(r => r.Id == id && r.Status == RedemptionStatus.Redeemed)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RedemptionStatus.Reversed).SetProperty(r => r.ReversedAt, now).SetProperty(r => r.ReverseReason, reason), ct);
        var redemption = await db.Set<OfferRedemption>().AsNoTracking().SingleOrDefaultAsync(r => r.Id == id, ct);
        if (redemption is null) return null;
        if (reversed == 1)
        {
            var coupons = await db.Set<OfferCoupon>().IgnoreQueryFilters().AsNoTracking().Where(c => c.RedemptionId == id).ToListAsync(ct);
            var templateIds = coupons.Select(c => c.TemplateId).ToList();
            var templates = await db.Set<OfferTemplate>().IgnoreQueryFilters().AsNoTracking().Where(t => templateIds.Contains(t.Id)).ToDictionaryAsync(t => t.Id, ct);
            foreach (var coupon in coupons)
            {
                var template = templates[coupon.TemplateId];
                await db.Set<OfferTemplate>().IgnoreQueryFilters().Where(t => t.Id == template.Id)
                    .ExecuteUpdateAsync(s => s.SetProperty(t => t.BudgetUsed, t => t.BudgetUsed - coupon.Discount), ct);
                var back = template.ReturnOnRefund && (coupon.ValidUntil is null || coupon.ValidUntil > now);
                await db.Set<OfferCoupon>().IgnoreQueryFilters().Where(c => c.Id == coupon.Id).ExecuteUpdateAsync(s => s
                    .SetProperty(c => c.Status, back ? CouponStatus.Issued : CouponStatus.Void)
                    .SetProperty(c => c.RedemptionId, back ? null : coupon.RedemptionId), ct);
                events.Publish(redemption.GroupId, redemption.TenantId, () => new CouponReversed(coupon.Id, coupon.TemplateId, redemption.ProfileId, id, redemption.OrderReference, back));
            }
            await db.SaveChangesAsync(ct);
        }
        await transaction.CommitAsync(ct);
        return Dto(redemption);
    }

    /// <summary>The redemption as it is now (the coupons it used, from its stored response).</summary>
    public static RedemptionDto Dto(OfferRedemption r) => ToDto(r, JsonSerializer.Deserialize<RedemptionDto>(r.Response, Json)!.Coupons);

    private static RedemptionDto ToDto(OfferRedemption r, IReadOnlyList<RedeemedCouponDto> coupons) =>
        new(r.Id, r.ProfileId, r.OrderReference, r.Status, r.TotalDiscount, coupons, r.CreatedAt, r.ReversedAt, r.ReverseReason);
}
