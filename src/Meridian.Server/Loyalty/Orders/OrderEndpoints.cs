using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Data;
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
    }

    public static Task<IResult> Completed(long id, OrderRequest request, HttpContext http, IdempotentPosting once, MeridianDb db, OrderPoints orders,
        CancellationToken ct) =>
        once.RunAsync(http, request, async () =>
        {
            if (await ProgrammeOfAsync(db, id, ct) is not { } programme) return null;
            var message = Message(request.OrderId, request.Total!.Value, request.Currency, request.Products);
            var entry = await orders.CompletedAsync(programme, id, BrandOf(http), message, request.OrderId, request.Total!.Value, ct)
                ?? throw new BusinessRuleException($"Order {request.OrderId}: nothing of its {request.Total} is eligible for points.", StatusCodes.Status422UnprocessableEntity);
            return LoyaltyEndpoints.ToDto(entry);
        }, $"Member {id}", ct);

    public static Task<IResult> Refunded(long id, string orderId, OrderRefundRequest request, HttpContext http, IdempotentPosting once, MeridianDb db,
        OrderPoints orders, CancellationToken ct) =>
        once.RunAsync(http, request, async () =>
        {
            if (await ProgrammeOfAsync(db, id, ct) is not { } programme) return null;
            var amount = request.Amount ?? 0m;
            var brand = BrandOf(http);
            var refund = await orders.RefundableAsync(programme, id, brand, Message(orderId, amount, null, request.Products), orderId, amount, ct)
                ?? throw new BusinessRuleException($"Order {orderId} earned the member nothing here.", StatusCodes.Status404NotFound, ProblemTypes.NotFound);
            if (refund.Points <= 0)
                throw new BusinessRuleException($"Order {orderId}: its points were taken back already.", StatusCodes.Status409Conflict);
            return LoyaltyEndpoints.ToDto(await orders.RefundAsync(id, brand, refund.Earned, refund.Points, amount, ct));
        }, $"Member {id}", ct);

    private static long BrandOf(HttpContext http) => http.RequestServices.GetRequiredService<Platform.Tenancy.TenantScope>().ActingBrandId!.Value;

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
