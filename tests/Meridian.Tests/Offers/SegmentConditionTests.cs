using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Audiences;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;

namespace Meridian.Tests.Offers;

/// <summary>
/// Templates' <c>conditions.segmentIds</c>: a coupon for customers in an Audiences segment, judged on the segment's
/// membership now (validation, redemption, claims), so a customer who leaves the segment stops qualifying.
/// </summary>
public abstract class SegmentConditionTests(OffersApp app)
{
    private static readonly object Cart = new { channel = "app", lines = new[] { new { sku = "SHIRT", category = "apparel", quantity = 1, unitPrice = 5000 } } };

    /// <summary>Customers whose <c>vip</c> trait is as given, and a ready segment "VIP" of those with <c>vip = true</c>.</summary>
    private static async Task<(long Segment, long[] Profiles)> VipsAsync(OffersTestBrand b, params bool[] vip)
    {
        var ids = new long[vip.Length];
        for (var i = 0; i < vip.Length; i++)
        {
            await b.Brand.SendAsync(new { type = "identify", userId = $"vip-{i}", traits = new { vip = vip[i] } });
            ids[i] = (await ProfileTestBrand.LookupAsync(b.Client, "user_id", $"vip-{i}")).GetProperty("id").GetInt64();
        }
        var segment = (await b.Client.PostAsJsonAsync("/api/v1/segments", new { name = "VIP", rule = new { trait = "vip", op = "eq", value = true } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        await AudiencesApp.CaughtUpAsync(b.Client);
        return (segment, ids);
    }

    private static async Task SetVipAsync(OffersTestBrand b, int index, bool vip, int events)
    {
        await b.Brand.SendAsync(new { type = "identify", userId = $"vip-{index}", traits = new { vip } });
        await ProfileTestBrand.LookupAsync(b.Client, "user_id", $"vip-{index}", p => p.GetProperty("eventCount").GetInt64() >= events);
        await AudiencesApp.CaughtUpAsync(b.Client);
    }

    private static async Task<JsonElement> VerdictAsync(OffersTestBrand b, long profileId) =>
        Assert.Single((await b.PostAsync($"/api/v1/offers/customers/{profileId}/validate", Cart).ReadAsync<JsonElement>()).GetProperty("coupons").EnumerateArray());

    [Fact]
    public async Task Validation_offers_the_coupon_to_a_segment_member_explains_segment_not_met_to_others_and_follows_a_member_who_leaves()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var (vip, profiles) = await VipsAsync(b, true, false);
        var (member, outsider) = (profiles[0], profiles[1]);
        var template = await b.TemplateAsync(new { name = "VIP ¥10", kind = "amount_off", value = 1000, conditions = new { segmentIds = new[] { vip } } });
        Assert.Equal([vip], template.GetProperty("conditions").GetProperty("segmentIds").EnumerateArray().Select(s => s.GetInt64()));
        var id = template.GetProperty("id").GetInt64();
        var read = await b.Client.GetAsync($"/api/v1/offers/templates/{id}").ReadAsync<JsonElement>();
        Assert.Equal([vip], read.GetProperty("conditions").GetProperty("segmentIds").EnumerateArray().Select(s => s.GetInt64()));
        await b.IssueAsync(id, member);
        var outsiderCode = (await b.IssueAsync(id, outsider)).GetProperty("code").GetString();

        var yes = await VerdictAsync(b, member);
        Assert.Equal((true, 1000L), (yes.GetProperty("applies").GetBoolean(), yes.GetProperty("discount").GetInt64()));
        var no = await VerdictAsync(b, outsider);
        Assert.False(no.GetProperty("applies").GetBoolean());
        var reason = Assert.Single(no.GetProperty("reasons").EnumerateArray());
        Assert.Equal("segment_not_met", reason.GetProperty("code").GetString());
        Assert.Equal("Only for customers in 'VIP'; the customer is in none of them.", reason.GetProperty("message").GetString());

        // Redemption judges the same way.
        var refused = await b.PostAsync($"/api/v1/offers/customers/{outsider}/redemptions", new { orderReference = "o-1", channel = "app",
            lines = new[] { new { sku = "SHIRT", quantity = 1, unitPrice = 5000 } }, codes = new[] { outsiderCode } }, "redeem-outsider").ProblemAsync(422, ProblemTypes.CouponNotApplicable);
        Assert.Equal("segment_not_met", refused.GetProperty("coupons")[0].GetProperty("reasons")[0].GetProperty("code").GetString());

        // The member leaves the segment (trait changed): the coupon stops applying; the outsider joins: it applies.
        await SetVipAsync(b, 0, false, 2);
        await SetVipAsync(b, 1, true, 2);
        Assert.Equal("segment_not_met", (await VerdictAsync(b, member)).GetProperty("reasons")[0].GetProperty("code").GetString());
        Assert.True((await VerdictAsync(b, outsider)).GetProperty("applies").GetBoolean());
        var redeemed = await b.PostAsync($"/api/v1/offers/customers/{outsider}/redemptions", new { orderReference = "o-2", channel = "app",
            lines = new[] { new { sku = "SHIRT", quantity = 1, unitPrice = 5000 } }, codes = new[] { outsiderCode } }, "redeem-joined").ReadAsync<JsonElement>();
        Assert.Equal(1000, redeemed.GetProperty("totalDiscount").GetInt64());
    }

    [Fact]
    public async Task Claims_at_once_give_coupons_to_segment_members_and_refuse_the_others_with_409_coupon_not_eligible_taking_no_stock()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var (vip, profiles) = await VipsAsync(b, true, false, true, false, true, false);
        var id = (await b.TemplateAsync(new { name = "VIP claim", kind = "amount_off", value = 500, stock = 10, conditions = new { segmentIds = new[] { vip } } }))
            .GetProperty("id").GetInt64();

        var outcomes = await Task.WhenAll(profiles.Select(p => OffersTestBrand.ReadAnyAsync(b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = p }))));

