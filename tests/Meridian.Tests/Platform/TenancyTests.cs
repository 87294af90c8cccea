using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Platform;

/// <summary>A brand's key can neither read nor write another brand's rows; a group key reads across its own brands only.</summary>
public abstract class TenancyTests(MeridianAppFixture app)
{
    private static async Task<long> CreateSourceAsync(HttpClient client, string name) =>
        (await client.PostAsJsonAsync("/api/v1/sources", new { name, channel = "app" }).ReadAsync<JsonElement>())
        .GetProperty("source").GetProperty("id").GetInt64();

    [Fact]
    public async Task A_brand_key_does_not_list_another_brands_sources()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        await CreateSourceAsync(a.Client, "shop-a");
        await CreateSourceAsync(b.Client, "shop-b");

        var page = await a.Client.GetAsync("/api/v1/sources").ReadAsync<JsonElement>();
        var names = page.GetProperty("items").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Equal(["shop-a"], names);
        Assert.All(page.GetProperty("items").EnumerateArray(), s => Assert.Equal(a.Id, s.GetProperty("brandId").GetInt64()));
    }

    [Fact]
    public async Task A_brand_key_gets_404_for_another_brands_source_by_id()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        var bSource = await CreateSourceAsync(b.Client, "shop");

        var problem = await a.Client.GetAsync($"/api/v1/sources/{bSource}").ProblemAsync(404, ProblemTypes.NotFound);
        Assert.Contains($"Source {bSource}", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_brand_key_cannot_update_another_brands_source()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        var bSource = await CreateSourceAsync(b.Client, "shop");

        await a.Client.PatchAsJsonAsync($"/api/v1/sources/{bSource}", new { enabled = false }).ProblemAsync(404, ProblemTypes.NotFound);

        var unchanged = await b.Client.GetAsync($"/api/v1/sources/{bSource}").ReadAsync<JsonElement>();
        Assert.True(unchanged.GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task A_brand_key_cannot_delete_another_brands_source()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        var bSource = await CreateSourceAsync(b.Client, "shop");

        await a.Client.DeleteAsync($"/api/v1/sources/{bSource}").ProblemAsync(404, ProblemTypes.NotFound);

        using var stillThere = await b.Client.GetAsync($"/api/v1/sources/{bSource}");
        Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode);
    }

    [Fact]
    public async Task A_brand_key_cannot_write_into_another_brand_by_naming_it()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        var client = app.ClientWithKey(a.Key, brand: b.Slug);

        await client.PostAsJsonAsync("/api/v1/sources", new { name = "intruder", channel = "web" }).ProblemAsync(403, ProblemTypes.Forbidden);

        var bSources = await b.Client.GetAsync("/api/v1/sources").ReadAsync<JsonElement>();
        Assert.Empty(bSources.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task A_group_key_reads_across_its_brands_and_narrows_to_the_brand_it_names()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        var aSource = await CreateSourceAsync(a.Client, "shop");
        var bSource = await CreateSourceAsync(b.Client, "shop");
        var analyst = app.ClientWithKey(await app.NewKeyAsync("analyst", brand: null));

        var all = await ReadAllIdsAsync(analyst);
        Assert.Contains(aSource, all);
        Assert.Contains(bSource, all);

        var onlyB = await ReadAllIdsAsync(app.ClientWithKey(await app.NewKeyAsync("analyst", brand: null), brand: b.Slug));
        Assert.Equal([bSource], onlyB);
    }

    [Fact]
    public async Task A_group_key_must_name_the_brand_it_writes_to()
    {
        var problem = await app.Admin.PostAsJsonAsync("/api/v1/sources", new { name = "nameless", channel = "web" })
            .ProblemAsync(400, ProblemTypes.BrandRequired);
        Assert.Contains("Meridian-Brand", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_brand_key_does_not_see_other_brands_in_the_group()
    {
        var a = await app.NewBrandAsync("analyst");
        var brands = await a.Client.GetAsync("/api/v1/brands").ReadAsync<JsonElement>();
        Assert.Equal([a.Id], brands.EnumerateArray().Select(b => b.GetProperty("id").GetInt64()).ToList());
    }

    private static async Task<List<long>> ReadAllIdsAsync(HttpClient client)
    {
        var ids = new List<long>();
        string? cursor = null;
        do
        {
            var page = await client.GetAsync($"/api/v1/sources?limit=2{(cursor is null ? "" : "&cursor=" + cursor)}").ReadAsync<JsonElement>();
            ids.AddRange(page.GetProperty("items").EnumerateArray().Select(s => s.GetProperty("id").GetInt64()));
            cursor = page.GetProperty("nextCursor").GetString();
        } while (cursor is not null);
        return ids;
    }
}

public sealed class TenancyTestsOnSqlite(SqliteApp app) : TenancyTests(app), IClassFixture<SqliteApp>;

public sealed class TenancyTestsOnPostgres(PostgresApp app) : TenancyTests(app), IClassFixture<PostgresApp>;
