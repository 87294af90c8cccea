using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>Staff actions on profiles: timeline, manual merge and its undo (split), data-subject export and erasure.</summary>
public abstract class ProfileStewardshipTests(MeridianAppFixture app)
{
    private static long Id(JsonElement profile) => profile.GetProperty("id").GetInt64();

    [Fact]
    public async Task The_timeline_lists_a_profiles_events_newest_first_with_paging()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "track", userId = "u", @event = "First", timestamp = "2026-01-01T00:00:00Z" },
            new { type = "track", userId = "u", @event = "Third", timestamp = "2026-03-01T00:00:00Z" },
            new { type = "track", userId = "u", @event = "Second", timestamp = "2026-02-01T00:00:00Z" });
        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "u", p => p.GetProperty("eventCount").GetInt64() == 3);

        var names = new List<string>();
        string? cursor = null;
        do
        {
            var page = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(profile)}/timeline?limit=2{(cursor is null ? "" : "&cursor=" + cursor)}").ReadAsync<JsonElement>();
            names.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("name").GetString()!));
            cursor = page.GetProperty("nextCursor").GetString();
        } while (cursor is not null);
        Assert.Equal(["Third", "Second", "First"], names);
    }

    [Fact]
    public async Task Staff_find_customers_by_phone_in_any_format_email_or_name()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "identify", userId = "s-1", traits = new { name = "张伟", phone = "13811112222", email = "zw@example.com" } },
            new { type = "identify", userId = "s-2", traits = new { name = "张敏", phone = "13833334444" } },
            new { type = "identify", userId = "s-3", traits = new { name = "李娜" } });
        await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "s-3");

        async Task<string[]> Find(string q) => (await b.Test.Client.GetAsync($"/api/v1/profiles?q={Uri.EscapeDataString(q)}").ReadAsync<JsonElement>())
            .EnumerateArray().Select(p => p.GetProperty("traits").GetProperty("name").GetString()!).Order().ToArray();

        Assert.Equal(["张伟"], await Find("+86 138-1111-2222"));
        Assert.Equal(["张伟"], await Find("ZW@example.com"));
        Assert.Equal(["张伟", "张敏"], await Find("张"));
        Assert.Empty(await Find("王"));
    }

    [Fact]
    public async Task Consent_changes_from_front_ends_and_staff_are_kept_with_time_and_origin()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "track", userId = "c-1", @event = "Consent Updated", timestamp = "2026-03-01T00:00:00Z", properties = new { channel = "sms", purpose = "marketing", granted = true } },
            new { type = "track", userId = "c-1", @event = "Consent Updated", timestamp = "2026-04-01T00:00:00Z", properties = new { channel = "email", purpose = "marketing", granted = true } });
        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "c-1", p => p.GetProperty("eventCount").GetInt64() == 2);

        var withdrawn = await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{Id(profile)}/consents", new { channel = "sms", purpose = "marketing", granted = false }).ReadAsync<JsonElement>();
        Assert.StartsWith("key:", withdrawn.GetProperty("origin").GetString());

        var current = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(profile)}/consents").ReadAsync<JsonElement>();
        var byChannel = current.EnumerateArray().ToDictionary(c => c.GetProperty("channel").GetString()!, c => c.GetProperty("granted").GetBoolean());
        Assert.Equal(new Dictionary<string, bool> { ["sms"] = false, ["email"] = true }, byChannel);
        var history = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(profile)}/consents?history=true").ReadAsync<JsonElement>();
        Assert.Equal(3, history.GetArrayLength());
        Assert.StartsWith("source:", history[0].GetProperty("origin").GetString());

        await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{Id(profile)}/consents", new { channel = "fax", purpose = "marketing", granted = true })
            .ProblemAsync(400, ProblemTypes.Validation);
    }

    [Fact]
    public async Task A_manual_merge_can_be_undone_giving_each_side_back_its_identifiers_events_and_traits()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "identify", userId = "wang", traits = new { city = "Suzhou" } },
            new { type = "identify", userId = "wang-2", traits = new { city = "Wuxi", vip = true } },
            new { type = "track", userId = "wang-2", @event = "Checked In" });
        var a = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "wang");
        var other = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "wang-2", p => p.GetProperty("eventCount").GetInt64() == 2);

        var merged = await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{Id(a)}/merge", new { profileId = Id(other) }).ReadAsync<JsonElement>();
        Assert.Equal(3, merged.GetProperty("eventCount").GetInt64());
        Assert.Contains(("user_id", "wang-2"), ProfileTestBrand.Identifiers(merged));
        var viaOldId = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(other)}").ReadAsync<JsonElement>();
        Assert.Equal(Id(a), Id(viaOldId));

        var merges = await b.Test.Client.GetAsync($"/api/v1/identity/merges?profileId={Id(a)}").ReadAsync<JsonElement>();
        var mergeId = merges.GetProperty("items").EnumerateArray().Single().GetProperty("id").GetInt64();
        await b.Test.Client.PostAsync($"/api/v1/identity/merges/{mergeId}/undo", null).ReadAsync<JsonElement>();

        var restored = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(other)}").ReadAsync<JsonElement>();
        Assert.Equal(Id(other), Id(restored));
        Assert.Equal([("user_id", "wang-2")], ProfileTestBrand.Identifiers(restored).ToArray());
        Assert.Equal(2, restored.GetProperty("eventCount").GetInt64());
        Assert.Equal("Wuxi", restored.GetProperty("traits").GetProperty("city").GetString());
        var kept = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(a)}").ReadAsync<JsonElement>();
        Assert.Equal([("user_id", "wang")], ProfileTestBrand.Identifiers(kept).ToArray());
        Assert.Equal("Suzhou", kept.GetProperty("traits").GetProperty("city").GetString());
        Assert.False(kept.GetProperty("traits").TryGetProperty("vip", out _));

        await b.Test.Client.PostAsync($"/api/v1/identity/merges/{mergeId}/undo", null).ProblemAsync(409, ProblemTypes.BusinessRule);
    }

    [Fact]
    public async Task An_export_holds_everything_about_the_person()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "identify", userId = "exp", traits = new { email = "exp@example.com", phone = "13700001111" } },
            new { type = "track", userId = "exp", @event = "Order Completed", properties = new { order_id = "o-9", total = 9900 } });
        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "exp", p => p.GetProperty("eventCount").GetInt64() == 2);

        var export = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(profile)}/export").ReadAsync<JsonElement>();
        Assert.Equal("exp@example.com", export.GetProperty("profile").GetProperty("traits").GetProperty("email").GetProperty("v").GetString());
        Assert.Contains(export.GetProperty("identifiers").EnumerateArray(), i => i.GetProperty("value").GetString() == "+8613700001111");
        var events = export.GetProperty("events").EnumerateArray().ToList();
        Assert.Equal(2, events.Count);
        Assert.Equal("o-9", events[1].GetProperty("message").GetProperty("properties").GetProperty("order_id").GetString());

        using var analyst = app.ClientWithKey(await app.NewKeyAsync("analyst", b.Test.Slug));
        await analyst.GetAsync($"/api/v1/profiles/{Id(profile)}/export").ProblemAsync(403, ProblemTypes.Forbidden);
    }

    [Fact]
    public async Task Erasure_removes_personal_data_from_profile_identifiers_and_stored_events()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "identify", userId = "gone", traits = new { email = "gone@example.com", name = "Forget Me" } },
            new { type = "track", userId = "gone", @event = "Order Completed", properties = new { order_id = "o-1", total = 100 } });
        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "gone", p => p.GetProperty("eventCount").GetInt64() == 2);

        var erased = await b.Test.Client.DeleteAsync($"/api/v1/profiles/{Id(profile)}").ReadAsync<JsonElement>();
        Assert.Equal(JsonValueKind.String, erased.GetProperty("erasedAt").ValueKind);

        await b.Test.Client.GetAsync("/api/v1/profiles/lookup?type=email&value=gone@example.com").ProblemAsync(404, ProblemTypes.NotFound);
        var export = await b.Test.Client.GetAsync($"/api/v1/profiles/{Id(profile)}/export").ReadAsync<JsonElement>();
        var text = export.GetRawText();
        Assert.DoesNotContain("gone@example.com", text);
        Assert.DoesNotContain("Forget Me", text);
        Assert.Empty(export.GetProperty("identifiers").EnumerateArray());
        Assert.Equal(2, export.GetProperty("events").GetArrayLength()); // the events keep their place, without their content
        Assert.All(export.GetProperty("events").EnumerateArray(), e => Assert.True(e.GetProperty("message").GetProperty("erased").GetBoolean()));
    }

    [Fact]
    public async Task Erasure_needs_pii_read_as_well_as_profiles_write()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(new { type = "identify", userId = "kept" });
        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "kept");
        using var marketer = app.ClientWithKey(await app.NewKeyAsync("marketer", b.Test.Slug));
        await marketer.DeleteAsync($"/api/v1/profiles/{Id(profile)}").ProblemAsync(403, ProblemTypes.Forbidden);
    }
}

public sealed class ProfileStewardshipTestsOnSqlite(SqliteApp app) : ProfileStewardshipTests(app), IClassFixture<SqliteApp>;

public sealed class ProfileStewardshipTestsOnPostgres(PostgresApp app) : ProfileStewardshipTests(app), IClassFixture<PostgresApp>;