        for (var i = 0; i < profiles.Length; i++)
        {
            if (i % 2 == 0)
            {
                Assert.Equal(200, outcomes[i].Status);
                Assert.Equal(profiles[i], outcomes[i].Body.GetProperty("profileId").GetInt64());
                continue;
            }
            Assert.Equal(409, outcomes[i].Status);
            Assert.Equal(ProblemTypes.CouponNotEligible, outcomes[i].Body.GetProperty("type").GetString());
            Assert.Equal("segment_not_met", outcomes[i].Body.GetProperty("reason").GetString());
            Assert.Contains("'VIP'", outcomes[i].Body.GetProperty("detail").GetString());
        }
        var after = await b.Client.GetAsync($"/api/v1/offers/templates/{id}").ReadAsync<JsonElement>();
        Assert.Equal((7L, 3L), (after.GetProperty("remaining").GetInt64(), after.GetProperty("issued").GetInt64()));
        Assert.Equal(3, (await b.EventsAsync("coupon.issued")).Count);

        // A member who left is refused too; one who joined is served.
        await SetVipAsync(b, 0, false, 2);
        await SetVipAsync(b, 1, true, 2);
        await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = profiles[0] }).ProblemAsync(409, ProblemTypes.CouponNotEligible);
        Assert.Equal(profiles[1], (await b.PostAsync($"/api/v1/offers/templates/{id}/claim", new { profileId = profiles[1] }).ReadAsync<JsonElement>())
            .GetProperty("profileId").GetInt64());
    }

    [Fact]
    public async Task A_generated_code_is_claimed_only_by_a_segment_member()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var (vip, profiles) = await VipsAsync(b, true, false);
        var id = (await b.TemplateAsync(new { name = "VIP card", kind = "amount_off", value = 500, conditions = new { segmentIds = new[] { vip } } })).GetProperty("id").GetInt64();
        await b.PostAsync($"/api/v1/offers/templates/{id}/codes/import", new { codes = new[] { "VIPCARD0001" } }).ReadAsync<JsonElement>();

        await b.PostAsync("/api/v1/offers/codes/VIPCARD0001/claim", new { profileId = profiles[1] }).ProblemAsync(409, ProblemTypes.CouponNotEligible);
        Assert.Equal(profiles[0], (await b.PostAsync("/api/v1/offers/codes/VIPCARD0001/claim", new { profileId = profiles[0] }).ReadAsync<JsonElement>())
            .GetProperty("profileId").GetInt64());
    }

    [Fact]
    public async Task Segment_ids_that_are_unknown_or_another_brands_or_too_many_are_refused_with_400_naming_the_entry()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var other = await OffersTestBrand.CreateAsync(app);
        var own = (await b.Client.PostAsJsonAsync("/api/v1/segments", new { name = "Mine", rule = new { trait = "vip", op = "eq", value = true } }).ReadAsync<JsonElement>())
            .GetProperty("id").GetInt64();
        var foreign = (await other.Client.PostAsJsonAsync("/api/v1/segments", new { name = "Theirs", rule = new { trait = "vip", op = "eq", value = true } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

        var problem = await b.Client.PostAsJsonAsync("/api/v1/offers/templates", new { name = "Bad", kind = "free_shipping",
            conditions = new { segmentIds = new[] { own, foreign, 999_999_999L } } }).ProblemAsync(400, ProblemTypes.Validation);
        var errors = problem.GetProperty("errors");
        Assert.Equal(["conditions.segmentIds[1]", "conditions.segmentIds[2]"], errors.EnumerateObject().Select(e => e.Name).Order());
        Assert.Contains(foreign.ToString(System.Globalization.CultureInfo.InvariantCulture), errors.GetProperty("conditions.segmentIds[1]")[0].GetString());

        var tooMany = await b.Client.PostAsJsonAsync("/api/v1/offers/templates", new { name = "Many", kind = "free_shipping",
            conditions = new { segmentIds = Enumerable.Repeat(own, 21).ToArray() } }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(tooMany.GetProperty("errors").TryGetProperty("conditions.segmentIds", out _), tooMany.GetRawText());
        var nulls = await b.Client.PostAsync("/api/v1/offers/templates", new StringContent("""{"name":"Null","kind":"free_shipping","conditions":{"segmentIds":null}}""",
            System.Text.Encoding.UTF8, "application/json")).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(nulls.GetProperty("errors").TryGetProperty("conditions.segmentIds", out _), nulls.GetRawText());
        Assert.Empty((await b.Client.GetAsync("/api/v1/offers/templates").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
    }
}

public sealed class SegmentConditionTestsOnSqlite(OffersSqliteApp app) : SegmentConditionTests(app), IClassFixture<OffersSqliteApp>;

public sealed class SegmentConditionTestsOnPostgres(OffersPostgresApp app) : SegmentConditionTests(app), IClassFixture<OffersPostgresApp>;
