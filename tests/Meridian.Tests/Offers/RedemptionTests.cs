using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Offers;

/// <summary>Redeeming against an order, idempotently and once; reversing on refund; the budget.</summary>
public abstract class RedemptionTests(OffersApp app)
{
    private static readonly object[] Lines = [new { sku = "SHIRT", category = "apparel", quantity = 2, unitPrice = 2500 }, new { sku = "MUG", category = "home", quantity = 1, unitPrice = 1000 }];

    private static object Order(string reference, params string[] codes) => new { orderReference = reference, channel = "app", lines = Lines, shipping = 500, codes };

    private static string Redemptions(long customer) => $"/api/v1/offers/customers/{customer}/redemptions";

    [Fact]
    public async Task A_redemption_replayed_with_its_key_returns_the_same_answer_byte_for_byte_and_another_body_with_that_key_is_refused()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "r"))[0];
        var id = (await b.TemplateAsync(new { name = "¥10 off", kind = "amount_off", value = 1000 })).GetProperty("id").GetInt64();
        var code = (await b.IssueAsync(id, customer)).GetProperty("code").GetString()!;

        var answers = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await b.PostAsync(Redemptions(customer), Order("order-1", code), "redeem-1");
            Assert.Equal(200, (int)response.StatusCode);
            answers.Add(await response.Content.ReadAsStringAsync());
        }
        Assert.Single(answers.Distinct());
        var redemption = JsonDocument.Parse(answers[0]).RootElement;
        Assert.Equal(1000, redemption.GetProperty("totalDiscount").GetInt64());
        Assert.Equal("redeemed", redemption.GetProperty("status").GetString());

        await b.PostAsync(Redemptions(customer), Order("order-2", code), "redeem-1").ProblemAsync(422, ProblemTypes.IdempotencyKeyReused);
        var again = await b.PostAsync(Redemptions(customer), Order("order-2", code), "redeem-2").ProblemAsync(409, ProblemTypes.CouponAlreadyRedeemed);
        Assert.Equal(code, again.GetProperty("code").GetString());
        await b.PostAsync(Redemptions(customer), Order("order-3", code)).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Single(await b.EventsAsync("coupon.redeemed"));
    }

    [Fact]
    public async Task Twenty_concurrent_redemptions_of_one_coupon_with_different_keys_redeem_it_exactly_once()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "race"))[0];
        var id = (await b.TemplateAsync(new { name = "Once", kind = "percent_off", value = 20, cap = 800 })).GetProperty("id").GetInt64();
        var code = (await b.IssueAsync(id, customer)).GetProperty("code").GetString()!;

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            OffersTestBrand.ReadAnyAsync(b.PostAsync(Redemptions(customer), Order($"order-{i}", code), $"key-{i}"))));

        Assert.Single(outcomes, o => o.Status == 200);
        Assert.All(outcomes.Where(o => o.Status != 200), o => Assert.True(o.Status == 409 && o.Body.GetProperty("type").GetString() == ProblemTypes.CouponAlreadyRedeemed, o.Body.ToString()));
        Assert.Equal(800, outcomes.Single(o => o.Status == 200).Body.GetProperty("totalDiscount").GetInt64());
        Assert.Single(await b.EventsAsync("coupon.redeemed"));
    }

    [Fact]
    public async Task A_refund_gives_a_still_valid_coupon_back_when_the_template_says_so_and_voids_it_otherwise_once_however_often_it_is_sent()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(1, "refund"))[0];
        var back = (await b.TemplateAsync(new { name = "Comes back", kind = "amount_off", value = 1000, returnOnRefund = true, budget = 5000, stacking = "any" })).GetProperty("id").GetInt64();
        var gone = (await b.TemplateAsync(new { name = "Gone", kind = "free_shipping", stacking = "any" })).GetProperty("id").GetInt64();
        var backCode = (await b.IssueAsync(back, customer)).GetProperty("code").GetString()!;
        var goneCode = (await b.IssueAsync(gone, customer)).GetProperty("code").GetString()!;

        var redemption = await b.PostAsync(Redemptions(customer), Order("order-9", backCode, goneCode), "k9").ReadAsync<JsonElement>();
        Assert.Equal(1500, redemption.GetProperty("totalDiscount").GetInt64());
        Assert.Equal(1000, (await b.Client.GetAsync($"/api/v1/offers/templates/{back}").ReadAsync<JsonElement>()).GetProperty("budgetUsed").GetInt64());

        var rid = redemption.GetProperty("id").GetInt64();
        var first = await b.Client.PostAsJsonAsync($"/api/v1/offers/redemptions/{rid}/reverse", new { reason = "refund" });
        var second = await b.Client.PostAsJsonAsync($"/api/v1/offers/redemptions/{rid}/reverse", new { reason = "refund" });
        Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
        Assert.Equal("reversed", (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());

        var coupons = (await b.Client.GetAsync($"/api/v1/offers/customers/{customer}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal("issued", coupons.Single(c => c.GetProperty("templateId").GetInt64() == back).GetProperty("status").GetString());
        Assert.Equal("void", coupons.Single(c => c.GetProperty("templateId").GetInt64() == gone).GetProperty("status").GetString());
        Assert.Equal(0, (await b.Client.GetAsync($"/api/v1/offers/templates/{back}").ReadAsync<JsonElement>()).GetProperty("budgetUsed").GetInt64());
        Assert.Equal(2, (await b.EventsAsync("coupon.reversed")).Count);

        var reused = await b.PostAsync(Redemptions(customer), Order("order-10", backCode), "k10").ReadAsync<JsonElement>();
        Assert.Equal(1000, reused.GetProperty("totalDiscount").GetInt64());
        var refused = await b.PostAsync(Redemptions(customer), Order("order-11", goneCode), "k11").ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("void", refused.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());
    }

    [Fact]
    public async Task Coupons_that_do_not_apply_are_refused_with_each_reason_and_nothing_is_redeemed()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customer = (await b.CustomersAsync(2, "why"))[0];
        var big = (await b.TemplateAsync(new { name = "Big spenders", kind = "amount_off", value = 5000, minSpend = 100_000, stacking = "any" })).GetProperty("id").GetInt64();
        var store = (await b.TemplateAsync(new { name = "Store only", kind = "amount_off", value = 500, conditions = new { channels = new[] { "store" } }, stacking = "any" })).GetProperty("id").GetInt64();
        var alone = (await b.TemplateAsync(new { name = "Alone", kind = "amount_off", value = 300 })).GetProperty("id").GetInt64();
        var also = (await b.TemplateAsync(new { name = "Also", kind = "amount_off", value = 200, stacking = "any" })).GetProperty("id").GetInt64();
        var bigCode = (await b.IssueAsync(big, customer)).GetProperty("code").GetString()!;
        var storeCode = (await b.IssueAsync(store, customer)).GetProperty("code").GetString()!;

        var problem = await b.PostAsync(Redemptions(customer), Order("o", bigCode, storeCode), "k").ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        var reasons = problem.GetProperty("coupons").EnumerateArray().ToDictionary(c => c.GetProperty("code").GetString()!, c => c.GetProperty("reasons")[0].GetProperty("code").GetString());
        Assert.Equal(new Dictionary<string, string?> { [bigCode] = "min_spend_not_met", [storeCode] = "channel_not_allowed" }, reasons);

        var aloneCode = (await b.IssueAsync(alone, customer)).GetProperty("code").GetString()!;
        var alsoCode = (await b.IssueAsync(also, customer)).GetProperty("code").GetString()!;
        var stacking = await b.PostAsync(Redemptions(customer), Order("o2", aloneCode, alsoCode), "k2").ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("does_not_stack", stacking.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());

        var coupons = (await b.Client.GetAsync($"/api/v1/offers/customers/{customer}/coupons?status=issued").ReadAsync<JsonElement>()).GetProperty("items");
        Assert.Equal(4, coupons.GetArrayLength());
    }

    [Fact]
    public async Task A_coupon_follows_its_customer_into_the_profile_it_was_merged_into()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var (before, after) = (await b.CustomersAsync(2, "merge")) is var ids ? (ids[0], ids[1]) : default;
        var id = (await b.TemplateAsync(new { name = "Kept", kind = "amount_off", value = 700 })).GetProperty("id").GetInt64();
        var code = (await b.IssueAsync(id, before)).GetProperty("code").GetString()!;

        await b.Client.PostAsJsonAsync($"/api/v1/profiles/{after}/merge", new { profileId = before }).ReadAsync<JsonElement>();

        var coupons = (await b.Client.GetAsync($"/api/v1/offers/customers/{after}/coupons").ReadAsync<JsonElement>()).GetProperty("items");
        Assert.Equal(code, Assert.Single(coupons.EnumerateArray()).GetProperty("code").GetString());
        var redeemed = await b.PostAsync(Redemptions(after), Order("merged-order", code), "merged").ReadAsync<JsonElement>();
        Assert.Equal(700, redeemed.GetProperty("totalDiscount").GetInt64());
    }

    [Fact]
    public async Task A_budget_stops_redemptions_that_would_exceed_it()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(2, "budget");
        var id = (await b.TemplateAsync(new { name = "Budgeted", kind = "amount_off", value = 2000, budget = 3000 })).GetProperty("id").GetInt64();
        var first = (await b.IssueAsync(id, customers[0])).GetProperty("code").GetString()!;
        var second = (await b.IssueAsync(id, customers[1])).GetProperty("code").GetString()!;

        await b.PostAsync(Redemptions(customers[0]), Order("a", first), "ka").ReadAsync<JsonElement>();
        var refused = await b.PostAsync(Redemptions(customers[1]), Order("b", second), "kb").ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("budget_exhausted", refused.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());
        Assert.Equal(2000, (await b.Client.GetAsync($"/api/v1/offers/templates/{id}").ReadAsync<JsonElement>()).GetProperty("budgetUsed").GetInt64());
    }
}

public sealed class RedemptionTestsOnSqlite(OffersSqliteApp app) : RedemptionTests(app), IClassFixture<OffersSqliteApp>;

public sealed class RedemptionTestsOnPostgres(OffersPostgresApp app) : RedemptionTests(app), IClassFixture<OffersPostgresApp>;
