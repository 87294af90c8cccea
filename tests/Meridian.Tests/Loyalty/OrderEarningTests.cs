using Meridian.Loyalty.Orders;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Loyalty;

/// <summary>Members earn from the orders that reach Meridian as Segment e-commerce events, once per order.</summary>
public abstract class OrderEarningTests(LoyaltyApp app)
{
    [Fact]
    public async Task A_completed_order_earns_per_currency_unit_once_and_its_refunds_take_back_their_share_never_more()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", pointsPerCurrencyUnit = 2 });
        var buyer = LoyaltyTestBrand.MemberUserId;
        await b.Brand.SendAsync(
            new { type = "track", userId = buyer, @event = "Order Completed", properties = new { order_id = "o-1", total = 129.90, currency = "CNY" } },
            new { type = "track", userId = buyer, @event = "Order Completed", properties = new { order_id = "o-1", total = 129.90, currency = "CNY" } },
            new { type = "track", userId = buyer, @event = "Order Completed", properties = new { order_id = 2, revenue = 10 } },
            new { type = "track", userId = "not-a-member", @event = "Order Completed", properties = new { order_id = "o-3", total = 99 } });
        await b.FollowUntilBalanceAsync(app, 259 + 20);

        await b.Brand.SendAsync(new { type = "track", userId = buyer, @event = "Order Refunded", properties = new { order_id = "o-1", total = 50 } });
        await b.FollowUntilBalanceAsync(app, 279 - 100);
        await b.Brand.SendAsync(
            new { type = "track", userId = buyer, @event = "Order Refunded", properties = new { order_id = "o-1" } },
            new { type = "track", userId = buyer, @event = "Order Refunded", properties = new { order_id = "o-1" } });
        await b.FollowUntilBalanceAsync(app, 20);

        var entries = await b.EntriesAsync();
        Assert.Equal(["earn", "earn", "reverse", "reverse"], entries.Select(e => e.GetProperty("kind").GetString()));
        Assert.Equal(["o-1", "2", "o-1", "o-1"], entries.Select(e => e.GetProperty("reference").GetString()));
        Assert.Contains("order o-1: 129.9 × 2 per unit", entries[0].GetProperty("rule").GetString());
        Assert.Equal([-100L, -159L], entries.Skip(2).Select(e => e.GetProperty("points").GetInt64()));
    }

}

public sealed class OrderEarningTestsOnSqlite(LoyaltySqliteApp app) : OrderEarningTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class OrderEarningTestsOnPostgres(LoyaltyPostgresApp app) : OrderEarningTests(app), IClassFixture<LoyaltyPostgresApp>;
