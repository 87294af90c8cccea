using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Meridian.Tests.Loyalty;

/// <summary>The direct order API: a till that knows the member posts the order and gets the entry back.</summary>
public abstract class OrderApiTests(LoyaltyApp app)
{
    [Fact]
    public async Task An_order_posted_directly_earns_its_eligible_amount_once_per_order_and_its_refunds_take_back_their_share()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", pointsPerCurrencyUnit = 2 });
        Assert.Equal(HttpStatusCode.OK, (await b.Client.PatchAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/earning",
            new { excludedSkus = new[] { "GIFT-CARD" } })).StatusCode);
        var orders = $"/api/v1/loyalty/members/{b.MemberId}/orders";
        var order = new
        {
            orderId = "T-1", total = 150.00m,
            products = new[] { new { sku = "SHOE-1", category = "shoes", price = 100m, quantity = 1m }, new { sku = "GIFT-CARD", category = "cards", price = 50m, quantity = 1m } },
        };

        using var first = await b.PostAsync(orders, order, key: "till-1");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var entry = await first.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(200, entry.GetProperty("points").GetInt64());
        Assert.Contains("order T-1: 100.00 × 2 per unit (50 of 150.00 excluded by SKU or category)", entry.GetProperty("rule").GetString());

        // The same key replays the answer byte for byte; a new key for the same order earns nothing more.
        using var replay = await b.PostAsync(orders, order, key: "till-1");
        Assert.Equal(await first.Content.ReadAsStringAsync(), await replay.Content.ReadAsStringAsync());
        using var again = await b.PostAsync(orders, order, key: "till-2");
        Assert.Equal(entry.GetProperty("id").GetInt64(), (await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64());
        // The same order tracked as an event (the shop's tracking also reports it) does not earn twice either.
        await b.Brand.SendAsync(new { type = "track", userId = LoyaltyTestBrand.MemberUserId, @event = "Order Completed",
            properties = new { order_id = "T-1", total = 150.00m } });
        await b.Brand.SendAsync(new { type = "track", userId = LoyaltyTestBrand.MemberUserId, @event = "Order Completed",
            properties = new { order_id = "T-2", total = 5m } });
        await b.FollowUntilBalanceAsync(app, 200 + 10);

        // Half the shoe back: 50 eligible, 100 points; then the rest of the order: the other 100, never more.
        using var partial = await b.PostAsync($"{orders}/T-1/refund", new { amount = 50m });
        Assert.Equal(-100, (await partial.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("points").GetInt64());
        using var rest = await b.PostAsync($"{orders}/T-1/refund", new { });
        Assert.Equal(-100, (await rest.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("points").GetInt64());
        using var more = await b.PostAsync($"{orders}/T-1/refund", new { });
        Assert.Equal(HttpStatusCode.Conflict, more.StatusCode);
        Assert.Equal(10, await b.BalanceAsync());

        using var unknown = await b.PostAsync($"{orders}/NOPE/refund", new { });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var nothing = await b.PostAsync(orders, new { orderId = "T-3", total = 20m, products = new[] { new { sku = "GIFT-CARD", price = 20m } } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, nothing.StatusCode);
        using var invalid = await b.PostAsync(orders, new { orderId = "", total = -1m });
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var problem = await invalid.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty("orderId", out _));
        Assert.True(problem.GetProperty("errors").TryGetProperty("total", out _));
        using var stranger = await b.PostAsync("/api/v1/loyalty/members/999999999/orders", order);
        Assert.Equal(HttpStatusCode.NotFound, stranger.StatusCode);
    }

    [Fact]
    public async Task Points_pay_at_checkout_at_the_programme_rate_exactly_short_balances_get_the_shortfall_and_a_reversal_gives_them_back()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        var checkout = $"/api/v1/loyalty/members/{b.MemberId}/checkout";
        await b.EarnAsync(5_000);
        using var off = await b.PostAsync(checkout, new { orderId = "C-0", amount = 1m });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, off.StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await b.Client.PatchAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/earning",
            new { checkoutPointsPerCurrencyUnit = 100 })).StatusCode);
        using var paid = await b.PostAsync(checkout, new { orderId = "C-1", amount = 12.34m }, key: "pay-1");
        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        var receipt = await paid.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(1_234, receipt.GetProperty("points").GetInt64());
        Assert.Equal(12.34m, receipt.GetProperty("value").GetDecimal());
        Assert.Equal("CNY", receipt.GetProperty("currency").GetString());
        Assert.Equal(-1_234, receipt.GetProperty("entry").GetProperty("points").GetInt64());
        using var replay = await b.PostAsync(checkout, new { orderId = "C-1", amount = 12.34m }, key: "pay-1");
        Assert.Equal(await paid.Content.ReadAsStringAsync(), await replay.Content.ReadAsStringAsync());
        Assert.Equal(5_000 - 1_234, await b.BalanceAsync());

        using var byPoints = await b.PostAsync(checkout, new { orderId = "C-2", points = 700 });
        Assert.Equal(7m, (await byPoints.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("value").GetDecimal());
        using var inexact = await b.PostAsync(checkout, new { orderId = "C-3", amount = 0.005m });
        Assert.Equal(HttpStatusCode.BadRequest, inexact.StatusCode);
        using var both = await b.PostAsync(checkout, new { orderId = "C-3", amount = 1m, points = 100 });
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        using var tooMuch = await b.PostAsync(checkout, new { orderId = "C-4", amount = 100m });
        Assert.Equal(HttpStatusCode.Conflict, tooMuch.StatusCode);
        var shortfall = await tooMuch.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(10_000 - (5_000 - 1_234 - 700), shortfall.GetProperty("shortfall").GetInt64());

        // The order is cancelled: reversing the spend gives the points back.
        var spend = receipt.GetProperty("entry").GetProperty("id").GetInt64();
        using var reversed = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{spend}/reverse", new { reason = "order C-1 cancelled" });
        Assert.Equal(HttpStatusCode.OK, reversed.StatusCode);
        Assert.Equal(5_000 - 700, await b.BalanceAsync());
    }
}

public sealed class OrderApiTestsOnSqlite(LoyaltySqliteApp app) : OrderApiTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class OrderApiTestsOnPostgres(LoyaltyPostgresApp app) : OrderApiTests(app), IClassFixture<LoyaltyPostgresApp>;
