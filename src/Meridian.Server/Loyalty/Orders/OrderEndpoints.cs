using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Orders;

/// <summary>An order line, as the Segment e-commerce spec writes products: what excluded SKUs and categories are judged by.</summary>
public sealed record OrderLine(
    [property: StringLength(200)] string? Sku,
    [property: StringLength(200)] string? Category,
    [property: Range(0, 1_000_000_000_000)] decimal? Price,
    [property: Range(0, 1_000_000)] decimal? Quantity);

/// <summary>A completed order of the member, at the acting brand: <c>total</c> in the brand's currency.</summary>
public sealed record OrderRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string OrderId,
    [property: Required, Range(0, 999_999_999_999)] decimal? Total,
    [property: StringLength(3, MinimumLength = 3)] string? Currency,
    [property: MaxLength(1000)] List<OrderLine>? Products);

/// <summary>A refund of the order, in whole (no <c>amount</c>) or in part (<c>amount</c>, and optionally the refunded <c>products</c>).</summary>
/// <summary>Points paying part of an order at checkout: <c>amount</c> (in the brand's currency) or <c>points</c>, one of them.</summary>
public sealed record CheckoutRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string OrderId,
    [property: Range(0.01, 999_999_999_999)] decimal? Amount,
    [property: Range(1, 1_000_000_000_000)] long? Points);

/// <summary>What the points paid: <c>value</c> in <c>currency</c>; the spend's entry (reverse it to give the points back).</summary>
public sealed record CheckoutDto(string OrderId, long Points, decimal Value, string Currency, EntryDto Entry);

public sealed record OrderRefundRequest(
    [property: Range(0, 999_999_999_999)] decimal? Amount,
    [property: MaxLength(1000)] List<OrderLine>? Products);

/// <summary>
/// The direct order API, for a till or a shop that knows the member: the order earns as a tracked <c>Order Completed</c>
/// would (the same rules, the same key, so an order sent both ways earns once) and the answer carries the entry.
/// The points only: the profile's order statistics come from the tracked event.
/// </summary>
public static class OrderEndpoints
{
    public static void MapOrderRoutes(RouteGroupBuilder postings)
    {
        postings.MapPost("/orders", Completed).Produces<EntryDto>();
        postings.MapPost("/orders/{orderId}/refund", Refunded).Produces<EntryDto>();
        postings.MapPost("/checkout", Checkout).Produces<CheckoutDto>();
    }

