using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;

namespace Meridian.Tests.Offers;

/// <summary>
/// Group coupons: a template of one brand usable at other brands of its group. A coupon held by the customer's profile
/// at the template's brand is offered and redeemable at a listed brand for the same person (same phone), recorded
/// there; brands not listed and other people never see or redeem it.
/// </summary>
public abstract class GroupCouponTests(OffersApp app)
{
    private static readonly object[] Lines = [new { sku = "SHIRT", category = "apparel", quantity = 2, unitPrice = 2500 }];

    private static object Cart() => new { channel = "app", lines = Lines, shipping = 0 };

    private static object Order(string reference, params string[] codes) => new { orderReference = reference, channel = "app", lines = Lines, shipping = 0, codes };

    /// <summary>Three brands of the group; one person (by phone) known to all three, and a stranger at the second.</summary>
    private async Task<Setup> SetUpAsync()
    {
        var phone = "+861370" + Random.Shared.Next(1000000, 9999999);
        var strangerPhone = "+861371" + Random.Shared.Next(1000000, 9999999);
        var shop = await OffersTestBrand.CreateAsync(app);
        var outlet = await OffersTestBrand.CreateAsync(app);
        var cafe = await OffersTestBrand.CreateAsync(app);
        foreach (var b in new[] { shop, outlet, cafe }) await b.Brand.SendAsync(new { type = "identify", userId = "person-" + phone, traits = new { phone } });
        await outlet.Brand.SendAsync(new { type = "identify", userId = "stranger-" + strangerPhone, traits = new { phone = strangerPhone } });
        async Task<long> Of(OffersTestBrand b, string p) => (await ProfileTestBrand.LookupAsync(b.Client, "phone", p)).GetProperty("id").GetInt64();
        var template = (await shop.TemplateAsync(new { name = "Group ¥5 off", kind = "amount_off", value = 500, stacking = "any", returnOnRefund = true,
            conditions = new { brands = new[] { outlet.Id } } })).GetProperty("id").GetInt64();
        var atShop = await Of(shop, phone);
        var coupon = await shop.IssueAsync(template, atShop);
        return new Setup(shop, outlet, cafe, atShop, await Of(outlet, phone), await Of(cafe, phone), await Of(outlet, strangerPhone), template,
            coupon.GetProperty("id").GetInt64(), coupon.GetProperty("code").GetString()!);
    }

    private sealed record Setup(OffersTestBrand Shop, OffersTestBrand Outlet, OffersTestBrand Cafe, long AtShop, long AtOutlet, long AtCafe, long Stranger,
        long Template, long CouponId, string Code);

    [Fact]
    public async Task A_coupon_held_at_the_templates_brand_is_offered_and_redeemed_at_a_listed_brand_and_recorded_there()
    {
        var s = await SetUpAsync();

        var listed = await s.Outlet.Client.GetAsync($"/api/v1/offers/customers/{s.AtOutlet}/coupons").ReadAsync<JsonElement>();
        var held = Assert.Single(listed.GetProperty("items").EnumerateArray());
        Assert.Equal((s.CouponId, JsonValueKind.Null), (held.GetProperty("id").GetInt64(), held.GetProperty("profileId").ValueKind));
        var offered = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.AtOutlet}/validate", Cart()).ReadAsync<JsonElement>();
        var coupon = Assert.Single(offered.GetProperty("coupons").EnumerateArray());
        Assert.Equal((s.CouponId, true, 500L, true), (coupon.GetProperty("couponId").GetInt64(), coupon.GetProperty("applies").GetBoolean(),
            coupon.GetProperty("discount").GetInt64(), coupon.GetProperty("inBest").GetBoolean()));

