using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Loyalty;

/// <summary>The rewards catalogue: members burn points for coupons, both or neither, exactly once per Idempotency-Key.</summary>
public abstract class RewardTests(LoyaltyApp app)
{
    private static async Task<(long Reward, long Template)> RewardAsync(LoyaltyTestBrand m, long cost, long? stock = null, int? perCustomerLimit = null)
    {
        var template = await m.Client.PostAsJsonAsync("/api/v1/offers/templates",
            new { name = "¥10 voucher", kind = "amount_off", value = 1000, stock, perCustomerLimit }).ReadAsync<JsonElement>();
        var templateId = template.GetProperty("id").GetInt64();
        var reward = await m.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{m.ProgrammeId}/rewards",
            new { name = "¥10 voucher for 500 points", pointsCost = cost, couponTemplateId = templateId }).ReadAsync<JsonElement>();
        return (reward.GetProperty("id").GetInt64(), templateId);
    }

    private static Task<HttpResponseMessage> RedeemAsync(LoyaltyTestBrand m, long reward, string? key = null) =>
        m.PostAsync($"/api/v1/loyalty/members/{m.MemberId}/rewards/{reward}/redeem", new { }, key);

    private static async Task<List<JsonElement>> CouponsAsync(LoyaltyTestBrand m) =>
        [.. (await m.Client.GetAsync($"/api/v1/offers/customers/{m.ProfileId}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray()];

    [Fact]
    public async Task Redeeming_a_reward_spends_its_points_and_gives_the_member_its_coupon()
    {
        var m = await LoyaltyTestBrand.CreateAsync(app);
        await m.EarnAsync(1_200);
        var (reward, template) = await RewardAsync(m, 500);

        var redeemed = await RedeemAsync(m, reward).ReadAsync<JsonElement>();

        Assert.Equal((-500, 700), (redeemed.GetProperty("spend").GetProperty("points").GetInt64(), redeemed.GetProperty("spend").GetProperty("balanceAfter").GetInt64()));
        Assert.Equal(700, await m.BalanceAsync());
        var coupon = Assert.Single(await CouponsAsync(m));
        Assert.Equal((template, redeemed.GetProperty("coupon").GetProperty("code").GetString()), (coupon.GetProperty("templateId").GetInt64(), coupon.GetProperty("code").GetString()));
        Assert.Equal($"reward:{reward}", coupon.GetProperty("source").GetString());
    }

    [Fact]
    public async Task A_short_balance_issues_no_coupon_and_an_offer_out_of_stock_costs_no_points()
    {
        var m = await LoyaltyTestBrand.CreateAsync(app);
        await m.EarnAsync(600);
        var (expensive, _) = await RewardAsync(m, 1_000);
        var (soldOut, _) = await RewardAsync(m, 100, stock: 0);

        await RedeemAsync(m, expensive).ProblemAsync(409, ProblemTypes.InsufficientPoints);
        var problem = await RedeemAsync(m, soldOut).ProblemAsync(409, ProblemTypes.OutOfStock);

        Assert.Contains("no points were spent", problem.GetProperty("detail").GetString());
        Assert.Equal(600, await m.BalanceAsync());
        Assert.Empty(await CouponsAsync(m));
        Assert.Single(await m.EntriesAsync());
    }

    [Fact]
    public async Task A_replayed_redemption_answers_the_same_and_spends_and_issues_once()
    {
        var m = await LoyaltyTestBrand.CreateAsync(app);
        await m.EarnAsync(2_000);
        var (reward, _) = await RewardAsync(m, 500);

        var first = await (await RedeemAsync(m, reward, "redeem-1")).Content.ReadAsStringAsync();
        var again = await (await RedeemAsync(m, reward, "redeem-1")).Content.ReadAsStringAsync();

        Assert.Equal(first, again);
        Assert.Equal(1_500, await m.BalanceAsync());
        Assert.Single(await CouponsAsync(m));
    }

    [Fact]
    public async Task Concurrent_redemptions_never_overspend_the_balance_nor_the_offers_stock()
    {
        var m = await LoyaltyTestBrand.CreateAsync(app);
        await m.EarnAsync(2_000);
        var (reward, template) = await RewardAsync(m, 500, stock: 3);

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => RedeemAsync(m, reward)));

        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict, r.StatusCode.ToString()));
        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(500, await m.BalanceAsync());
        Assert.Equal(3, (await CouponsAsync(m)).Count);
        Assert.Equal(0, (await m.Client.GetAsync($"/api/v1/offers/templates/{template}").ReadAsync<JsonElement>()).GetProperty("remaining").GetInt64());
    }

    [Fact]
    public async Task A_withdrawn_reward_cannot_be_redeemed_and_a_template_of_another_brand_is_refused()
    {
        var m = await LoyaltyTestBrand.CreateAsync(app);
        var other = await LoyaltyTestBrand.CreateAsync(app);
        await m.EarnAsync(1_000);
        var (reward, _) = await RewardAsync(m, 100);
        var (_, foreignTemplate) = await RewardAsync(other, 100);

        await m.Client.PatchAsJsonAsync($"/api/v1/loyalty/programmes/{m.ProgrammeId}/rewards/{reward}", new { active = false }).ReadAsync<JsonElement>();
        await RedeemAsync(m, reward).ProblemAsync(409, ProblemTypes.BusinessRule);
        var refused = await m.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{m.ProgrammeId}/rewards",
            new { name = "Not ours", pointsCost = 10, couponTemplateId = foreignTemplate }).ProblemAsync(400, ProblemTypes.Validation);

        Assert.Contains("couponTemplateId", refused.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        Assert.Equal(1_000, await m.BalanceAsync());
    }
}

public sealed class RewardTestsOnSqlite(LoyaltySqliteApp app) : RewardTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class RewardTestsOnPostgres(LoyaltyPostgresApp app) : RewardTests(app), IClassFixture<LoyaltyPostgresApp>;