    /// <summary>
    /// Points as cash: the programme's <c>checkoutPointsPerCurrencyUnit</c> says how many points pay one unit of the
    /// currency; the value is exact to the currency's minor unit or the request is refused. A spend like any other (the
    /// soonest-expiring lots first, 409 with the shortfall when the balance is short); reversing its entry gives the
    /// points back into the lots they came from.
    /// </summary>
    public static async Task<IResult> Checkout(long id, CheckoutRequest request, HttpContext http, IdempotentPosting once, MeridianDb db, PointsLedger ledger,
        TenantScope tenant, CancellationToken ct)
    {
        if ((request.Amount is null) == (request.Points is null))
            return Problems.Validation("amount", "Send either amount (the value to pay) or points (the points to use), not both.");
        if (await ProgrammeOfAsync(db, id, ct) is not { } programme) return Problems.NotFound($"Member {id}");
        var rate = programme.CheckoutPointsPerCurrencyUnit;
        if (rate <= 0)
            return TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, type: ProblemTypes.BusinessRule,
                title: "Points cannot pay at checkout in this programme.", detail: "Set checkoutPointsPerCurrencyUnit in the programme's earning settings first.");
        var brand = await db.Set<Brand>().AsNoTracking().SingleAsync(b => b.Id == tenant.ActingBrandId!.Value, ct);
        var minor = Profiles.Identity.OrderFacts.MinorUnits(brand.Currency);
        var value = request.Amount ?? decimal.Round((decimal)request.Points!.Value / rate, minor, MidpointRounding.ToZero);
        var points = value * rate;
        if (decimal.Round(value, minor) != value)
            return Problems.Validation("amount", $"{brand.Currency} has {minor} decimals: {value} cannot be paid exactly.");
        if (points != decimal.Truncate(points) || (request.Points is { } asked && asked != points))
            return Problems.Validation(request.Amount is null ? "points" : "amount",
                $"At {rate} points per {brand.Currency}, {(request.Amount is null ? $"{request.Points} points are not" : $"{value} is not")} an exact amount; "
                + $"{decimal.Truncate(points)} points pay {decimal.Round(decimal.Truncate(points) / rate, minor, MidpointRounding.ToZero)}.");
        return await once.RunAsync(http, request, async () =>
            await ledger.SpendAsync(id, (long)points, request.OrderId, ct) is { } entry
                ? new CheckoutDto(request.OrderId, (long)points, value, brand.Currency, LoyaltyEndpoints.ToDto(entry)!)
                : null, $"Member {id}", ct);
    }

    public static Task<IResult> Completed(long id, OrderRequest request, HttpContext http, IdempotentPosting once, MeridianDb db, OrderPoints orders,
        TenantScope tenant, CancellationToken ct) =>
        once.RunAsync(http, request, async () =>
        {
            if (await ProgrammeOfAsync(db, id, ct) is not { } programme) return null;
            var message = Message(request.OrderId, request.Total!.Value, request.Currency, request.Products);
            var entry = await orders.CompletedAsync(programme, id, tenant.ActingBrandId!.Value, message, request.OrderId, request.Total!.Value, ct)
                ?? throw new BusinessRuleException($"Order {request.OrderId}: nothing of its {request.Total} is eligible for points.", StatusCodes.Status422UnprocessableEntity);
            return LoyaltyEndpoints.ToDto(entry);
        }, $"Member {id}", ct);

    public static Task<IResult> Refunded(long id, string orderId, OrderRefundRequest request, HttpContext http, IdempotentPosting once, MeridianDb db,
        OrderPoints orders, TenantScope tenant, CancellationToken ct) =>
        once.RunAsync(http, request, async () =>
        {
            if (await ProgrammeOfAsync(db, id, ct) is not { } programme) return null;
            var amount = request.Amount ?? 0m;
            var brand = tenant.ActingBrandId!.Value;
            var refund = await orders.RefundableAsync(programme, id, brand, Message(orderId, amount, null, request.Products), orderId, amount, ct)
                ?? throw new BusinessRuleException($"Order {orderId} earned the member nothing here.", StatusCodes.Status404NotFound, ProblemTypes.NotFound);
            if (refund.Points <= 0)
                throw new BusinessRuleException($"Order {orderId}: its points were taken back already.", StatusCodes.Status409Conflict);
            return LoyaltyEndpoints.ToDto(await orders.RefundAsync(id, brand, refund.Earned, refund.Points, amount, ct));
        }, $"Member {id}", ct);

    private static async Task<LoyaltyProgramme?> ProgrammeOfAsync(MeridianDb db, long memberId, CancellationToken ct) =>
        await db.Set<LoyaltyMember>().AsNoTracking().Where(m => m.Id == memberId)
            .Join(db.Set<LoyaltyProgramme>(), m => m.ProgrammeId, p => p.Id, (_, p) => p).SingleOrDefaultAsync(ct);

    /// <summary>The order as a tracked event's payload would hold it, for the rules that read the Segment e-commerce spec.</summary>
    private static JsonElement Message(string orderId, decimal total, string? currency, List<OrderLine>? products) =>
        JsonSerializer.SerializeToElement(new
        {
            properties = new
            {
                order_id = orderId, total, currency,
                products = products?.Select(l => new { sku = l.Sku, category = l.Category, price = l.Price, quantity = l.Quantity }),
            },
        });
}
