using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Offers.Data;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Offers;

/// <summary>Claims and issues against stock and limits, all at once: the database's conditional statements keep them exact.</summary>
public abstract class ClaimTests(OffersApp app)
{
    [Fact]
    public async Task Flash_sale_of_ten_thousand_claims_from_distinct_customers_gives_out_exactly_the_stock_of_a_thousand_and_refuses_the_rest_cleanly()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(10_000);
        var template = await b.TemplateAsync(new { name = "Flash ¥20", kind = "amount_off", value = 2000, stock = 1000, perCustomerLimit = 1 });
        var id = template.GetProperty("id").GetInt64();

        // All at once, with time to spare for a loaded machine (two shared cores): this is about exactness, not speed.
        using var client = app.ClientWithKey(b.Brand.Test.Key);
        client.Timeout = TimeSpan.FromMinutes(10);
        var outcomes = await Task.WhenAll(customers.Select(p => OffersTestBrand.ReadAnyAsync(OffersTestBrand.PostAsync(client, $"/api/v1/offers/templates/{id}/claim", new { profileId = p }))));

        Assert.DoesNotContain(outcomes, o => o.Status >= 500);
        var won = outcomes.Where(o => o.Status == 200).ToList();
        var refused = outcomes.Where(o => o.Status == 409).ToList();
        Assert.Equal(1000, won.Count);
        Assert.Equal(9000, refused.Count);
        Assert.All(refused, o => Assert.Equal(ProblemTypes.OutOfStock, o.Body.GetProperty("type").GetString()));
        Assert.Equal(1000, won.Select(o => o.Body.GetProperty("profileId").GetInt64()).Distinct().Count());
        Assert.Equal(1000, won.Select(o => o.Body.GetProperty("code").GetString()).Distinct().Count());

