using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Audiences;

/// <summary>Tag groups and manual tags: set one by one or from lists and CSVs of identifiers, with who, when and the history.</summary>
public abstract class TagTests(MeridianAppFixture app)
{
    private async Task<(ProfileTestBrand Brand, long[] Profiles)> BrandWithCustomersAsync(params string[] phones)
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync([.. phones.Select((phone, i) => (object)new { type = "identify", userId = $"u-{i}", traits = new { phone } })]);
        var ids = new List<long>();
        foreach (var phone in phones) ids.Add((await ProfileTestBrand.LookupAsync(b.Test.Client, "phone", phone)).GetProperty("id").GetInt64());
        return (b, [.. ids]);
    }

    private static async Task<long> CreateTagAsync(HttpClient client, string name, long? groupId = null) =>
        (await client.PostAsJsonAsync("/api/v1/tags", new { name, groupId }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

    private static async Task<List<JsonElement>> TagsOfAsync(HttpClient client, long profileId) =>
        await client.GetAsync($"/api/v1/profiles/{profileId}/tags").ReadAsync<List<JsonElement>>();

    private async Task<List<JsonElement>> EventsAsync(long brandId, string type)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var payloads = await db.Set<OutboxMessage>().Where(m => m.BrandId == brandId && m.Type == type).OrderBy(m => m.Id).Select(m => m.Payload).ToListAsync();
        return payloads.Select(p => JsonDocument.Parse(p).RootElement.Clone()).ToList();
    }

    [Fact]
    public async Task A_tag_in_a_group_set_on_a_customer_shows_who_set_it_and_when_and_counts_its_profiles()
    {
        var (b, profiles) = await BrandWithCustomersAsync("13900000101");
        var group = await b.Test.Client.PostAsJsonAsync("/api/v1/tag-groups", new { name = "Interests" }).ReadAsync<JsonElement>();
        var tagId = await CreateTagAsync(b.Test.Client, "Runner", group.GetProperty("id").GetInt64());

        var set = await b.Test.Client.PutAsync($"/api/v1/tags/{tagId}/profiles/{profiles[0]}", null).ReadAsync<JsonElement>();

        var tag = Assert.Single(await TagsOfAsync(b.Test.Client, profiles[0]));
        Assert.Equal(("Runner", group.GetProperty("id").GetInt64()), (tag.GetProperty("name").GetString(), tag.GetProperty("groupId").GetInt64()));
        Assert.StartsWith("key:", tag.GetProperty("setBy").GetString());
        Assert.Equal(set.GetProperty("setAt").GetDateTime(), tag.GetProperty("setAt").GetDateTime());
        Assert.Equal(1, (await b.Test.Client.GetAsync($"/api/v1/tags/{tagId}").ReadAsync<JsonElement>()).GetProperty("profiles").GetInt64());
        var grouped = await b.Test.Client.GetAsync($"/api/v1/tags?groupId={group.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        Assert.Equal(tagId, Assert.Single(grouped.GetProperty("items").EnumerateArray()).GetProperty("id").GetInt64());
        var added = Assert.Single(await EventsAsync(b.Test.Id, "tag.added"));
        Assert.Equal((tagId, profiles[0]), (added.GetProperty("tagId").GetInt64(), added.GetProperty("profileId").GetInt64()));
    }

    [Fact]
    public async Task A_list_of_phones_in_any_written_form_tags_its_customers_and_names_the_values_that_found_nobody()
    {
        var (b, profiles) = await BrandWithCustomersAsync("13900000201", "13900000202", "13900000203");
        var tagId = await CreateTagAsync(b.Test.Client, "VIP");
        await b.Test.Client.PutAsync($"/api/v1/tags/{tagId}/profiles/{profiles[2]}", null).ReadAsync<JsonElement>();

        var result = await b.Test.Client.PostAsJsonAsync($"/api/v1/tags/{tagId}/profiles", new
        {
            identifierType = "phone",
            identifiers = new[] { "+86 139 0000 0201", "139-0000-0202", "13900000203", "13900000299", "not a phone" },
            reason = "spring list",
        }).ReadAsync<JsonElement>();

        Assert.Equal(2, result.GetProperty("changed").GetInt32());
        Assert.Equal(1, result.GetProperty("unchanged").GetInt32());
        var rejected = result.GetProperty("rejected").EnumerateArray().Select(r => (r.GetProperty("value").GetString(), r.GetProperty("reason").GetString())).ToList();
        Assert.Equal([("not a phone", "invalid_identifier"), ("13900000299", "unknown_identifier")], rejected);
        foreach (var profile in profiles) Assert.Equal("VIP", Assert.Single(await TagsOfAsync(b.Test.Client, profile)).GetProperty("name").GetString());
        var members = await b.Test.Client.GetAsync($"/api/v1/tags/{tagId}/profiles").ReadAsync<JsonElement>();
        Assert.Equal(profiles.Order(), members.GetProperty("items").EnumerateArray().Select(i => i.GetInt64()).Order());
        var history = await b.Test.Client.GetAsync($"/api/v1/profiles/{profiles[0]}/tags/history").ReadAsync<JsonElement>();
        Assert.Equal("spring list", Assert.Single(history.GetProperty("items").EnumerateArray()).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_csv_of_emails_is_read_line_by_line_and_tags_each_customer_it_names()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var emails = Enumerable.Range(0, 1_205).Select(i => $"buyer{i}@example.com").ToList();
        await b.SendAsync([.. emails.Select((email, i) => (object)new { type = "identify", userId = $"csv-{i}", traits = new { email } })]);
        await ProfileTestBrand.LookupAsync(b.Test.Client, "email", emails[^1]);
        var tagId = await CreateTagAsync(b.Test.Client, "Newsletter");
        var csv = "email,name\n" + string.Join("\n", emails.Select((e, i) => i % 2 == 0 ? $"\"{e.ToUpperInvariant()}\",Someone" : $" {e} ,Someone")) + "\nnobody@example.com,x\n";

        var result = await b.Test.Client.PostAsync($"/api/v1/tags/{tagId}/profiles?identifierType=email", new StringContent(csv, Encoding.UTF8, "text/csv"))
            .ReadAsync<JsonElement>();

        Assert.Equal(1_205, result.GetProperty("changed").GetInt32());
        Assert.Equal(("nobody@example.com", "unknown_identifier"),
            Assert.Single(result.GetProperty("rejected").EnumerateArray()) is var r ? (r.GetProperty("value").GetString(), r.GetProperty("reason").GetString()) : default);
        Assert.Equal(1_205, (await b.Test.Client.GetAsync($"/api/v1/tags/{tagId}").ReadAsync<JsonElement>()).GetProperty("profiles").GetInt64());
    }

    [Fact]
    public async Task Removing_a_tag_takes_it_off_and_keeps_both_changes_in_the_history()
    {
        var (b, profiles) = await BrandWithCustomersAsync("13900000301");
        var tagId = await CreateTagAsync(b.Test.Client, "Complained");
        await b.Test.Client.PutAsync($"/api/v1/tags/{tagId}/profiles/{profiles[0]}", null).ReadAsync<JsonElement>();

        var removed = await b.Test.Client.DeleteAsync($"/api/v1/tags/{tagId}/profiles/{profiles[0]}?reason=resolved");

        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.Empty(await TagsOfAsync(b.Test.Client, profiles[0]));
        var history = await b.Test.Client.GetAsync($"/api/v1/profiles/{profiles[0]}/tags/history").ReadAsync<JsonElement>();
        Assert.Equal([(false, "resolved"), (true, null)],
            history.GetProperty("items").EnumerateArray().Select(h => (h.GetProperty("added").GetBoolean(), h.GetProperty("reason").GetString())));
        Assert.Single(await EventsAsync(b.Test.Id, "tag.removed"));
        await b.Test.Client.DeleteAsync($"/api/v1/tags/{tagId}/profiles/{profiles[0]}").ProblemAsync(404, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task A_tag_set_on_a_walk_in_customer_stays_with_them_when_their_profile_is_merged()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(new { type = "identify", userId = "u-401", traits = new { email = "four-oh-one@example.com" } });
        var known = (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "u-401")).GetProperty("id").GetInt64();
        await b.SendAsync(new { type = "identify", anonymousId = "till-401", traits = new { phone = "13900000401" } });
        var walkIn = (await ProfileTestBrand.LookupAsync(b.Test.Client, "phone", "13900000401")).GetProperty("id").GetInt64();
        var tagId = await CreateTagAsync(b.Test.Client, "Store regular");
        await b.Test.Client.PutAsync($"/api/v1/tags/{tagId}/profiles/{walkIn}", null).ReadAsync<JsonElement>();

        await b.SendAsync(new { type = "identify", userId = "u-401", traits = new { phone = "13900000401" } });
        await ProfileTestBrand.LookupAsync(b.Test.Client, "phone", "13900000401", p => p.GetProperty("id").GetInt64() == known);

        Assert.Equal("Store regular", Assert.Single(await TagsOfAsync(b.Test.Client, known)).GetProperty("name").GetString());
        // A segment's estimate counts the survivor as tagged (the brand-wide count reads the tag as a set of profiles).
        Assert.Equal(1, (await b.Test.Client.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = new { tag = "Store regular" } }).ReadAsync<JsonElement>())
            .GetProperty("size").GetInt64());
        Assert.Equal([known], (await b.Test.Client.GetAsync($"/api/v1/tags/{tagId}/profiles").ReadAsync<JsonElement>())
            .GetProperty("items").EnumerateArray().Select(i => i.GetInt64()));
        Assert.Equal(HttpStatusCode.NoContent, (await b.Test.Client.DeleteAsync($"/api/v1/tags/{tagId}/profiles/{known}")).StatusCode);
        Assert.Empty(await TagsOfAsync(b.Test.Client, known));
    }

    [Fact]
    public async Task Bad_tagging_requests_get_problem_details_naming_the_field()
    {
        var (b, profiles) = await BrandWithCustomersAsync("13900000501");
        var tagId = await CreateTagAsync(b.Test.Client, "Gold");

        var duplicate = await b.Test.Client.PostAsJsonAsync("/api/v1/tags", new { name = "Gold" }).ProblemAsync(409, ProblemTypes.Conflict);
        Assert.Contains("Gold", duplicate.GetProperty("detail").GetString());
        var noGroup = await b.Test.Client.PostAsJsonAsync("/api/v1/tags", new { name = "Silver", groupId = 999_999 }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(noGroup.GetProperty("errors").TryGetProperty("groupId", out _));
        var badType = await b.Test.Client.PostAsJsonAsync($"/api/v1/tags/{tagId}/profiles", new { identifierType = "shoe_size", identifiers = new[] { "42" } })
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(badType.GetProperty("errors").TryGetProperty("identifierType", out _));
        var neither = await b.Test.Client.PostAsJsonAsync($"/api/v1/tags/{tagId}/profiles", new { reason = "?" }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(neither.GetProperty("errors").TryGetProperty("profileIds", out _));
        await b.Test.Client.PostAsync($"/api/v1/tags/{tagId}/profiles", new StringContent("{not json", Encoding.UTF8, "application/json"))
            .ProblemAsync(400, ProblemTypes.Validation);
        var csvWithoutType = await b.Test.Client.PostAsync($"/api/v1/tags/{tagId}/profiles", new StringContent("a@b.c\n", Encoding.UTF8, "text/csv"))
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(csvWithoutType.GetProperty("errors").TryGetProperty("identifierType", out _));

        var other = await ProfileTestBrand.CreateAsync(app);
        await other.Test.Client.PutAsync($"/api/v1/tags/{tagId}/profiles/{profiles[0]}", null).ProblemAsync(404, ProblemTypes.NotFound);
        var otherTag = await CreateTagAsync(other.Test.Client, "Theirs");
        var foreign = await other.Test.Client.PostAsJsonAsync($"/api/v1/tags/{otherTag}/profiles", new { profileIds = new[] { profiles[0] } }).ReadAsync<JsonElement>();
        Assert.Equal("unknown_profile", Assert.Single(foreign.GetProperty("rejected").EnumerateArray()).GetProperty("reason").GetString());
        Assert.Empty(await TagsOfAsync(b.Test.Client, profiles[0]));
    }
}

public sealed class TagTestsOnSqlite(SqliteApp app) : TagTests(app), IClassFixture<SqliteApp>;

public sealed class TagTestsOnPostgres(PostgresApp app) : TagTests(app), IClassFixture<PostgresApp>;
