using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>Each trait combines as its custom field says: the latest value, the first, a sum or a union.</summary>
public abstract class TraitMergeTests(MeridianAppFixture app)
{
    private static async Task DefineAsync(HttpClient client)
    {
        await client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "visits", label = "Visits", type = "number", merge = "sum" }).ReadAsync<JsonElement>();
        await client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "first_channel", label = "First channel", type = "text", merge = "first" }).ReadAsync<JsonElement>();
        await client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "interests", label = "Interests", type = "text", merge = "union" }).ReadAsync<JsonElement>();
    }

    private static object Identify(string userId, string at, int visits, string channel, string interest, string city) =>
        new { type = "identify", userId, timestamp = at, traits = new { visits, first_channel = channel, interests = interest, city } };

    [Fact]
    public async Task Events_fold_into_traits_by_each_fields_strategy_whatever_order_they_arrive_in()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await DefineAsync(b.Test.Client);
        await b.SendAsync(
            Identify("tm-1", "2026-03-02T00:00:00Z", 1, "app", "tea", "Xiamen"),
            Identify("tm-1", "2026-03-03T00:00:00Z", 2, "web", "shoes", "Fuzhou"),
            Identify("tm-1", "2026-03-01T00:00:00Z", 4, "store", "tea", "Quanzhou"));

        var traits = (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "tm-1", p => p.GetProperty("eventCount").GetInt64() == 3)).GetProperty("traits");
        Assert.Equal(7, traits.GetProperty("visits").GetDecimal());
        Assert.Equal("store", traits.GetProperty("first_channel").GetString());
        Assert.Equal(["tea", "shoes"], traits.GetProperty("interests").EnumerateArray().Select(i => i.GetString()!).ToArray());
        Assert.Equal("Fuzhou", traits.GetProperty("city").GetString());
    }

    [Fact]
    public async Task A_merge_combines_traits_by_strategy_and_undoing_it_gives_each_side_its_own()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await DefineAsync(b.Test.Client);
        await b.SendAsync(Identify("tm-a", "2026-03-01T00:00:00Z", 3, "store", "tea", "Xiamen"), Identify("tm-b", "2026-03-05T00:00:00Z", 5, "app", "golf", "Fuzhou"));
        var a = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "tm-a");
        var other = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "tm-b");

        var merged = await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{a.GetProperty("id").GetInt64()}/merge", new { profileId = other.GetProperty("id").GetInt64() })
            .ReadAsync<JsonElement>();
        var traits = merged.GetProperty("traits");
        Assert.Equal(8, traits.GetProperty("visits").GetDecimal());
        Assert.Equal("store", traits.GetProperty("first_channel").GetString());
        Assert.Equal(["tea", "golf"], traits.GetProperty("interests").EnumerateArray().Select(i => i.GetString()!).ToArray());
        Assert.Equal("Fuzhou", traits.GetProperty("city").GetString());

        var merges = await b.Test.Client.GetAsync($"/api/v1/identity/merges?profileId={a.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        await b.Test.Client.PostAsync($"/api/v1/identity/merges/{merges.GetProperty("items")[0].GetProperty("id").GetInt64()}/undo", null).ReadAsync<JsonElement>();
        var keptBack = await b.Test.Client.GetAsync($"/api/v1/profiles/{a.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        var otherBack = await b.Test.Client.GetAsync($"/api/v1/profiles/{other.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        Assert.Equal(3, keptBack.GetProperty("traits").GetProperty("visits").GetDecimal());
        Assert.Equal(5, otherBack.GetProperty("traits").GetProperty("visits").GetDecimal());
    }

    [Fact]
    public async Task A_strategy_that_does_not_suit_the_fields_type_gets_a_field_level_error()
    {
        var b = await app.NewBrandAsync();
        var problem = await b.Client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "nickname", label = "Nickname", type = "text", merge = "sum" })
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.Equal("Only number fields can sum.", problem.GetProperty("errors").GetProperty("merge")[0].GetString());

        var field = await b.Client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "vip", label = "VIP", type = "boolean" }).ReadAsync<JsonElement>();
        Assert.Equal("latest", field.GetProperty("merge").GetString(), ignoreCase: true);
        var patch = await b.Client.PatchAsJsonAsync($"/api/v1/custom-fields/{field.GetProperty("id").GetInt64()}", new { merge = "union" })
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("union", patch.GetProperty("errors").GetProperty("merge")[0].GetString());
    }
}

public sealed class TraitMergeTestsOnSqlite(SqliteApp app) : TraitMergeTests(app), IClassFixture<SqliteApp>;

public sealed class TraitMergeTestsOnPostgres(PostgresApp app) : TraitMergeTests(app), IClassFixture<PostgresApp>;
