using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Meridian.Loyalty;
using Meridian.Loyalty.Expiry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Meridian.Tests.Loyalty;

/// <summary>The expiry job: due lots lose what is left in them, once, and members hear about it beforehand.</summary>
public abstract class PointsExpiryTests(LoyaltyApp app)
{
    private PointsExpiryJob Job => app.Services.GetRequiredService<PointsExpiryJob>();

    [Fact]
    public async Task A_due_lot_expires_what_is_left_in_it_and_never_the_points_already_spent()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "after_days", expiryDays = 30 });
        await b.EarnAsync(100);
        app.Clock.Advance(TimeSpan.FromDays(10));
        await b.EarnAsync(50);
        await b.SpendAsync(60);

        app.Clock.Advance(TimeSpan.FromDays(21));
        await Job.RunOnceAsync(default);
        Assert.Equal(50, await b.BalanceAsync());
        var expiry = Assert.Single(await b.EntriesAsync(), e => e.GetProperty("kind").GetString() == "expire");
        Assert.Equal(-40, expiry.GetProperty("points").GetInt64());
        Assert.Equal("expired", expiry.GetProperty("account").GetString());

        await Job.RunOnceAsync(default);
        Assert.Single(await b.EntriesAsync(), e => e.GetProperty("kind").GetString() == "expire");

        app.Clock.Advance(TimeSpan.FromDays(10));
        await Job.RunOnceAsync(default);
        Assert.Equal(0, await b.BalanceAsync());
        var entries = await b.EntriesAsync();
        Assert.Equal(0, entries.Sum(e => e.GetProperty("points").GetInt64()));
        Assert.Equal(2, (await b.EventsAsync(app, "points.expired")).Count);
    }

    [Fact]
    public async Task One_run_expires_the_due_lots_of_many_members_each_lot_once_and_leaves_their_later_lots()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "after_days", expiryDays = 30 });
        var members = new List<long> { b.MemberId };
        for (var i = 2; i <= 5; i++)
        {
            var profileId = await LoyaltyTestBrand.NewProfileAsync(b.Brand, $"member-{i}");
            members.Add((await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/members", new { profileId }).ReadAsync<JsonElement>())
                .GetProperty("id").GetInt64());
        }
        Task<JsonElement> Post(long member, string action, long points) =>
            b.PostAsync($"/api/v1/loyalty/members/{member}/{action}", new { points }).ReadAsync<JsonElement>();
        foreach (var (member, i) in members.Select((m, i) => (m, i)))
        {
            await Post(member, "earn", 100 + i);
            await Post(member, "earn", 50);
            await Post(member, "spend", 30);
        }
        app.Clock.Advance(TimeSpan.FromDays(10));
        foreach (var member in members) await Post(member, "earn", 20);

        app.Clock.Advance(TimeSpan.FromDays(21));
        await Job.RunOnceAsync(default);
        await Job.RunOnceAsync(default);

        foreach (var (member, i) in members.Select((m, i) => (m, i)))
        {
            var entries = (await b.Client.GetAsync($"/api/v1/loyalty/members/{member}/entries?limit=200").ReadAsync<JsonElement>()).GetProperty("items")
                .EnumerateArray().ToList();
            var expiries = entries.Where(e => e.GetProperty("kind").GetString() == "expire").Select(e => e.GetProperty("points").GetInt64()).Order().ToList();
            // The spend drew 30 from the first lot (soonest to expire); what was left in both due lots expired, the later lot stays.
            Assert.Equal([-(70 + i), -50], expiries);
            var balance = (await b.Client.GetAsync($"/api/v1/loyalty/members/{member}/balance").ReadAsync<JsonElement>()).GetProperty("balance").GetInt64();
            Assert.Equal(20, balance);
            Assert.Equal(balance, entries.Sum(e => e.GetProperty("points").GetInt64()));
        }
        var expired = await b.EventsAsync(app, "points.expired");
        Assert.Equal(2 * members.Count, expired.Count);
        Assert.Equal(members.Order(), expired.Select(e => e.GetProperty("memberId").GetInt64()).Distinct().Order());
    }

    [Fact]
    public async Task Points_refunded_into_an_expired_lot_expire_on_the_next_run()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "end_of_month" });
        await b.EarnAsync(100);
        var spent = await b.SpendAsync(100);
        app.Clock.Advance(TimeSpan.FromDays(32));
        await Job.RunOnceAsync(default);

        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{spent.GetProperty("id").GetInt64()}/reverse", new { reason = "refund" }).ReadAsync<JsonElement>();
        Assert.Equal(100, await b.BalanceAsync());
        await Job.RunOnceAsync(default);

        Assert.Equal(0, await b.BalanceAsync());
    }

    [Fact]
    public async Task Members_hear_of_expiring_points_the_programmes_notice_days_before_and_only_once()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "after_days", expiryDays = 60, expiringNoticeDays = 7 });
        await b.EarnAsync(100);
        await b.EarnAsync(20);
        await Job.RunOnceAsync(default);
        Assert.Empty(await b.EventsAsync(app, "points.expiring"));

        app.Clock.Advance(TimeSpan.FromDays(54));
        await Job.RunOnceAsync(default);
        await Job.RunOnceAsync(default);

        var notice = Assert.Single(await b.EventsAsync(app, "points.expiring"));
        Assert.Equal(120, notice.GetProperty("points").GetInt64());
        Assert.Equal(b.MemberId, notice.GetProperty("memberId").GetInt64());
    }

    [Fact]
    public async Task One_node_at_a_time_runs_the_job_and_another_takes_over_when_its_lease_lapses()
    {
        var other = new PointsExpiryJob(app.Services.GetRequiredService<IServiceScopeFactory>(),
            new LoyaltyJobOptions { NodeName = "other-node", Lease = TimeSpan.FromMinutes(2) }, app.Clock, NullLogger<PointsExpiryJob>.Instance);
        Assert.NotNull(await Job.RunOnceAsync(default));

        Assert.Null(await other.RunOnceAsync(default));
        app.Clock.Advance(TimeSpan.FromMinutes(3));
        Assert.NotNull(await other.RunOnceAsync(default));
        Assert.Null(await Job.RunOnceAsync(default));
        app.Clock.Advance(TimeSpan.FromMinutes(3));
    }
}

public sealed class PointsExpiryTestsOnSqlite(LoyaltySqliteApp app) : PointsExpiryTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class PointsExpiryTestsOnPostgres(LoyaltyPostgresApp app) : PointsExpiryTests(app), IClassFixture<LoyaltyPostgresApp>;
