using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Profiles.Data;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>Search by the start of a name, as written (Chinese family name first), through the (tenant, search_name) index.</summary>
public abstract class NameSearchTests(MeridianAppFixture app)
{
    /// <summary>A brand whose customers u0, u1, ... have the given names; returns their profile ids by name.</summary>
    private async Task<(ProfileTestBrand Brand, Dictionary<string, long> Ids)> BrandWithNamesAsync(params string[] names)
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync([.. names.Select((name, i) => (object)new { type = "identify", userId = $"u{i}", traits = new { name } })]);
        var ids = new Dictionary<string, long>();
        for (var i = 0; i < names.Length; i++)
            ids[names[i]] = (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", $"u{i}")).GetProperty("id").GetInt64();
        return (b, ids);
    }

    private static async Task<List<string>> SearchAsync(ProfileTestBrand b, string q) =>
        (await b.Test.Client.GetAsync($"/api/v1/profiles?q={Uri.EscapeDataString(q)}").ReadAsync<JsonElement>())
        .EnumerateArray().Select(p => p.GetProperty("traits").GetProperty("name").GetString()!).ToList();

    [Fact]
    public async Task A_chinese_family_name_finds_everyone_of_that_family_in_name_order()
    {
        var (b, _) = await BrandWithNamesAsync("张伟", "李娜", "张三丰", "王张");

        Assert.Equal(["张三丰", "张伟"], await SearchAsync(b, "张"));
        Assert.Equal(["张伟"], await SearchAsync(b, "张伟"));
    }

    [Fact]
    public async Task A_latin_prefix_matches_whatever_the_case_spacing_and_width()
    {
        var (b, _) = await BrandWithNamesAsync("Zhang  Wei", "ＺＨＡＮＧ Li", "Zhao Min");

        Assert.Equal(["ＺＨＡＮＧ Li", "Zhang  Wei"], await SearchAsync(b, " zhang "));
        Assert.Equal(["Zhang  Wei"], await SearchAsync(b, "ZHANG W"));
        Assert.Empty(await SearchAsync(b, "wei"));
    }

    [Fact]
    public async Task A_renamed_customer_is_found_by_the_new_name_only()
    {
        var (b, ids) = await BrandWithNamesAsync("张伟", "张敏");

        await b.Test.Client.PatchAsJsonAsync($"/api/v1/profiles/{ids["张伟"]}/traits", new { name = "王伟" }).ReadAsync<JsonElement>();

        Assert.Equal(["张敏"], await SearchAsync(b, "张"));
        Assert.Equal(["王伟"], await SearchAsync(b, "王"));
    }

    [Fact]
    public async Task An_erased_customer_is_not_found_by_name()
    {
        var (b, ids) = await BrandWithNamesAsync("张伟", "张敏");

        await b.Test.Client.DeleteAsync($"/api/v1/profiles/{ids["张伟"]}").ReadAsync<JsonElement>();

        Assert.Equal(["张敏"], await SearchAsync(b, "张"));
    }

    [Fact]
    public async Task Merged_profiles_are_found_once_under_the_survivors_name()
    {
        var (b, ids) = await BrandWithNamesAsync("张伟", "张小伟");

        await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{ids["张伟"]}/merge", new { profileId = ids["张小伟"] }).ReadAsync<JsonElement>();

        Assert.Single(await SearchAsync(b, "张"));
    }

    [Fact]
    public async Task Another_brands_customers_are_not_found()
    {
        var (_, _) = await BrandWithNamesAsync("欧阳修");
        var (other, _) = await BrandWithNamesAsync("欧阳娜娜");

        Assert.Equal(["欧阳娜娜"], await SearchAsync(other, "欧阳"));
    }

    [Fact]
    public async Task A_group_key_must_name_the_brand_to_search()
    {
        var problem = await app.Admin.GetAsync("/api/v1/profiles?q=%E5%BC%A0").ProblemAsync(400, ProblemTypes.BrandRequired);

        Assert.Equal("A brand must be named.", problem.GetProperty("title").GetString());
    }
}

public sealed class NameSearchTestsOnSqlite(SqliteApp app) : NameSearchTests(app), IClassFixture<SqliteApp>;

public sealed class NameSearchTestsOnPostgres(PostgresApp app) : NameSearchTests(app), IClassFixture<PostgresApp>;

/// <summary>How names are folded for the index, and the range a prefix covers.</summary>
public sealed class ProfileNamesTests
{
    [Theory]
    [InlineData("{\"name\":{\"v\":\"  Zhang   Wei \",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1}}", "zhang wei")]
    [InlineData("{\"name\":{\"v\":\"ＬＩ　Ｎａ\",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1}}", "li na")]
    [InlineData("{\"last_name\":{\"v\":\"张\",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1},\"first_name\":{\"v\":\"伟\",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1}}", "张伟")]
    [InlineData("{\"firstName\":{\"v\":\"Ada\",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1},\"lastName\":{\"v\":\"Lovelace\",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1}}", "ada lovelace")]
    [InlineData("{\"city\":{\"v\":\"Hangzhou\",\"t\":\"2026-01-01T00:00:00Z\",\"s\":1}}", null)]
    [InlineData("{}", null)]
    public void The_search_key_is_the_name_folded(string traits, string? key) => Assert.Equal(key, ProfileNames.SearchKey(traits));

    [Theory]
    [InlineData("张", "张", true)]
    [InlineData("张", "张伟", true)]
    [InlineData("张", "彰", false)]
    [InlineData("zh", "zhz", true)]
    [InlineData("zh", "zi", false)]
    [InlineData("𠀀", "𠀀明", true)]
    [InlineData("𠀀", "𠀁", false)]
    public void A_prefix_covers_exactly_the_names_that_start_with_it(string prefix, string name, bool inside)
    {
        var upper = ProfileNames.UpperBound(prefix);
        // Both databases compare the column by code point, which is how ordinal comparison orders these strings too.
        var within = string.CompareOrdinal(name, prefix) >= 0 && string.CompareOrdinal(name, upper) < 0;
        Assert.Equal(inside, within);
    }
}
