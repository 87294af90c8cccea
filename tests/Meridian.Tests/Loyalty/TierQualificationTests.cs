using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Loyalty.Tiers;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Loyalty;

/// <summary>Tiers qualified by points or by spend within a window; downgrades on refund or at periodic reviews, never below the staff-set floor.</summary>
public abstract class TierQualificationTests(LoyaltyApp app)
{
    [Fact]
    public async Task Spend_within_a_rolling_window_qualifies_and_a_periodic_review_moves_the_member_down_to_its_floor_when_the_window_moves_on()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new
        {
            name = "Club", expiry = "never",
            tiering = new { basis = "spend", window = "rolling_days", windowDays = 30, downgrade = "periodic", reviewDays = 7 },
        });
        var silver = await Tier(b, "Silver", 1, qualifyingSpend: 10_000);
        await Tier(b, "Gold", 2, qualifyingSpend: 50_000);
        var buyer = LoyaltyTestBrand.MemberUserId;

        await b.Brand.SendAsync(new { type = "track", userId = buyer, @event = "Order Completed", properties = new { order_id = "t-1", total = 120.00 } });
        await b.FollowUntilAsync(app, x => x.GetProperty("tier").ValueKind == JsonValueKind.Object);
        Assert.Equal("Silver", (await b.BalanceDtoAsync()).GetProperty("tier").GetProperty("name").GetString());
        await b.Brand.SendAsync(new { type = "track", userId = buyer, @event = "Order Completed", properties = new { order_id = "t-2", total = 400.00 } });
        await b.FollowUntilAsync(app, x => x.GetProperty("tier").GetProperty("name").GetString() == "Gold");
        await b.Client.PutAsJsonAsync($"/api/v1/loyalty/members/{b.MemberId}/tier-floor", new { tierId = silver, reason = "store manager" }).ReadAsync<JsonElement>();

        var review = app.Services.GetRequiredService<TierReviewJob>();
        await review.RunOnceAsync(default);
        Assert.Equal("Gold", (await b.BalanceDtoAsync()).GetProperty("tier").GetProperty("name").GetString());
        app.Clock.Advance(TimeSpan.FromDays(31));
        await review.RunOnceAsync(default);
        await review.RunOnceAsync(default);

        Assert.Equal("Silver", (await b.BalanceDtoAsync()).GetProperty("tier").GetProperty("name").GetString());
        var changes = await b.EventsAsync(app, "tier.changed");
        Assert.Equal(["up:earned", "up:earned", "down:review"], changes.Select(c => $"{c.GetProperty("direction").GetString()}:{c.GetProperty("reason").GetString()}"));
        // Spending points never lowered the spend that qualified; only the window did.
        Assert.Equal(520, (await b.EntriesAsync()).Sum(e => e.GetProperty("points").GetInt64()));
    }

    [Fact]
    public async Task Under_the_on_refund_policy_a_refund_that_takes_back_the_qualifying_points_moves_the_member_down()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", tiering = new { downgrade = "on_refund" } });
        await Tier(b, "Silver", 1, qualifyingPoints: 100);
        await Tier(b, "Gold", 2, qualifyingPoints: 1000);
        var order = await b.EarnAsync(1000);
        await b.SpendAsync(900);
        Assert.Equal("Gold", (await b.BalanceDtoAsync()).GetProperty("tier").GetProperty("name").GetString());

        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{order.GetProperty("id").GetInt64()}/reverse", new { reason = "refund", points = 50 }).ReadAsync<JsonElement>();

        var balance = await b.BalanceDtoAsync();
        Assert.Equal(("Silver", 950L), (balance.GetProperty("tier").GetProperty("name").GetString(), balance.GetProperty("qualifyingPoints").GetInt64()));
        Assert.Equal("down:refund", (await b.EventsAsync(app, "tier.changed")).Select(c => $"{c.GetProperty("direction").GetString()}:{c.GetProperty("reason").GetString()}").Last());
    }

    [Fact]
    public async Task Under_the_never_policy_a_refund_leaves_the_tier_and_spending_never_lowers_qualifying_points()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        await Tier(b, "Gold", 1, qualifyingPoints: 500);
        var order = await b.EarnAsync(600);
        await b.SpendAsync(550);
        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{order.GetProperty("id").GetInt64()}/reverse", new { reason = "refund", points = 50 }).ReadAsync<JsonElement>();

        var balance = await b.BalanceDtoAsync();
        Assert.Equal(("Gold", 550L, 0L), (balance.GetProperty("tier").GetProperty("name").GetString(), balance.GetProperty("qualifyingPoints").GetInt64(), balance.GetProperty("balance").GetInt64()));
        Assert.Contains("free_shipping", balance.GetProperty("tier").GetProperty("benefits").EnumerateArray().Select(x => x.GetString()));
        var benefits = await b.Client.GetAsync($"/api/v1/loyalty/members/{b.MemberId}/benefits").ReadAsync<JsonElement>();
        Assert.Equal(("Gold", 100), (benefits.GetProperty("tier").GetString(), benefits.GetProperty("multiplierPercent").GetInt32()));
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var contract = await scope.ServiceProvider.GetRequiredService<MemberBenefits>().OfProfileAsync(b.ProfileId, default);
        Assert.True(contract!.Has("FREE_SHIPPING"));
    }

    private static async Task<long> Tier(LoyaltyTestBrand b, string name, int rank, long qualifyingPoints = 0, long qualifyingSpend = 0) =>
        (await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers",
            new { name, rank, qualifyingPoints, qualifyingSpend, benefits = new[] { "free_shipping" } }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
}

public sealed class TierQualificationTestsOnSqlite(LoyaltySqliteApp app) : TierQualificationTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class TierQualificationTestsOnPostgres(LoyaltyPostgresApp app) : TierQualificationTests(app), IClassFixture<LoyaltyPostgresApp>;
