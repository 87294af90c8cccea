using System.Text.Json;
using Meridian.Data;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Meridian.Profiles.Scoring;
using Meridian.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Profiles;

/// <summary>RFM and value scores: each buying customer ranked against the brand's others by a (here triggered) scoring run.</summary>
public abstract class ProfileScoringTests(MeridianAppFixture app)
{
    private ProfileScorer Scorer => app.Services.GetRequiredService<ProfileScorer>();

    private static object Order(string user, string at, decimal total) =>
        new { type = "track", userId = user, @event = "Order Completed", timestamp = at, properties = new { total } };

    /// <summary>Five customers whose last order, order count and spend put each in a different quintile of each.</summary>
    private static async Task<Dictionary<string, long>> SendFiveCustomersAsync(ProfileTestBrand b)
    {
        await b.SendAsync(
            Order("a", "2026-05-01T00:00:00Z", 500),
            Order("b", "2025-06-01T00:00:00Z", 20), Order("b", "2025-07-01T00:00:00Z", 20), Order("b", "2025-08-01T00:00:00Z", 20),
            Order("b", "2025-09-01T00:00:00Z", 20), Order("b", "2026-01-01T00:00:00Z", 20),
            Order("c", "2025-06-01T00:00:00Z", 100), Order("c", "2025-07-01T00:00:00Z", 100), Order("c", "2025-08-01T00:00:00Z", 100), Order("c", "2026-04-01T00:00:00Z", 100),
            Order("d", "2025-06-01T00:00:00Z", 100), Order("d", "2026-03-01T00:00:00Z", 100),
            Order("e", "2025-06-01T00:00:00Z", 100), Order("e", "2025-07-01T00:00:00Z", 100), Order("e", "2026-02-01T00:00:00Z", 100),
            new { type = "identify", userId = "browser", traits = new { city = "Hangzhou" } });
        var ids = new Dictionary<string, long>();
        foreach (var (user, events) in new[] { ("a", 1), ("b", 5), ("c", 4), ("d", 2), ("e", 3), ("browser", 1) })
            ids[user] = (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", user, p => p.GetProperty("eventCount").GetInt32() == events)).GetProperty("id").GetInt64();
        return ids;
    }

    private static async Task<JsonElement> ComputedAsync(ProfileTestBrand b, long id) =>
        (await b.Test.Client.GetAsync($"/api/v1/profiles/{id}").ReadAsync<JsonElement>()).GetProperty("computed");

    [Fact]
    public async Task A_run_scores_recency_frequency_and_monetary_by_quintile_within_the_brand()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var ids = await SendFiveCustomersAsync(b);

        Assert.True(await Scorer.ScoreAsync(b.Test.Id, null, default));

        foreach (var (user, r, f, m, segment) in new[]
                 {
                     ("a", 5, 1, 5, "new_customers"), ("b", 1, 5, 1, "at_risk"), ("c", 4, 4, 4, "champions"),
                     ("d", 3, 2, 2, "need_attention"), ("e", 2, 3, 3, "at_risk"),
                 })
        {
            var rfm = (await ComputedAsync(b, ids[user])).GetProperty("rfm");
            Assert.Equal((r, f, m, segment), (rfm.GetProperty("recency").GetInt32(), rfm.GetProperty("frequency").GetInt32(),
                rfm.GetProperty("monetary").GetInt32(), rfm.GetProperty("segment").GetString()));
        }
    }

    [Fact]
    public async Task The_value_score_is_the_share_of_customers_spending_no_more()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var ids = await SendFiveCustomersAsync(b);

        Assert.True(await Scorer.ScoreAsync(b.Test.Id, null, default));

        foreach (var (user, value) in new[] { ("a", 100), ("c", 80), ("e", 60), ("d", 40), ("b", 20) })
        {
            var computed = await ComputedAsync(b, ids[user]);
            Assert.Equal(value, computed.GetProperty("valueScore").GetInt32());
            Assert.Equal(JsonValueKind.String, computed.GetProperty("scoredAt").ValueKind);
        }
    }

    [Fact]
    public async Task A_customer_without_orders_and_an_erased_one_have_no_scores()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var ids = await SendFiveCustomersAsync(b);
        await b.SendAsync(Order("gone", "2026-05-02T00:00:00Z", 9000));
        var gone = (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "gone")).GetProperty("id").GetInt64();
        Assert.True(await Scorer.ScoreAsync(b.Test.Id, null, default));
        Assert.Equal(5, (await ComputedAsync(b, gone)).GetProperty("rfm").GetProperty("recency").GetInt32());

        await b.Test.Client.DeleteAsync($"/api/v1/profiles/{gone}").ReadAsync<JsonElement>();
        Assert.True(await Scorer.ScoreAsync(b.Test.Id, null, default));

        var erased = await ComputedAsync(b, gone);
        Assert.Equal(JsonValueKind.Null, erased.GetProperty("rfm").ValueKind);
        Assert.Equal(JsonValueKind.Null, erased.GetProperty("valueScore").ValueKind);
        Assert.Equal(JsonValueKind.Null, (await ComputedAsync(b, ids["browser"])).GetProperty("rfm").ValueKind);
        Assert.Equal(100, (await ComputedAsync(b, ids["a"])).GetProperty("valueScore").GetInt32());
    }

    [Fact]
    public async Task A_brand_scored_within_the_interval_is_not_scored_again()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        Assert.True(await Scorer.ScoreAsync(b.Test.Id, null, default));

        Assert.False(await Scorer.ScoreAsync(b.Test.Id, TimeProvider.System.GetUtcNow().UtcDateTime.AddHours(-1), default));
    }

    [Fact]
    public async Task A_brand_whose_run_another_node_holds_is_left_to_it()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await using (var scope = app.Services.CreateAsyncScope())
        {
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
            db.Add(new ProfileScoring { TenantId = b.Test.Id, LeaseOwner = "other-node", LeaseUntil = DateTime.UtcNow.AddMinutes(10) });
            await db.SaveChangesAsync();
        }

        Assert.False(await Scorer.ScoreAsync(b.Test.Id, null, default));
    }
}

/// <summary>The periodic worker is off here: the tests trigger each run, so none races the timer for a brand's lease.</summary>
public sealed class ScoringSqliteApp : SqliteApp
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings => [new("Meridian:Profiles:Scoring:Enabled", "false")];
}

public sealed class ScoringPostgresApp : PostgresApp
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings => [new("Meridian:Profiles:Scoring:Enabled", "false")];
}

public sealed class ProfileScoringTestsOnSqlite(ScoringSqliteApp app) : ProfileScoringTests(app), IClassFixture<ScoringSqliteApp>;

public sealed class ProfileScoringTestsOnPostgres(ScoringPostgresApp app) : ProfileScoringTests(app), IClassFixture<ScoringPostgresApp>;
