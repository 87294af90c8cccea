using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>Custom fields defined without code: typed, validated on the staff API and on incoming events, per brand.</summary>
public abstract class CustomFieldsTests(MeridianAppFixture app)
{
    private static async Task DefineAsync(HttpClient client)
    {
        await client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "shoe_size", label = "Shoe size", type = "number" }).ReadAsync<JsonElement>();
        await client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "skin_type", label = "Skin type", type = "enum", options = new[] { "dry", "oily", "mixed" } }).ReadAsync<JsonElement>();
        await client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "wedding_day", label = "Wedding day", type = "date" }).ReadAsync<JsonElement>();
    }

    [Fact]
    public async Task Staff_set_custom_fields_and_bad_values_get_field_level_errors()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await DefineAsync(b.Test.Client);
        await b.SendAsync(new { type = "identify", userId = "cf-1" });
        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "cf-1");
        var id = profile.GetProperty("id").GetInt64();

        var updated = await b.Test.Client.PatchAsJsonAsync($"/api/v1/profiles/{id}/traits", new { shoe_size = 38, skin_type = "dry", wedding_day = "2020-10-01", nickname = "Xiao Li" })
            .ReadAsync<JsonElement>();
        Assert.Equal(38, updated.GetProperty("traits").GetProperty("shoe_size").GetInt32());
        Assert.Equal("dry", updated.GetProperty("traits").GetProperty("skin_type").GetString());

        var problem = await b.Test.Client.PatchAsJsonAsync($"/api/v1/profiles/{id}/traits", new { shoe_size = "big", skin_type = "scaly", wedding_day = "01/10/2020" })
            .ProblemAsync(400, ProblemTypes.Validation);
        var errors = problem.GetProperty("errors");
        Assert.Equal("Expected a number.", errors.GetProperty("shoe_size")[0].GetString());
        Assert.Contains("dry, oily, mixed", errors.GetProperty("skin_type")[0].GetString());
        Assert.Contains("yyyy-MM-dd", errors.GetProperty("wedding_day")[0].GetString());
        var unchanged = await b.Test.Client.GetAsync($"/api/v1/profiles/{id}").ReadAsync<JsonElement>();
        Assert.Equal(38, unchanged.GetProperty("traits").GetProperty("shoe_size").GetInt32());
    }

    [Fact]
    public async Task Incoming_traits_that_do_not_fit_a_custom_field_are_left_out()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await DefineAsync(b.Test.Client);
        await b.SendAsync(new { type = "identify", userId = "cf-2", traits = new { shoe_size = "forty", skin_type = "oily", city = "Xiamen" } });

        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "cf-2");
        var traits = profile.GetProperty("traits");
        Assert.False(traits.TryGetProperty("shoe_size", out _));
        Assert.Equal("oily", traits.GetProperty("skin_type").GetString());
        Assert.Equal("Xiamen", traits.GetProperty("city").GetString());
    }

    [Fact]
    public async Task Custom_fields_belong_to_their_brand()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        await DefineAsync(a.Client);
        var list = await b.Client.GetAsync("/api/v1/custom-fields").ReadAsync<JsonElement>();
        Assert.Empty(list.EnumerateArray());
        var aFields = await a.Client.GetAsync("/api/v1/custom-fields?entity=profile").ReadAsync<JsonElement>();
        Assert.Equal(3, aFields.GetArrayLength());
        await b.Client.DeleteAsync($"/api/v1/custom-fields/{aFields[0].GetProperty("id").GetInt64()}").ProblemAsync(404, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task An_enum_field_needs_options_and_keys_are_unique()
    {
        var brand = await app.NewBrandAsync();
        await brand.Client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "tier_hint", label = "Tier", type = "enum" })
            .ProblemAsync(400, ProblemTypes.Validation);
        await brand.Client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "pet", label = "Pet", type = "text" }).ReadAsync<JsonElement>();
        await brand.Client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "pet", label = "Pet again", type = "text" })
            .ProblemAsync(409, ProblemTypes.Conflict);
    }
}

public sealed class CustomFieldsTestsOnSqlite(SqliteApp app) : CustomFieldsTests(app), IClassFixture<SqliteApp>;

public sealed class CustomFieldsTestsOnPostgres(PostgresApp app) : CustomFieldsTests(app), IClassFixture<PostgresApp>;
