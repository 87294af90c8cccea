using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Offers.Expiry;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Loyalty;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Offers;

/// <summary>Cart validation through the API (the customer's coupons, the best combination, the reasons) and the expiry job.</summary>
public abstract class ValidateAndExpiryTests(OffersApp app)
{
    private static object Cart(string channel = "app", long shipping = 600, string[]? codes = null) => new
    {
        channel, shipping, codes,
        lines = new object[]
        {
            new { sku = "SHIRT", category = "apparel", quantity = 2, unitPrice = 2500 },
            new { sku = "WINE", category = "alcohol", quantity = 1, unitPrice = 3000 },
        },
    };

    [Fact]
    public async Task Validation_lists_every_held_coupon_with_its_discount_and_reasons_and_the_best_combination()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "cart"))[0];
        var tenOff = (await b.TemplateAsync(new { name = "10% off, no alcohol", kind = "percent_off", value = 10, stacking = "any", priority = 5,
            conditions = new { excludedCategories = new[] { "alcohol" } } })).GetProperty("id").GetInt64();
        var shipping = (await b.TemplateAsync(new { name = "Free shipping", kind = "free_shipping", stacking = "any" })).GetProperty("id").GetInt64();
        var big = (await b.TemplateAsync(new { name = "¥60 off ¥100", kind = "amount_off", value = 6000, minSpend = 10_000 })).GetProperty("id").GetInt64();
        var alone = (await b.TemplateAsync(new { name = "¥7 off, alone", kind = "amount_off", value = 700 })).GetProperty("id").GetInt64();
        foreach (var t in new[] { tenOff, shipping, big, alone }) await b.IssueAsync(t, customer);

        var result = await b.PostAsync($"/api/v1/offers/customers/{customer}/validate", Cart()).ReadAsync<JsonElement>();

        Assert.Equal((8000L, 600L), (result.GetProperty("subtotal").GetInt64(), result.GetProperty("shipping").GetInt64()));
        var coupons = result.GetProperty("coupons").EnumerateArray().ToDictionary(c => c.GetProperty("templateId").GetInt64());
        Assert.Equal((true, 500L, true), Of(coupons[tenOff]));
        Assert.Equal((true, 600L, true), Of(coupons[shipping]));
        Assert.Equal((false, 0L, false), Of(coupons[big]));
        Assert.Equal("min_spend_not_met", coupons[big].GetProperty("reasons")[0].GetProperty("code").GetString());
        Assert.Equal((true, 700L, false), Of(coupons[alone]));
        Assert.Contains(coupons[alone].GetProperty("reasons").EnumerateArray(), r => r.GetProperty("code").GetString() == "exclusive");
        var best = result.GetProperty("best");
        Assert.Equal(1100, best.GetProperty("totalDiscount").GetInt64());
        Assert.Equal([tenOff, shipping], best.GetProperty("coupons").EnumerateArray().Select(c => c.GetProperty("templateId").GetInt64()));

        var store = await b.PostAsync($"/api/v1/offers/customers/{customer}/validate", Cart(channel: "store", shipping: 0)).ReadAsync<JsonElement>();
        Assert.Equal(700, store.GetProperty("best").GetProperty("totalDiscount").GetInt64());
    }

    [Fact]
    public async Task A_tier_condition_follows_the_customers_loyalty_tier()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "gold"))[0];
        var programme = await b.Client.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Club", expiry = "never" }).ReadAsync<JsonElement>();
        var programmeId = programme.GetProperty("id").GetInt64();
        var gold = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programmeId}/tiers", new { name = "Gold", rank = 1, qualifyingPoints = 100 }).ReadAsync<JsonElement>();
        var member = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programmeId}/members", new { profileId = customer }).ReadAsync<JsonElement>();
        var id = (await b.TemplateAsync(new { name = "Gold only", kind = "amount_off", value = 300, conditions = new { tierIds = new[] { gold.GetProperty("id").GetInt64() } } })).GetProperty("id").GetInt64();
        await b.IssueAsync(id, customer);

        var before = await b.PostAsync($"/api/v1/offers/customers/{customer}/validate", Cart()).ReadAsync<JsonElement>();
        Assert.Equal("tier_not_met", before.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());

        await b.PostAsync($"/api/v1/loyalty/members/{member.GetProperty("id").GetInt64()}/earn", new { points = 150 }, "earn-1").ReadAsync<JsonElement>();
        var after = await b.PostAsync($"/api/v1/offers/customers/{customer}/validate", Cart()).ReadAsync<JsonElement>();
        Assert.Equal(300, after.GetProperty("best").GetProperty("totalDiscount").GetInt64());
    }

    [Fact]
    public async Task Validation_finds_coupons_of_profiles_merged_into_the_customer_twice_over_also_when_asked_by_a_merged_id()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var (first, second, survivor) = (await b.CustomersAsync(3, "twice")) is var ids ? (ids[0], ids[1], ids[2]) : default;
        var id = (await b.TemplateAsync(new { name = "Kept twice", kind = "amount_off", value = 400 })).GetProperty("id").GetInt64();
        var coupon = (await b.IssueAsync(id, first)).GetProperty("id").GetInt64();
        await b.Client.PostAsJsonAsync($"/api/v1/profiles/{second}/merge", new { profileId = first }).ReadAsync<JsonElement>();
        await b.Client.PostAsJsonAsync($"/api/v1/profiles/{survivor}/merge", new { profileId = second }).ReadAsync<JsonElement>();

        foreach (var asked in new[] { survivor, first })
        {
            var result = await b.PostAsync($"/api/v1/offers/customers/{asked}/validate", Cart()).ReadAsync<JsonElement>();
            Assert.Equal(coupon, Assert.Single(result.GetProperty("coupons").EnumerateArray()).GetProperty("couponId").GetInt64());
            Assert.Equal(400, result.GetProperty("best").GetProperty("totalDiscount").GetInt64());
        }
    }

    [Fact]
    public async Task Unknown_codes_in_a_validation_are_explained_and_count_as_guesses()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "unknown"))[0];
        var result = await b.PostAsync($"/api/v1/offers/customers/{customer}/validate", Cart(codes: ["NOPE-NOPE-NOPE"])).ReadAsync<JsonElement>();
        Assert.Equal("not_held", result.GetProperty("unknownCodes")[0].GetProperty("reasons")[0].GetProperty("code").GetString());
        var bad = await b.PostAsync($"/api/v1/offers/customers/{customer}/validate", new { channel = "app", lines = new[] { new { sku = "X", quantity = 0, unitPrice = 1 } } })
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(bad.GetProperty("errors").EnumerateObject().Any(e => e.Name.Contains("quantity", StringComparison.OrdinalIgnoreCase)), bad.ToString());
    }

    [Fact]
    public async Task Coupons_valid_for_n_days_end_at_the_brands_midnight_warn_before_and_expire_with_an_event()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "exp"))[0];
        var id = (await b.TemplateAsync(new { name = "Three days", kind = "amount_off", value = 100, validDays = 3, expiringNoticeDays = 1 })).GetProperty("id").GetInt64();
        var coupon = await b.IssueAsync(id, customer);
        var until = coupon.GetProperty("validUntil").GetDateTime().ToUniversalTime();
        // Brands start in Asia/Shanghai (UTC+8): the end is a local midnight, two to three days from now.
        Assert.Equal(16, until.Hour);
        var now = app.Clock.GetUtcNow().UtcDateTime;
        Assert.InRange(until - now, TimeSpan.FromDays(2), TimeSpan.FromDays(3));

        var job = app.Services.GetRequiredService<CouponExpiryJob>();
        app.Clock.Advance(until - now - TimeSpan.FromHours(12));
        await job.RunOnceAsync(CancellationToken.None);
        await job.RunOnceAsync(CancellationToken.None);
        var expiring = await b.EventsAsync("coupon.expiring");
        Assert.Single(expiring);
        Assert.Equal(coupon.GetProperty("id").GetInt64(), expiring[0].GetProperty("couponId").GetInt64());
        Assert.Equal("issued", (await b.Client.GetAsync($"/api/v1/offers/coupons/{coupon.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>()).GetProperty("status").GetString());

        app.Clock.Advance(TimeSpan.FromHours(12));
        await job.RunOnceAsync(CancellationToken.None);
        Assert.Equal("expired", (await b.Client.GetAsync($"/api/v1/offers/coupons/{coupon.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>()).GetProperty("status").GetString());
        Assert.Single(await b.EventsAsync("coupon.expired"));
        var refused = await b.PostAsync($"/api/v1/offers/customers/{customer}/redemptions", new { orderReference = "late", channel = "app",
            lines = new[] { new { sku = "A", quantity = 1, unitPrice = 1000 } }, codes = new[] { coupon.GetProperty("code").GetString() } }, "late").ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("expired", refused.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());
    }

    private static (bool, long, bool) Of(JsonElement c) => (c.GetProperty("applies").GetBoolean(), c.GetProperty("discount").GetInt64(), c.GetProperty("inBest").GetBoolean());
}

public sealed class ValidateAndExpiryTestsOnSqlite(OffersSqliteApp app) : ValidateAndExpiryTests(app), IClassFixture<OffersSqliteApp>;

public sealed class ValidateAndExpiryTestsOnPostgres(OffersPostgresApp app) : ValidateAndExpiryTests(app), IClassFixture<OffersPostgresApp>;
