using System.Text.Json;
using Meridian.Data;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Earning;
using Meridian.Loyalty.Ledger;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Orders;

/// <summary>
/// What an order earns and what its refund takes back, by the programme's rules: the order's eligible amount (without
/// excluded SKUs and categories) times the points per currency unit, rounded as configured, then multiplied; held for
/// the programme's return window when it has one. An order earns once per member and key (<see cref="Key"/>), however
/// it arrives (a tracked <c>Order Completed</c> event, the direct order API, or both); a refund never takes back more
/// than the order earned, and follows the programme's refund policy when the points are gone.
/// </summary>
public sealed class OrderPoints(MeridianDb db, PointsLedger ledger)
{
    /// <summary>The ledger's source key of an order: in a programme shared by the group, two brands' order numbers may collide.</summary>
    public static string Key(LoyaltyProgramme programme, long brandId, string orderId) => programme.Shared ? $"order:{brandId}:{orderId}" : $"order:{orderId}";

    /// <summary>
    /// Credits a completed order at <paramref name="brandId"/>; <paramref name="message"/> holds the order as the Segment
    /// e-commerce spec writes it (<c>properties.products[]</c> with <c>sku</c>, <c>category</c>, <c>price</c>,
    /// <c>quantity</c>). Null when nothing of it is eligible; a repeat returns the first entry.
    /// </summary>
    public async Task<LedgerEntry?> CompletedAsync(LoyaltyProgramme programme, long memberId, long brandId, JsonElement message, string orderId, decimal amount,
        CancellationToken ct)
    {
        var (eligible, excluded) = EarningMath.Eligible(message, amount, EarningMath.Set(programme.ExcludedSkus), EarningMath.Set(programme.ExcludedCategories));
        var perUnit = programme.PointsPerCurrencyUnit;
        var basePoints = EarningMath.Round(eligible * perUnit, programme.Rounding);
        if (basePoints <= 0) return null;
        var how = $"order {orderId}: {eligible} × {perUnit} per unit" + (excluded > 0 ? $" ({excluded} of {amount} excluded by SKU or category)" : "");
        return await ledger.At(brandId).EarnAsync(memberId, orderId, ct, Key(programme, brandId, orderId), (_, _) => Task.FromResult<PointsLedger.Earning?>(
            new(basePoints, how, programme.PendingDays, QualifyingSpend: (long)Math.Round(eligible * 100m, MidpointRounding.AwayFromZero))));
    }

    /// <summary>What a refund of the order can take back: its earning and how many points; null when it earned nothing.</summary>
    public async Task<(LedgerEntry Earned, long Points)?> RefundableAsync(LoyaltyProgramme programme, long memberId, long brandId, JsonElement message, string orderId,
        decimal amount, CancellationToken ct)
    {
        var key = Key(programme, brandId, orderId);
        if (await db.Set<LedgerEntry>().AsNoTracking().SingleOrDefaultAsync(x => x.MemberId == memberId && x.SourceKey == key, ct) is not { } earned) return null;
        var (eligible, _) = EarningMath.Eligible(message, amount, EarningMath.Set(programme.ExcludedSkus), EarningMath.Set(programme.ExcludedCategories));
        return (earned, Math.Min(earned.Total - await ledger.ReversedAsync(earned, ct), RefundedPoints(earned, amount, eligible, programme.PointsPerCurrencyUnit, programme.Rounding)));
    }

    /// <summary>
    /// Takes back a refund's share of an order's points. Within the return window the points are still pending and the
    /// refund takes them from there; once spent, the programme's refund policy decides (pending points, a negative
    /// balance, or refused with 409).
    /// </summary>
    public Task<LedgerEntry?> RefundAsync(long memberId, long brandId, LedgerEntry earned, long points, decimal amount, CancellationToken ct) =>
        ledger.At(brandId).ReverseAsync(memberId, earned.Id, $"order refunded: {amount}", ct, points, byPolicy: true);

    /// <summary>
    /// The share of an earning a refund takes back: the refunded eligible amount's points (per unit, rounded as the
    /// programme says) times the multiplier the earning had; a refund without an amount takes back all of it.
    /// </summary>
    private static long RefundedPoints(LedgerEntry earned, decimal refunded, decimal eligible, long perUnit, PointsRounding rounding) =>
        refunded <= 0 || earned.BasePoints is not > 0 ? earned.Total : EarningMath.Round(eligible * perUnit, rounding) * earned.Total / earned.BasePoints.Value;
}
