using System.Text.Json;
using Meridian.Data;
using Meridian.Loyalty;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Orders;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

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

    [Fact]
    public async Task An_idle_poll_writes_the_lease_only_once_half_of_it_has_run()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var follower = app.Services.GetRequiredService<OrderEarning>();
        var lease = app.Services.GetRequiredService<IOptionsMonitor<LoyaltyJobOptions>>().Get(OrderEarning.Name).Lease;
        await CaughtUpAsync(b, follower);

        // Every lease this node took ends within a lease of the clock: half of it and a second later, a poll renews it.
        app.Clock.Advance(lease / 2 + TimeSpan.FromSeconds(1));
        Assert.Equal(0, await follower.RunOnceAsync(default));
        var renewed = await LeaseUntilAsync();
        Assert.Equal(app.Clock.GetUtcNow().UtcDateTime + lease, renewed, TimeSpan.FromMilliseconds(1));

        app.Clock.Advance(lease / 2 - TimeSpan.FromSeconds(1));
        Assert.Equal(0, await follower.RunOnceAsync(default));
        Assert.Equal(renewed, await LeaseUntilAsync());

        app.Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, await follower.RunOnceAsync(default));
        Assert.Equal(app.Clock.GetUtcNow().UtcDateTime + lease, await LeaseUntilAsync(), TimeSpan.FromMilliseconds(1));
    }

    /// <summary>Waits until identity resolution has every logged event, then lets the follower read them all.</summary>
    private static async Task CaughtUpAsync(LoyaltyTestBrand b, OrderEarning follower)
    {
        for (var attempt = 0; ; attempt++)
        {
            var identity = await b.Client.GetAsync("/api/v1/identity/status").ReadAsync<JsonElement>();
            if (identity.GetProperty("eventsBehind").GetInt64() == 0) break;
            Assert.True(attempt < 600, "identity resolution did not catch up within a minute");
            await Task.Delay(100);
        }
        while (await follower.RunOnceAsync(default) > 0) { }
    }

    private async Task<DateTime> LeaseUntilAsync()
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<LoyaltyJob>().AsNoTracking()
            .Where(j => j.Name == OrderEarning.Name).Select(j => j.LeaseUntil!.Value).SingleAsync();
    }
}

public sealed class OrderEarningTestsOnSqlite(LoyaltySqliteApp app) : OrderEarningTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class OrderEarningTestsOnPostgres(LoyaltyPostgresApp app) : OrderEarningTests(app), IClassFixture<LoyaltyPostgresApp>;
