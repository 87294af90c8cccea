using System.Text.Json;
using Meridian.Hosting;
using Meridian.Loyalty;
using Meridian.Loyalty.Expiry;
using Meridian.Loyalty.Orders;
using Meridian.Loyalty.Pending;
using Meridian.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Meridian.Tests.Loyalty;

/// <summary>
/// Points held for a return window (pending), released once by the release job; refunds within the window take back
/// pending points, refunds of points already spent follow the programme's refund policy.
/// </summary>
public abstract class PendingPointsTests(LoyaltyApp app)
{
    private PointsReleaseJob Release => app.Services.GetRequiredService<PointsReleaseJob>();

    [Fact]
    public async Task Held_points_cannot_be_spent_until_the_release_job_frees_them_once_and_they_expire_from_their_release()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "after_days", expiryDays = 30 });
        await b.EarnAsync(50);
        var held = await Earn(b, 200, pendingDays: 14);
        Assert.Equal(0, held.GetProperty("points").GetInt64());
        Assert.Equal(200, held.GetProperty("pending").GetInt64());
        Assert.NotEqual(JsonValueKind.Null, held.GetProperty("lot").GetProperty("heldUntil").ValueKind);

        var balance = await BalanceAsync(b);
        Assert.Equal((50, 200), (balance.GetProperty("balance").GetInt64(), balance.GetProperty("pending").GetInt64()));
        var refused = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 60 }).ProblemAsync(409, ProblemTypes.InsufficientPoints);
        Assert.Equal(10, refused.GetProperty("shortfall").GetInt64());

        app.Clock.Advance(TimeSpan.FromDays(13));
        await Release.RunOnceAsync(default);
        Assert.Equal(200, (await BalanceAsync(b)).GetProperty("pending").GetInt64());
        app.Clock.Advance(TimeSpan.FromDays(1));
        await Release.RunOnceAsync(default);
        await Release.RunOnceAsync(default);

        balance = await BalanceAsync(b);
        Assert.Equal((250, 0), (balance.GetProperty("balance").GetInt64(), balance.GetProperty("pending").GetInt64()));
        var release = Assert.Single(await b.EntriesAsync(), e => e.GetProperty("kind").GetString() == "release");
        Assert.Equal((200, -200, "pending"), (release.GetProperty("points").GetInt64(), release.GetProperty("pending").GetInt64(), release.GetProperty("account").GetString()));
        Assert.Equal(250, release.GetProperty("balanceAfter").GetInt64());

        // The first 50 points expire 30 days after they were earned, the released 200 30 days after their release.
        app.Clock.Advance(TimeSpan.FromDays(17));
        await app.Services.GetRequiredService<PointsExpiryJob>().RunOnceAsync(default);
        Assert.Equal(200, await b.BalanceAsync());
    }

    [Fact]
    public async Task A_refund_within_the_return_window_takes_back_pending_points_and_nothing_is_released_for_them()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        var held = await Earn(b, 300, pendingDays: 30);

        var part = await Reverse(b, held, new { reason = "order refunded", points = 100, applyRefundPolicy = true }).ReadAsync<JsonElement>();
        Assert.Equal((0, -100), (part.GetProperty("points").GetInt64(), part.GetProperty("pending").GetInt64()));
        var rest = await Reverse(b, held, new { reason = "order refunded" }).ReadAsync<JsonElement>();
        Assert.Equal(-200, rest.GetProperty("pending").GetInt64());

        app.Clock.Advance(TimeSpan.FromDays(31));
        await Release.RunOnceAsync(default);
        var balance = await BalanceAsync(b);
        Assert.Equal((0, 0, 0), (balance.GetProperty("balance").GetInt64(), balance.GetProperty("pending").GetInt64(), balance.GetProperty("qualifyingPoints").GetInt64()));
        Assert.DoesNotContain(await b.EntriesAsync(), e => e.GetProperty("kind").GetString() == "release");
    }

    [Fact]
    public async Task Under_the_refuse_policy_a_refund_of_spent_points_is_a_409_with_the_shortfall_and_moves_nothing()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        var earned = await b.EarnAsync(100);
        await b.SpendAsync(80);

        var problem = await Reverse(b, earned, new { applyRefundPolicy = true }).ProblemAsync(409, ProblemTypes.InsufficientPoints);

        Assert.Equal(80, problem.GetProperty("shortfall").GetInt64());
        Assert.Equal(20, await b.BalanceAsync());
    }

    [Fact]
    public async Task Under_the_go_negative_policy_a_refund_of_spent_points_owes_them_up_to_the_limit_and_later_points_pay_them_first()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", refundShortfall = "go_negative", negativeLimit = 50 });
        var earned = await b.EarnAsync(100);
        await b.SpendAsync(80);

        var refund = await Reverse(b, earned, new { reason = "order refunded", applyRefundPolicy = true }).ReadAsync<JsonElement>();
        Assert.Equal(-70, refund.GetProperty("points").GetInt64());
        Assert.Equal(-50, refund.GetProperty("balanceAfter").GetInt64());
        Assert.Contains("50 owed", refund.GetProperty("rule").GetString());
        Assert.Contains("30 could not be taken back", refund.GetProperty("rule").GetString());
        var balance = await BalanceAsync(b);
        Assert.Equal((-50, 50), (balance.GetProperty("balance").GetInt64(), balance.GetProperty("owed").GetInt64()));
        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 1 }).ProblemAsync(409, ProblemTypes.InsufficientPoints);

        var next = await b.EarnAsync(80);
        Assert.Equal(30, next.GetProperty("balanceAfter").GetInt64());
        Assert.Equal(50, next.GetProperty("draws").EnumerateArray().Sum(d => d.GetProperty("points").GetInt64()));
        balance = await BalanceAsync(b);
        Assert.Equal((30, 0), (balance.GetProperty("balance").GetInt64(), balance.GetProperty("owed").GetInt64()));
        await b.SpendAsync(30);
        Assert.Equal(0, (await b.EntriesAsync()).Sum(e => e.GetProperty("points").GetInt64()));
    }

    [Fact]
    public async Task Under_the_claw_back_policy_a_refund_of_spent_points_takes_them_from_other_pending_points()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", refundShortfall = "claw_back_from_pending" });
        var earned = await b.EarnAsync(100);
        await b.SpendAsync(90);
        await Earn(b, 40, pendingDays: 10);

        var refund = await Reverse(b, earned, new { reason = "order refunded", applyRefundPolicy = true }).ReadAsync<JsonElement>();

        Assert.Equal((-10, -40), (refund.GetProperty("points").GetInt64(), refund.GetProperty("pending").GetInt64()));
        Assert.Contains("40 from pending points", refund.GetProperty("rule").GetString());
        Assert.Contains("50 could not be taken back", refund.GetProperty("rule").GetString());
        var balance = await BalanceAsync(b);
        Assert.Equal((0, 0, 0), (balance.GetProperty("balance").GetInt64(), balance.GetProperty("pending").GetInt64(), balance.GetProperty("owed").GetInt64()));
        app.Clock.Advance(TimeSpan.FromDays(11));
        await Release.RunOnceAsync(default);
        Assert.Equal(0, await b.BalanceAsync());
        Assert.DoesNotContain(await b.EntriesAsync(), e => e.GetProperty("kind").GetString() == "release");
    }

    [Fact]
    public async Task An_order_earns_pending_points_for_the_programmes_return_window_and_its_refund_within_it_takes_them_back()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", pendingDays = 7 });
        var buyer = LoyaltyTestBrand.MemberUserId;
        await b.Brand.SendAsync(new { type = "track", userId = buyer, @event = "Order Completed", properties = new { order_id = "p-1", total = 120 } });
        await b.FollowUntilAsync(app, balance => balance.GetProperty("pending").GetInt64() == 120);

        await b.Brand.SendAsync(new { type = "track", userId = buyer, @event = "Order Refunded", properties = new { order_id = "p-1", total = 20 } });
        await b.FollowUntilAsync(app, balance => balance.GetProperty("pending").GetInt64() == 100);
        app.Clock.Advance(TimeSpan.FromDays(8));
        await Release.RunOnceAsync(default);

        var after = await BalanceAsync(b);
        Assert.Equal((100, 0), (after.GetProperty("balance").GetInt64(), after.GetProperty("pending").GetInt64()));
    }

    [Fact]
    public async Task One_node_at_a_time_releases_and_another_resumes_when_its_lease_lapses()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        for (var i = 0; i < 5; i++) await Earn(b, 10, pendingDays: 1);
        var other = new PointsReleaseJob(app.Services.GetRequiredService<IServiceScopeFactory>(),
            new LoyaltyJobOptions { NodeName = "other-release-node", Lease = TimeSpan.FromMinutes(2), BatchSize = 2 }, app.Clock, NullLogger<PointsReleaseJob>.Instance);
        Assert.NotNull(await Release.RunOnceAsync(default));
        Assert.Null(await other.RunOnceAsync(default));

        // The first node stops (its lease lapses): the other resumes, in batches of two, from the lots still held.
        app.Clock.Advance(TimeSpan.FromDays(1));
        Assert.True(await other.RunOnceAsync(default) >= 5);
        Assert.Null(await Release.RunOnceAsync(default));
        app.Clock.Advance(TimeSpan.FromMinutes(3));

        Assert.Equal(50, await b.BalanceAsync());
        Assert.Equal(5, (await b.EntriesAsync()).Count(e => e.GetProperty("kind").GetString() == "release"));
    }

    private static Task<JsonElement> Earn(LoyaltyTestBrand b, long points, int pendingDays) =>
        b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/earn", new { points, pendingDays }).ReadAsync<JsonElement>();

    private static Task<HttpResponseMessage> Reverse(LoyaltyTestBrand b, JsonElement entry, object body) =>
        b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{entry.GetProperty("id").GetInt64()}/reverse", body);

    private static Task<JsonElement> BalanceAsync(LoyaltyTestBrand b) => b.BalanceDtoAsync();
}

public sealed class PendingPointsTestsOnSqlite(LoyaltySqliteApp app) : PendingPointsTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class PendingPointsTestsOnPostgres(LoyaltyPostgresApp app) : PendingPointsTests(app), IClassFixture<LoyaltyPostgresApp>;
