using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Loyalty;

/// <summary>Earning, spending, adjusting and reversing points through the API, and the balance and history they leave.</summary>
public abstract class PointsLedgerTests(LoyaltyApp app)
{
    [Fact]
    public async Task Earning_and_spending_move_the_balance_and_every_entry_is_in_the_history()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var earned = await b.EarnAsync(500);
        var spent = await b.SpendAsync(120);

        Assert.Equal(500, earned.GetProperty("balanceAfter").GetInt64());
        Assert.Equal("issued", earned.GetProperty("account").GetString());
        Assert.Equal(-120, spent.GetProperty("points").GetInt64());
        Assert.Equal(380, spent.GetProperty("balanceAfter").GetInt64());
        Assert.Equal(380, await b.BalanceAsync());
        var entries = await b.EntriesAsync();
        Assert.Equal(["earn", "spend"], entries.Select(e => e.GetProperty("kind").GetString()));
        Assert.Equal(380, entries.Sum(e => e.GetProperty("points").GetInt64()));
        var events = await b.EventsAsync(app, "points.spent");
        Assert.Equal(120, Assert.Single(events).GetProperty("points").GetInt64());
        Assert.Single(await b.EventsAsync(app, "member.enrolled"));
    }

    [Fact]
    public async Task Spending_more_than_the_balance_fails_with_409_and_the_shortfall()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.EarnAsync(100);

        var problem = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 130 }).ProblemAsync(409, ProblemTypes.InsufficientPoints);

        Assert.Equal(30, problem.GetProperty("shortfall").GetInt64());
        Assert.Equal(100, problem.GetProperty("balance").GetInt64());
        Assert.Equal(130, problem.GetProperty("requested").GetInt64());
        Assert.Equal(100, await b.BalanceAsync());
        Assert.Single(await b.EntriesAsync());
    }

    [Fact]
    public async Task A_retry_with_the_same_key_returns_the_first_response_byte_for_byte_and_moves_nothing()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.EarnAsync(100);

        using var first = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 40, reference = "r-1" }, "spend-1");
        using var again = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 40, reference = "r-1" }, "spend-1");

        Assert.Equal(200, (int)first.StatusCode);
        Assert.Equal(first.StatusCode, again.StatusCode);
        Assert.Equal(await first.Content.ReadAsByteArrayAsync(), await again.Content.ReadAsByteArrayAsync());
        Assert.Equal(60, await b.BalanceAsync());
    }

    [Fact]
    public async Task The_same_key_with_a_different_body_is_refused_with_422()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.EarnAsync(100, "key-1");

        var problem = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/earn", new { points = 101 }, "key-1").ProblemAsync(422, ProblemTypes.IdempotencyKeyReused);

        Assert.Contains("different request", problem.GetProperty("detail").GetString());
        Assert.Equal(100, await b.BalanceAsync());
    }

    [Fact]
    public async Task A_posting_without_an_idempotency_key_is_refused_with_400()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);

        var problem = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/members/{b.MemberId}/earn", new { points = 10 }).ProblemAsync(400, ProblemTypes.Validation);

        Assert.True(problem.GetProperty("errors").TryGetProperty("idempotency-Key", out _) || problem.GetProperty("errors").TryGetProperty("Idempotency-Key", out _));
    }

    [Fact]
    public async Task Spending_draws_from_the_soonest_expiring_lots_and_reversing_it_restores_exactly_those_lots()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var early = await b.EarnAsync(100);
        app.Clock.Advance(TimeSpan.FromDays(10));
        var later = await b.EarnAsync(100);
        app.Clock.Advance(TimeSpan.FromDays(10));
        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/adjust", new { points = 50, reason = "goodwill" }).ReadAsync<JsonElement>();

        var spent = await b.SpendAsync(150);
        var draws = spent.GetProperty("draws").EnumerateArray().Select(d => (d.GetProperty("lotId").GetInt64(), d.GetProperty("points").GetInt64())).ToList();
        Assert.Equal([(LotOf(early), 100L), (LotOf(later), 50L)], draws);

        var reversed = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{spent.GetProperty("id").GetInt64()}/reverse", new { reason = "order returned" })
            .ReadAsync<JsonElement>();
        Assert.Equal(150, reversed.GetProperty("points").GetInt64());
        Assert.Equal([(LotOf(early), -100L), (LotOf(later), -50L)],
            reversed.GetProperty("draws").EnumerateArray().Select(d => (d.GetProperty("lotId").GetInt64(), d.GetProperty("points").GetInt64())).ToList());
        Assert.Equal(250, await b.BalanceAsync());

        // The next spend draws the same lots again: they hold their points once more.
        var again = await b.SpendAsync(120);
        Assert.Equal([(LotOf(early), 100L), (LotOf(later), 20L)],
            again.GetProperty("draws").EnumerateArray().Select(d => (d.GetProperty("lotId").GetInt64(), d.GetProperty("points").GetInt64())).ToList());
    }

    [Fact]
    public async Task The_balance_shows_its_next_ten_expiry_dates_soonest_first_without_points_already_spent()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        Assert.Empty((await b.BalanceDtoAsync()).GetProperty("expiring").EnumerateArray());
        await b.EarnAsync(100);
        app.Clock.Advance(TimeSpan.FromDays(10));
        var second = await b.EarnAsync(50);
        await b.EarnAsync(30); // the same instant: the same expiry date as the 50
        await b.SpendAsync(120); // all of the first lot, 20 of the second
        for (var day = 1; day <= 11; day++)
        {
            app.Clock.Advance(TimeSpan.FromDays(1));
            await b.EarnAsync(day);
        }

        var balance = await b.BalanceDtoAsync();

        Assert.Equal(60 + 66, balance.GetProperty("balance").GetInt64());
        var expiring = balance.GetProperty("expiring").EnumerateArray().Select(e => (e.GetProperty("expiresAt").GetDateTime(), e.GetProperty("points").GetInt64())).ToList();
        // Exactly as the earn answered: postings keep instants to the microsecond, as PostgreSQL stores them.
        var secondExpiry = second.GetProperty("lot").GetProperty("expiresAt").GetDateTime();
        Assert.Equal([(secondExpiry, 60L), .. Enumerable.Range(1, 9).Select(day => (secondExpiry.AddDays(day), (long)day))], expiring);
    }

    [Fact]
    public async Task An_entry_is_reversed_only_once_and_expiry_is_final()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var earned = await b.EarnAsync(80);
        var path = $"/api/v1/loyalty/members/{b.MemberId}/entries/{earned.GetProperty("id").GetInt64()}/reverse";
        var reversal = await b.PostAsync(path, new { reason = "mistake" }).ReadAsync<JsonElement>();
        Assert.Equal(-80, reversal.GetProperty("points").GetInt64());
        Assert.Equal(0, await b.BalanceAsync());

        var twice = await b.PostAsync(path, new { reason = "mistake" }).ProblemAsync(409, ProblemTypes.NotReversible);
        Assert.Contains("already reversed", twice.GetProperty("detail").GetString());
        var ofReversal = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{reversal.GetProperty("id").GetInt64()}/reverse", new { })
            .ProblemAsync(422, ProblemTypes.NotReversible);
        Assert.Contains("cannot be reversed", ofReversal.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task An_earning_can_be_reversed_in_parts_never_beyond_its_points_and_a_spend_only_in_full()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var earned = await b.EarnAsync(100);
        var reverse = $"/api/v1/loyalty/members/{b.MemberId}/entries/{earned.GetProperty("id").GetInt64()}/reverse";

        Assert.Equal(-30, (await b.PostAsync(reverse, new { points = 30 }).ReadAsync<JsonElement>()).GetProperty("points").GetInt64());
        var tooMuch = await b.PostAsync(reverse, new { points = 80 }).ProblemAsync(422, ProblemTypes.NotReversible);
        Assert.Contains("70 points", tooMuch.GetProperty("detail").GetString());
        Assert.Equal(-70, (await b.PostAsync(reverse, new { }).ReadAsync<JsonElement>()).GetProperty("points").GetInt64());
        Assert.Equal(0, await b.BalanceAsync());

        await b.EarnAsync(50);
        var spent = await b.SpendAsync(40);
        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{spent.GetProperty("id").GetInt64()}/reverse", new { points = 10 })
            .ProblemAsync(422, ProblemTypes.NotReversible);
        Assert.Equal(10, await b.BalanceAsync());
    }

    [Fact]
    public async Task Reversing_an_earning_whose_points_were_spent_fails_with_the_shortfall()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var earned = await b.EarnAsync(100);
        await b.SpendAsync(70);

        var problem = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{earned.GetProperty("id").GetInt64()}/reverse", new { })
            .ProblemAsync(409, ProblemTypes.InsufficientPoints);

        Assert.Equal(70, problem.GetProperty("shortfall").GetInt64());
    }

    [Fact]
    public async Task An_adjustment_needs_a_reason_and_is_in_the_audit_log()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.EarnAsync(100);

        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/adjust", new { points = -30 }).ProblemAsync(400, ProblemTypes.Validation);
        var adjusted = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/adjust", new { points = -30, reason = "duplicate grant" }).ReadAsync<JsonElement>();

        Assert.Equal("adjustments", adjusted.GetProperty("account").GetString());
        Assert.Equal(70, await b.BalanceAsync());
        var audit = await b.Client.GetAsync("/api/v1/audit?action=loyalty.points.adjusted").ReadAsync<JsonElement>();
        var entry = Assert.Single(audit.GetProperty("items").EnumerateArray(), e => e.GetProperty("action").GetString() == "loyalty.points.adjusted");
        Assert.Contains("duplicate grant", entry.GetProperty("after").ToString());
    }

    [Fact]
    public async Task Earning_applies_the_tier_multiplier_and_reaching_a_threshold_changes_the_tier()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers",
            new { name = "Gold", rank = 2, qualifyingPoints = 1000, multiplierPercent = 150, benefits = new[] { "free_shipping" } }).ReadAsync<JsonElement>();

        await b.EarnAsync(1000);
        var member = await b.Client.GetAsync($"/api/v1/loyalty/members/{b.MemberId}").ReadAsync<JsonElement>();
        Assert.Equal("Gold", member.GetProperty("tier").GetProperty("name").GetString());
        var boosted = await b.EarnAsync(100);

        Assert.Equal(150, boosted.GetProperty("points").GetInt64());
        Assert.Contains("150%", boosted.GetProperty("rule").GetString());
        Assert.Equal("Gold", Assert.Single(await b.EventsAsync(app, "tier.changed")).GetProperty("toTier").GetString());
    }

    [Fact]
    public async Task Staff_grant_a_tier_by_hand_with_a_reason_and_earning_never_takes_the_member_below_it()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers", new { name = "Silver", rank = 1, qualifyingPoints = 100 }).ReadAsync<JsonElement>();
        var gold = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers", new { name = "Gold", rank = 2, qualifyingPoints = 5000, multiplierPercent = 200 }).ReadAsync<JsonElement>();
        var path = $"/api/v1/loyalty/members/{b.MemberId}/tier-floor";

        await b.Client.PutAsJsonAsync(path, new { tierId = gold.GetProperty("id").GetInt64() }).ProblemAsync(400, ProblemTypes.Validation);
        await b.Client.PutAsJsonAsync(path, new { tierId = 999_999_999, reason = "x" }).ProblemAsync(422, ProblemTypes.BusinessRule);
        var member = await b.Client.PutAsJsonAsync(path, new { tierId = gold.GetProperty("id").GetInt64(), reason = "VIP from the flagship store" }).ReadAsync<JsonElement>();
        Assert.Equal("Gold", member.GetProperty("tier").GetProperty("name").GetString());

        var earned = await b.EarnAsync(150);
        Assert.Equal(300, earned.GetProperty("points").GetInt64());
        Assert.Equal("Gold", (await b.Client.GetAsync($"/api/v1/loyalty/members/{b.MemberId}").ReadAsync<JsonElement>()).GetProperty("tier").GetProperty("name").GetString());
        var audit = await b.Client.GetAsync("/api/v1/audit?action=loyalty.tier_floor.set").ReadAsync<JsonElement>();
        Assert.Contains("VIP from the flagship store", Assert.Single(audit.GetProperty("items").EnumerateArray()).GetProperty("after").ToString());
    }

    [Fact]
    public async Task Enrolling_a_profile_that_does_not_exist_fails_with_404_and_a_second_programme_with_409()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);

        var missing = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/members", new { profileId = 999_999_999 })
            .ProblemAsync(404, ProblemTypes.NotFound);
        Assert.Contains("Profile 999999999", missing.GetProperty("detail").GetString());
        await b.Client.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Second", expiry = "never" }).ProblemAsync(409, ProblemTypes.Conflict);
    }

    [Fact]
    public async Task Enrolling_one_profile_many_times_at_once_makes_one_member_and_the_rest_get_409()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var profileId = await LoyaltyTestBrand.NewProfileAsync(b.Brand, "member-2");

        var statuses = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var response = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/members", new { profileId });
            return (int)response.StatusCode;
        }));

        Assert.Equal(1, statuses.Count(s => s == 201));
        Assert.Equal(9, statuses.Count(s => s == 409));
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/members", new { profileId }).ProblemAsync(409, ProblemTypes.Conflict);
    }

    [Fact]
    public async Task Another_brand_can_neither_see_nor_move_a_members_points()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var other = await app.NewBrandAsync();
        await b.EarnAsync(100);

        await other.Client.GetAsync($"/api/v1/loyalty/members/{b.MemberId}/balance").ProblemAsync(404, ProblemTypes.NotFound);
        var spend = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/loyalty/members/{b.MemberId}/spend") { Content = JsonContent.Create(new { points = 10 }) };
        spend.Headers.Add("Idempotency-Key", "foreign");
        await other.Client.SendAsync(spend).ProblemAsync(404, ProblemTypes.NotFound);

        Assert.Equal(100, await b.BalanceAsync());
        var member = await b.Client.GetAsync($"/api/v1/loyalty/members?profileId={b.ProfileId}").ReadAsync<JsonElement>();
        Assert.Equal(b.MemberId, member.GetProperty("id").GetInt64());
        await other.Client.GetAsync($"/api/v1/loyalty/members?profileId={b.ProfileId}").ProblemAsync(404, ProblemTypes.NotFound);
    }

    private static long LotOf(JsonElement grant) => grant.GetProperty("lot").GetProperty("id").GetInt64();
}

public sealed class PointsLedgerTestsOnSqlite(LoyaltySqliteApp app) : PointsLedgerTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class PointsLedgerTestsOnPostgres(LoyaltyPostgresApp app) : PointsLedgerTests(app), IClassFixture<LoyaltyPostgresApp>;