        var after = await b.Client.GetAsync($"/api/v1/offers/templates/{id}").ReadAsync<JsonElement>();
        Assert.Equal((0L, 1000L), (after.GetProperty("remaining").GetInt64(), after.GetProperty("issued").GetInt64()));
        Assert.Equal(won.Select(o => o.Body.GetProperty("id").GetInt64()).ToHashSet(), (await CouponIdsAsync(id)).ToHashSet());
        Assert.Equal(1000, (await b.EventsAsync("coupon.issued")).Count);
    }

    [Fact]
    public async Task One_customer_sending_fifty_claims_at_once_against_a_limit_of_one_gets_exactly_one()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "solo"))[0];
        var id = (await b.TemplateAsync(new { name = "One each", kind = "percent_off", value = 10, stock = 100, perCustomerLimit = 1 })).GetProperty("id").GetInt64();

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => OffersTestBrand.ReadAnyAsync(b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = customer }))));

        Assert.Single(outcomes, o => o.Status == 200);
        Assert.All(outcomes.Where(o => o.Status != 200), o =>
        {
            Assert.Equal(409, o.Status);
            Assert.Equal(ProblemTypes.CouponLimitReached, o.Body.GetProperty("type").GetString());
            Assert.Equal("per_customer", o.Body.GetProperty("limit").GetString());
        });
        var after = await b.Client.GetAsync($"/api/v1/offers/templates/{id}").ReadAsync<JsonElement>();
        Assert.Equal((99L, 1L), (after.GetProperty("remaining").GetInt64(), after.GetProperty("issued").GetInt64()));
        Assert.Single(await CouponIdsAsync(id));
    }

    [Fact]
    public async Task A_per_customer_limit_of_three_and_a_daily_limit_hold_together_under_concurrency()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(4, "limits");
        var id = (await b.TemplateAsync(new { name = "Three each, ten a day", kind = "amount_off", value = 500, perCustomerLimit = 3, perDayLimit = 10 })).GetProperty("id").GetInt64();

        var outcomes = await Task.WhenAll(customers.SelectMany(p => Enumerable.Repeat(p, 6))
            .Select(p => OffersTestBrand.ReadAnyAsync(b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = p }))));

        Assert.Equal(10, outcomes.Count(o => o.Status == 200));
        Assert.All(outcomes.Where(o => o.Status == 200).GroupBy(o => o.Body.GetProperty("profileId").GetInt64()), g => Assert.InRange(g.Count(), 1, 3));
        Assert.All(outcomes.Where(o => o.Status != 200), o => Assert.Equal(ProblemTypes.CouponLimitReached, o.Body.GetProperty("type").GetString()));
        Assert.Contains(outcomes, o => o.Status == 409 && o.Body.GetProperty("limit").GetString() == "per_day");

        app.Clock.Advance(TimeSpan.FromDays(1));
        var tomorrow = await OffersTestBrand.ReadAnyAsync(b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = outcomes.Where(o => o.Status == 200)
            .GroupBy(o => o.Body.GetProperty("profileId").GetInt64()).First(g => g.Count() < 3).Key }));
        Assert.Equal(200, tomorrow.Status);
    }

    [Fact]
    public async Task A_claim_retried_with_its_idempotency_key_returns_the_same_coupon_byte_for_byte_and_another_body_is_refused()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(2, "retry");
        var id = (await b.TemplateAsync(new { name = "Retry", kind = "free_shipping", stock = 10, validDays = 7 })).GetProperty("id").GetInt64();

        var bodies = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var response = await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = customers[0] }, "claim-key-1");
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));
        Assert.All(bodies, r => Assert.Equal((200, bodies[0].Item2), r));
        Assert.Single(await CouponIdsAsync(id));

        var problem = await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = customers[1] }, "claim-key-1")
            .ProblemAsync(422, ProblemTypes.IdempotencyKeyReused);
        Assert.Contains("different request", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Claims_are_refused_cleanly_for_an_unknown_template_another_brands_customer_a_paused_offer_and_a_missing_profile_id()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var other = await OffersTestBrand.CreateAsync(app);
        var mine = (await b.CustomersAsync(1, "me"))[0];
        var theirs = (await other.CustomersAsync(1, "them"))[0];
        var id = (await b.TemplateAsync(new { name = "Mine", kind = "amount_off", value = 100, stock = 5 })).GetProperty("id").GetInt64();

        await b.PostAsync("/api/v1/offers/templates/999999/claim", new { profileId = mine }).ProblemAsync(404, ProblemTypes.NotFound);
        await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = theirs }).ProblemAsync(404, ProblemTypes.NotFound);
        await other.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = theirs }).ProblemAsync(404, ProblemTypes.NotFound);
        var missing = await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(missing.GetProperty("errors").TryGetProperty("profileId", out _), missing.ToString());

        await b.Client.PutAsJsonAsync($"/api/v1/offers/templates/{id}/status", new { status = "paused", reason = "test" }).ReadAsync<JsonElement>();
        var paused = await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = mine }).ProblemAsync(409, ProblemTypes.BusinessRule);
        Assert.Contains("paused", paused.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Staff_issue_needs_an_idempotency_key_is_audited_and_respects_the_stock()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(3, "staff");
        var id = (await b.TemplateAsync(new { name = "Goodwill", kind = "amount_off", value = 1000, stock = 2 })).GetProperty("id").GetInt64();

        await b.PostAsync($"/api/v1/offers/templates/{id}/issue", new { profileId = customers[0] }).ProblemAsync(400, ProblemTypes.Validation);
        var first = await b.PostAsync($"/api/v1/offers/templates/{id}/issue", new { profileId = customers[0], reason = "late parcel" }, "issue-1").ReadAsync<JsonElement>();
        Assert.Equal("api", first.GetProperty("source").GetString());
        await b.IssueAsync(id, customers[1]);
        await b.PostAsync($"/api/v1/offers/templates/{id}/issue", new { profileId = customers[2] }, "issue-3").ProblemAsync(409, ProblemTypes.OutOfStock);

        var audit = await b.Client.GetAsync("/api/v1/audit?limit=200").ReadAsync<JsonElement>();
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), e => e.GetProperty("action").GetString() == "offers.coupon.issued"
            && e.GetProperty("entityId").GetString() == first.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private async Task<List<long>> CouponIdsAsync(long templateId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<OfferCoupon>().Where(c => c.TemplateId == templateId).Select(c => c.Id).ToListAsync();
    }
}

public sealed class ClaimTestsOnSqlite(OffersSqliteApp app) : ClaimTests(app), IClassFixture<OffersSqliteApp>;

public sealed class ClaimTestsOnPostgres(OffersPostgresApp app) : ClaimTests(app), IClassFixture<OffersPostgresApp>;
