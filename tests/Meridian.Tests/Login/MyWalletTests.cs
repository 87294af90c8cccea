using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Login;

/// <summary>A signed-in customer's own points, rewards and coupons through the self-service API.</summary>
public abstract class MyWalletTests(LoginApp app)
{
    private async Task<(LoginBrand Brand, string Access, long ProfileId)> SignedInAsync()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (access, profileId) = await Flow.SignedInCustomerAsync(app, b);
        return (b, access, profileId);
    }

    private static async Task<(long Programme, long Member)> EnrolAsync(HttpClient staff, long profileId, long points)
    {
        var programme = (await staff.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Club", expiry = "after_days", expiryDays = 365 }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var member = (await staff.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programme}/members", new { profileId }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var earn = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/loyalty/members/{member}/earn") { Content = JsonContent.Create(new { points }) };
        earn.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        await staff.SendAsync(earn).ReadAsync<JsonElement>();
        return (programme, member);
    }

    private static async Task<long> RewardAsync(HttpClient staff, long programme, long cost)
    {
        var template = (await staff.PostAsJsonAsync("/api/v1/offers/templates", new { name = "Free tea", kind = "free_item", freeSku = "TEA-1", stock = 10 })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        return (await staff.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programme}/rewards", new { name = "Free tea", pointsCost = cost, couponTemplateId = template })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
    }

    private static HttpRequestMessage Redeem(string access, long reward, string key)
    {
        var request = Flow.WithBearer(HttpMethod.Post, $"/api/v1/me/rewards/{reward}/redeem", access);
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    [Fact]
    public async Task A_member_sees_their_points_redeems_a_reward_once_and_finds_its_coupon_among_theirs()
    {
        var (b, access, profileId) = await SignedInAsync();
        var (programme, _) = await EnrolAsync(b.Brand.Client, profileId, 800);
        var reward = await RewardAsync(b.Brand.Client, programme, 300);
        using var browser = app.Browser();

        var points = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/points", access)).JsonAsync();
        Assert.Equal(800, points.GetProperty("balance").GetInt64());
        var offered = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/rewards", access)).JsonAsync();
        Assert.Equal(reward, Assert.Single(offered.EnumerateArray()).GetProperty("id").GetInt64());

        using var first = await browser.SendAsync(Redeem(access, reward, "tap-1"));
        using var replay = await browser.SendAsync(Redeem(access, reward, "tap-1"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(), await replay.Content.ReadAsStringAsync());
        Assert.Equal(500, (await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/points", access)).JsonAsync()).GetProperty("balance").GetInt64());
        var entries = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/points/entries", access)).JsonAsync();
        Assert.Equal(["earn", "spend"], entries.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("kind").GetString()));
        var coupons = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/coupons?status=issued", access)).JsonAsync();
        var coupon = Assert.Single(coupons.GetProperty("items").EnumerateArray());
        var bought = JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement.GetProperty("coupon");
        Assert.Equal(bought.GetProperty("code").GetString(), coupon.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_customer_who_is_no_member_gets_404_for_points_and_an_empty_list_of_coupons()
    {
        var (_, access, _) = await SignedInAsync();
        using var browser = app.Browser();

        var problem = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/points", access)).ProblemAsync(404, ProblemTypes.NotFound);
        Assert.Contains("membership", problem.GetProperty("detail").GetString());
        var coupons = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/coupons", access)).JsonAsync();
        Assert.Empty(coupons.GetProperty("items").EnumerateArray());
        await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/coupons?status=lost", access)).ProblemAsync(400, ProblemTypes.Validation);
    }

    [Fact]
    public async Task A_customer_cannot_redeem_a_reward_of_another_brands_programme()
    {
        var (b, access, profileId) = await SignedInAsync();
        await EnrolAsync(b.Brand.Client, profileId, 1_000);
        var other = await LoginBrand.CreateAsync(app);
        var (otherProgramme, _) = await EnrolAsync(other.Brand.Client, (await Flow.SignedInCustomerAsync(app, other)).ProfileId, 10);
        var foreign = await RewardAsync(other.Brand.Client, otherProgramme, 100);
        using var browser = app.Browser();

        await browser.SendAsync(Redeem(access, foreign, "sneaky")).ProblemAsync(404, ProblemTypes.NotFound);

        Assert.Equal(1_000, (await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/points", access)).JsonAsync()).GetProperty("balance").GetInt64());
    }
}

public sealed class MyWalletTestsOnSqlite(LoginSqliteApp app) : MyWalletTests(app), IClassFixture<LoginSqliteApp>;

public sealed class MyWalletTestsOnPostgres(LoginPostgresApp app) : MyWalletTests(app), IClassFixture<LoginPostgresApp>;
