using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>A group-level key sees a person's orders across the group's brands; a brand key sees its own brand only.</summary>
public abstract class GroupTotalsTests(MeridianAppFixture app)
{
    private static object Order(string phone, decimal total) =>
        new { type = "track", userId = "u-" + phone, @event = "Order Completed", context = new { traits = new { phone } }, properties = new { total } };

    /// <summary>One person (by phone) buying in two brands, and someone else in the first.</summary>
    private async Task<(ProfileTestBrand Shop, ProfileTestBrand Outlet, long InShop, long InOutlet, long Stranger)> TwoBrandsOneCustomerAsync()
    {
        var phone = "+861380" + Random.Shared.Next(1000000, 9999999);
        var stranger = "+861390" + Random.Shared.Next(1000000, 9999999);
        var shop = await ProfileTestBrand.CreateAsync(app);
        var outlet = await ProfileTestBrand.CreateAsync(app);
        await shop.SendAsync(Order(phone, 100), Order(phone, 50), Order(stranger, 999));
        await outlet.SendAsync(Order(phone, 30));
        var inShop = await ProfileTestBrand.LookupAsync(shop.Test.Client, "phone", phone, p => p.GetProperty("eventCount").GetInt32() == 2);
        var inOutlet = await ProfileTestBrand.LookupAsync(outlet.Test.Client, "phone", phone);
        var other = await ProfileTestBrand.LookupAsync(shop.Test.Client, "phone", stranger);
        return (shop, outlet, inShop.GetProperty("id").GetInt64(), inOutlet.GetProperty("id").GetInt64(), other.GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task A_group_key_sees_the_orders_of_the_same_phone_summed_across_brands()
    {
        var (shop, outlet, inShop, inOutlet, _) = await TwoBrandsOneCustomerAsync();

        var group = (await app.Admin.GetAsync($"/api/v1/profiles/{inShop}").ReadAsync<JsonElement>()).GetProperty("group");

        Assert.Equal(3, group.GetProperty("orderCount").GetInt64());
        Assert.Equal(18000, group.GetProperty("totalSpendMinor").GetProperty("CNY").GetInt64());
        var profiles = group.GetProperty("profiles").EnumerateArray()
            .Select(p => (p.GetProperty("brand").GetString(), p.GetProperty("profileId").GetInt64(), p.GetProperty("orderCount").GetInt64(), p.GetProperty("totalSpendMinor").GetInt64()))
            .ToList();
        Assert.Equal([(shop.Test.Slug, inShop, 2L, 15000L), (outlet.Test.Slug, inOutlet, 1L, 3000L)], profiles);
    }

    [Fact]
    public async Task Someone_sharing_no_identifier_is_not_counted()
    {
        var (_, _, _, _, stranger) = await TwoBrandsOneCustomerAsync();

        var group = (await app.Admin.GetAsync($"/api/v1/profiles/{stranger}").ReadAsync<JsonElement>()).GetProperty("group");

        Assert.Equal(1, group.GetProperty("orderCount").GetInt64());
        Assert.Single(group.GetProperty("profiles").EnumerateArray());
    }

    [Fact]
    public async Task A_brand_key_sees_no_group_totals_and_not_the_other_brands_profile()
    {
        var (shop, _, inShop, inOutlet, _) = await TwoBrandsOneCustomerAsync();

        var own = await shop.Test.Client.GetAsync($"/api/v1/profiles/{inShop}").ReadAsync<JsonElement>();
        Assert.Equal(JsonValueKind.Null, own.GetProperty("group").ValueKind);
        Assert.Equal(2, own.GetProperty("computed").GetProperty("orderCount").GetInt64());

        var problem = await shop.Test.Client.GetAsync($"/api/v1/profiles/{inOutlet}").ProblemAsync(404, ProblemTypes.NotFound);
        Assert.Equal($"Profile {inOutlet} was not found.", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_group_key_acting_for_one_brand_reads_that_brand_only()
    {
        var (shop, _, inShop, _, _) = await TwoBrandsOneCustomerAsync();
        var acting = app.ClientWithKey(MeridianAppFixture.AdminKey, shop.Test.Slug);

        var profile = await acting.GetAsync($"/api/v1/profiles/{inShop}").ReadAsync<JsonElement>();

        Assert.Equal(JsonValueKind.Null, profile.GetProperty("group").ValueKind);
    }
}

public sealed class GroupTotalsTestsOnSqlite(SqliteApp app) : GroupTotalsTests(app), IClassFixture<SqliteApp>;

public sealed class GroupTotalsTestsOnPostgres(PostgresApp app) : GroupTotalsTests(app), IClassFixture<PostgresApp>;