        var redeemed = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.AtOutlet}/redemptions", Order("outlet-1", s.Code), "outlet-key-1").ReadAsync<JsonElement>();
        Assert.Equal((s.AtOutlet, 500L), (redeemed.GetProperty("profileId").GetInt64(), redeemed.GetProperty("totalDiscount").GetInt64()));
        var redemptionId = redeemed.GetProperty("id").GetInt64();
        await s.Outlet.Client.GetAsync($"/api/v1/offers/redemptions/{redemptionId}").ReadAsync<JsonElement>();
        await s.Shop.Client.GetAsync($"/api/v1/offers/redemptions/{redemptionId}").ProblemAsync(404, ProblemTypes.NotFound);
        var events = await s.Outlet.EventsAsync("coupon.redeemed");
        Assert.Equal(s.CouponId, Assert.Single(events).GetProperty("couponId").GetInt64());
        Assert.Empty(await s.Shop.EventsAsync("coupon.redeemed"));
        var atShop = await s.Shop.Client.GetAsync($"/api/v1/offers/coupons/{s.CouponId}").ReadAsync<JsonElement>();
        Assert.Equal(("redeemed", redemptionId), (atShop.GetProperty("status").GetString(), atShop.GetProperty("redemptionId").GetInt64()));

        // Once: neither its own brand nor the listed one redeems it again; the first key replays.
        await s.Shop.PostAsync($"/api/v1/offers/customers/{s.AtShop}/redemptions", Order("shop-1", s.Code), "shop-key-1").ProblemAsync(409, ProblemTypes.CouponAlreadyRedeemed);
        await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.AtOutlet}/redemptions", Order("outlet-2", s.Code), "outlet-key-2").ProblemAsync(409, ProblemTypes.CouponAlreadyRedeemed);
        var replay = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.AtOutlet}/redemptions", Order("outlet-1", s.Code), "outlet-key-1").ReadAsync<JsonElement>();
        Assert.Equal(redemptionId, replay.GetProperty("id").GetInt64());

        // Refunded at the outlet: the coupon goes back to the customer's profile at the shop, and is offered again.
        await s.Outlet.PostAsync($"/api/v1/offers/redemptions/{redemptionId}/reverse", new { reason = "refund" }).ReadAsync<JsonElement>();
        var back = await s.Shop.Client.GetAsync($"/api/v1/offers/coupons/{s.CouponId}").ReadAsync<JsonElement>();
        Assert.Equal(("issued", s.AtShop), (back.GetProperty("status").GetString(), back.GetProperty("profileId").GetInt64()));
        var again = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.AtOutlet}/validate", Cart()).ReadAsync<JsonElement>();
        Assert.Equal(500, again.GetProperty("best").GetProperty("totalDiscount").GetInt64());
    }

    [Fact]
    public async Task A_brand_not_listed_and_another_person_at_a_listed_brand_neither_see_nor_redeem_it()
    {
        var s = await SetUpAsync();

        var atCafe = await s.Cafe.PostAsync($"/api/v1/offers/customers/{s.AtCafe}/validate", Cart()).ReadAsync<JsonElement>();
        Assert.Empty(atCafe.GetProperty("coupons").EnumerateArray());
        Assert.Empty((await s.Cafe.Client.GetAsync($"/api/v1/offers/customers/{s.AtCafe}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Empty((await s.Outlet.Client.GetAsync($"/api/v1/offers/customers/{s.Stranger}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        var refused = await s.Cafe.PostAsync($"/api/v1/offers/customers/{s.AtCafe}/redemptions", Order("cafe-1", s.Code), "cafe-key-1")
            .ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("not_held", refused.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());

        var stranger = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.Stranger}/validate", Cart()).ReadAsync<JsonElement>();
        Assert.Empty(stranger.GetProperty("coupons").EnumerateArray());
        var notTheirs = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.Stranger}/redemptions", Order("outlet-x", s.Code), "stranger-key-1")
            .ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("not_held", notTheirs.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());

        var coupon = await s.Shop.Client.GetAsync($"/api/v1/offers/coupons/{s.CouponId}").ReadAsync<JsonElement>();
        Assert.Equal("issued", coupon.GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_per_customer_limit_of_a_group_template_holds_for_the_person_and_other_brands_cannot_issue_it()
    {
        var s = await SetUpAsync();
        var once = (await s.Shop.TemplateAsync(new { name = "One per person", kind = "amount_off", value = 300, perCustomerLimit = 1,
            conditions = new { brands = new[] { s.Outlet.Id } } })).GetProperty("id").GetInt64();

        await s.Shop.PostAsync($"/api/v1/offers/templates/{once}/claim", new { profileId = s.AtShop }).ReadAsync<JsonElement>();
        var limited = await s.Shop.PostAsync($"/api/v1/offers/templates/{once}/claim", new { profileId = s.AtShop }).ProblemAsync(409, ProblemTypes.CouponLimitReached);
        Assert.Equal("per_customer", limited.GetProperty("limit").GetString());
        // The listed brand uses the coupon; it does not issue another one to the same person's profile there.
        await s.Outlet.PostAsync($"/api/v1/offers/templates/{once}/claim", new { profileId = s.AtOutlet }).ProblemAsync(404, ProblemTypes.NotFound);

        var offered = await s.Outlet.PostAsync($"/api/v1/offers/customers/{s.AtOutlet}/validate", Cart()).ReadAsync<JsonElement>();
        Assert.Equal([s.CouponId], offered.GetProperty("coupons").EnumerateArray().Where(c => c.GetProperty("templateId").GetInt64() == s.Template)
            .Select(c => c.GetProperty("couponId").GetInt64()));
        Assert.Single(offered.GetProperty("coupons").EnumerateArray(), c => c.GetProperty("templateId").GetInt64() == once);
    }

    [Fact]
    public async Task A_template_may_list_only_other_brands_of_its_group()
    {
        var shop = await OffersTestBrand.CreateAsync(app);

        foreach (var brands in new[] { new[] { 999_999_999L }, new[] { shop.Id } })
        {
            var problem = await shop.PostAsync("/api/v1/offers/templates", new { name = "Group", kind = "free_shipping", conditions = new { brands } })
                .ProblemAsync(400, ProblemTypes.Validation);
            Assert.True(problem.GetProperty("errors").TryGetProperty("conditions.brands", out _), problem.ToString());
        }
    }
}

public sealed class GroupCouponTestsOnSqlite(OffersSqliteApp app) : GroupCouponTests(app), IClassFixture<OffersSqliteApp>;

public sealed class GroupCouponTestsOnPostgres(OffersPostgresApp app) : GroupCouponTests(app), IClassFixture<OffersPostgresApp>;
