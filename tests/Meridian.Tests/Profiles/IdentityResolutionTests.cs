using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>ID-Mapping end to end: events in through the tracking API, profiles out through lookup by any identifier.</summary>
public abstract class IdentityResolutionTests(MeridianAppFixture app)
{
    private Task<ProfileTestBrand> NewBrandAsync() => ProfileTestBrand.CreateAsync(app);

    private static Task SendAsync(ProfileTestBrand brand, params object[] messages) => brand.SendAsync(messages);

    private static Task<JsonElement> LookupAsync(HttpClient client, string type, string value, Func<JsonElement, bool>? until = null) =>
        ProfileTestBrand.LookupAsync(client, type, value, until);

    private static IEnumerable<(string, string)> Identifiers(JsonElement profile) => ProfileTestBrand.Identifiers(profile);

    [Fact]
    public async Task Identifiers_are_normalised_so_any_written_form_finds_the_customer()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "identify", userId = "u-1", traits = new { phone = "+86 138 1234 5678", email = " Zhang.Wei@Example.COM ", name = "张伟" } });

        var profile = await LookupAsync(b.Test.Client, "phone", "138-1234-5678");
        Assert.Contains(("phone", "+8613812345678"), Identifiers(profile));
        Assert.Contains(("email", "zhang.wei@example.com"), Identifiers(profile));
        Assert.Contains(("user_id", "u-1"), Identifiers(profile));
        Assert.Equal("张伟", profile.GetProperty("traits").GetProperty("name").GetString());
        var byEmail = await LookupAsync(b.Test.Client, "email", "ZHANG.WEI@example.com");
        Assert.Equal(profile.GetProperty("id").GetInt64(), byEmail.GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task A_write_left_open_in_another_database_on_the_server_does_not_hold_new_events_back()
    {
        var b = await NewBrandAsync();
        await using var elsewhere = await OpenWriteElsewhere.BeginAsync(app.Provider);
        await SendAsync(b, new { type = "identify", userId = "held-1", traits = new { email = "held@example.com" } });

        var profile = await LookupAsync(b.Test.Client, "email", "held@example.com");
        Assert.Contains(("user_id", "held-1"), Identifiers(profile));
    }

    [Fact]
    public async Task Identifiers_that_cannot_be_normalised_are_counted_in_the_sources_data_quality()
    {
        var b = await NewBrandAsync();
        await SendAsync(b,
            new { type = "identify", userId = "bad-ids", traits = new { phone = "call me maybe", email = "nobody@" } },
            new { type = "identify", userId = "bad-phone", traits = new { phone = "12", email = "fine@example.com" } },
            new { type = "identify", userId = "all-good", traits = new { phone = "13812345678" } });
        await LookupAsync(b.Test.Client, "user_id", "all-good");
        await LookupAsync(b.Test.Client, "user_id", "bad-ids");
        await LookupAsync(b.Test.Client, "user_id", "bad-phone");

        var report = await b.Test.Client.GetAsync("/api/v1/data-quality?days=7").ReadAsync<JsonElement>();
        var failures = report.EnumerateArray().Single().GetProperty("days").EnumerateArray().Single().GetProperty("identifierFailures");
        Assert.Equal(2, failures.GetProperty("phone").GetInt64());
        Assert.Equal(1, failures.GetProperty("email").GetInt64());
        Assert.False(failures.TryGetProperty("user_id", out _));
    }

    [Fact]
    public async Task Anonymous_activity_becomes_part_of_the_customer_once_identified()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "page", anonymousId = "anon-7", name = "Home" }, new { type = "track", anonymousId = "anon-7", @event = "Product Viewed" });
        var anonymous = await LookupAsync(b.Test.Client, "anonymous_id", "anon-7");

        await SendAsync(b, new { type = "identify", userId = "u-7", anonymousId = "anon-7", traits = new { email = "seven@example.com" } });

        var customer = await LookupAsync(b.Test.Client, "user_id", "u-7");
        Assert.Equal(anonymous.GetProperty("id").GetInt64(), customer.GetProperty("id").GetInt64());
        Assert.Equal(3, customer.GetProperty("eventCount").GetInt64());
    }

    [Fact]
    public async Task An_event_carrying_identifiers_of_two_profiles_merges_them_and_records_why()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "identify", userId = "u-9", traits = new { email = "nine@example.com" } });
        var known = await LookupAsync(b.Test.Client, "user_id", "u-9");
        await SendAsync(b, new { type = "identify", anonymousId = "store-visit-1", traits = new { phone = "13900000009", city = "Hangzhou" } });
        var walkIn = await LookupAsync(b.Test.Client, "phone", "13900000009");
        Assert.NotEqual(known.GetProperty("id").GetInt64(), walkIn.GetProperty("id").GetInt64());

        await SendAsync(b, new { type = "identify", userId = "u-9", traits = new { phone = "139-0000-0009" } });

        var merged = await LookupAsync(b.Test.Client, "phone", "13900000009", p => p.GetProperty("id").GetInt64() == known.GetProperty("id").GetInt64());
        Assert.Contains(("anonymous_id", "store-visit-1"), Identifiers(merged));
        Assert.Equal("Hangzhou", merged.GetProperty("traits").GetProperty("city").GetString());
        var oldId = await b.Test.Client.GetAsync($"/api/v1/profiles/{walkIn.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        Assert.Equal(known.GetProperty("id").GetInt64(), oldId.GetProperty("id").GetInt64());

        var merges = await b.Test.Client.GetAsync("/api/v1/identity/merges").ReadAsync<JsonElement>();
        var merge = Assert.Single(merges.GetProperty("items").EnumerateArray());
        Assert.Equal(known.GetProperty("id").GetInt64(), merge.GetProperty("keptProfileId").GetInt64());
        Assert.Equal(walkIn.GetProperty("id").GetInt64(), merge.GetProperty("mergedProfileId").GetInt64());
        Assert.Equal("phone", merge.GetProperty("identifierType").GetString());
    }

    [Fact]
    public async Task Two_new_customers_merged_within_one_batch_leave_one_profile_and_the_merged_id_still_resolves()
    {
        var b = await NewBrandAsync();
        await SendAsync(b,
            new { type = "identify", anonymousId = "kiosk-1", traits = new { phone = "13900000031", city = "Ningbo" } },
            new { type = "identify", userId = "u-31", traits = new { email = "thirty-one@example.com" } },
            new { type = "identify", userId = "u-31", traits = new { phone = "139 0000 0031" } });

        var customer = await LookupAsync(b.Test.Client, "phone", "13900000031", p => p.GetProperty("eventCount").GetInt64() == 3);
        Assert.Contains(("anonymous_id", "kiosk-1"), Identifiers(customer));
        Assert.Contains(("user_id", "u-31"), Identifiers(customer));
        Assert.Equal("Ningbo", customer.GetProperty("traits").GetProperty("city").GetString());
        var merge = Assert.Single((await b.Test.Client.GetAsync("/api/v1/identity/merges").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Equal(customer.GetProperty("id").GetInt64(), merge.GetProperty("keptProfileId").GetInt64());
        var mergedAway = await b.Test.Client.GetAsync($"/api/v1/profiles/{merge.GetProperty("mergedProfileId").GetInt64()}").ReadAsync<JsonElement>();
        Assert.Equal(customer.GetProperty("id").GetInt64(), mergedAway.GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task A_device_shared_by_a_family_does_not_collapse_the_family_into_one_customer()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "track", userId = "mum", @event = "Signed Up", context = new { device = new { id = "family-ipad" } } });
        await LookupAsync(b.Test.Client, "user_id", "mum");
        await SendAsync(b, new { type = "track", userId = "son", @event = "Signed Up", context = new { device = new { id = "family-ipad" } } });

        var son = await LookupAsync(b.Test.Client, "user_id", "son");
        var mum = await LookupAsync(b.Test.Client, "user_id", "mum");
        Assert.NotEqual(mum.GetProperty("id").GetInt64(), son.GetProperty("id").GetInt64());
        Assert.Equal(1, son.GetProperty("eventCount").GetInt64());
        Assert.DoesNotContain(("user_id", "son"), Identifiers(mum));

        var conflicts = await b.Test.Client.GetAsync("/api/v1/identity/conflicts").ReadAsync<JsonElement>();
        var conflict = Assert.Single(conflicts.GetProperty("items").EnumerateArray());
        Assert.Equal(("device_id", "family-ipad", "merge_not_allowed"),
            (conflict.GetProperty("identifierType").GetString(), conflict.GetProperty("identifierValue").GetString(), conflict.GetProperty("reason").GetString()));
    }

    [Fact]
    public async Task Browsing_on_a_familys_shared_device_stays_with_whoever_was_browsing()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "identify", userId = "mum", anonymousId = "install-mum", context = new { device = new { id = "family-ipad" } } });
        var mum = await LookupAsync(b.Test.Client, "user_id", "mum");
        await SendAsync(b, new { type = "screen", anonymousId = "install-son", name = "Home", context = new { device = new { id = "family-ipad" } } });

        var son = await LookupAsync(b.Test.Client, "anonymous_id", "install-son");
        Assert.NotEqual(mum.GetProperty("id").GetInt64(), son.GetProperty("id").GetInt64());
        await SendAsync(b, new { type = "identify", userId = "son", anonymousId = "install-son", context = new { device = new { id = "family-ipad" } } });
        son = await LookupAsync(b.Test.Client, "user_id", "son", p => p.GetProperty("eventCount").GetInt64() == 2);
        Assert.Contains(("anonymous_id", "install-son"), Identifiers(son));
        mum = await LookupAsync(b.Test.Client, "user_id", "mum");
        Assert.Equal([("anonymous_id", "install-mum"), ("device_id", "family-ipad"), ("user_id", "mum")], Identifiers(mum).Order());
        Assert.Empty((await b.Test.Client.GetAsync("/api/v1/identity/merges").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task A_brand_may_let_device_ids_link_again()
    {
        var b = await NewBrandAsync();
        var types = await b.Test.Client.GetAsync("/api/v1/identity/types").ReadAsync<List<JsonElement>>();
        Assert.False(types.Single(t => t.GetProperty("name").GetString() == "device_id").GetProperty("links").GetBoolean());
        var edited = types.Select(t => JsonSerializer.Deserialize<Dictionary<string, object>>(t.GetRawText())!).ToList();
        edited.Single(t => t["name"].ToString() == "device_id").Remove("links");
        await b.Test.Client.PutAsJsonAsync("/api/v1/identity/types", edited).ReadAsync<JsonElement>();

        await SendAsync(b,
            new { type = "identify", userId = "solo", anonymousId = "install-1", context = new { device = new { id = "own-phone" } } },
            new { type = "screen", anonymousId = "install-2", name = "Home", context = new { device = new { id = "own-phone" } } });

        var profile = await LookupAsync(b.Test.Client, "user_id", "solo", p => p.GetProperty("eventCount").GetInt64() == 2);
        Assert.Contains(("anonymous_id", "install-2"), Identifiers(profile));
    }

    [Fact]
    public async Task An_identifier_claimed_by_several_people_is_flagged_as_an_anomaly()
    {
        var b = await NewBrandAsync();
        foreach (var member in new[] { "grandma", "dad", "daughter" })
            await SendAsync(b, new { type = "track", userId = member, @event = "Product Viewed", context = new { device = new { id = "living-room-tv" } } });
        await LookupAsync(b.Test.Client, "user_id", "daughter");

        var anomalies = await b.Test.Client.GetAsync("/api/v1/identity/anomalies?sharedBy=3").ReadAsync<JsonElement>();
        var shared = Assert.Single(anomalies.GetProperty("sharedIdentifiers").EnumerateArray());
        Assert.Equal(("device_id", "living-room-tv", 3), (shared.GetProperty("type").GetString(), shared.GetProperty("value").GetString(), shared.GetProperty("profiles").GetInt32()));
    }

    [Fact]
    public async Task The_status_shows_identity_resolution_catching_up_with_ingestion()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "identify", userId = "status-1" });
        await LookupAsync(b.Test.Client, "user_id", "status-1");
        for (var i = 0; i < 100; i++)
        {
            var status = await b.Test.Client.GetAsync("/api/v1/identity/status").ReadAsync<JsonElement>();
            if (status.GetProperty("eventsBehind").GetInt64() == 0) return;
            await Task.Delay(100);
        }
        Assert.Fail("The projector did not catch up.");
    }

    [Fact]
    public async Task Blocked_values_are_not_identifiers()
    {
        var b = await NewBrandAsync();
        await SendAsync(b,
            new { type = "identify", userId = "a-real-one", anonymousId = "anonymous", traits = new { phone = "13911112222" } },
            new { type = "identify", userId = "another-one", anonymousId = "anonymous", traits = new { phone = "13933334444" } });

        var first = await LookupAsync(b.Test.Client, "user_id", "a-real-one");
        var second = await LookupAsync(b.Test.Client, "user_id", "another-one");
        Assert.NotEqual(first.GetProperty("id").GetInt64(), second.GetProperty("id").GetInt64());
        Assert.DoesNotContain(Identifiers(first), i => i.Item1 == "anonymous_id");
    }

    [Fact]
    public async Task The_latest_trait_by_event_time_wins_even_when_it_arrives_first()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "identify", userId = "u-t", timestamp = "2026-06-01T00:00:00Z", traits = new { city = "Shenzhen" } });
        await LookupAsync(b.Test.Client, "user_id", "u-t");
        await SendAsync(b, new { type = "identify", userId = "u-t", timestamp = "2026-01-01T00:00:00Z", traits = new { city = "Beijing", gender = "f" } });

        var profile = await LookupAsync(b.Test.Client, "user_id", "u-t", p => p.GetProperty("eventCount").GetInt64() == 2);
        Assert.Equal("Shenzhen", profile.GetProperty("traits").GetProperty("city").GetString());
        Assert.Equal("f", profile.GetProperty("traits").GetProperty("gender").GetString());
    }

    [Fact]
    public async Task Staff_without_pii_read_see_masked_phones_and_emails()
    {
        var b = await NewBrandAsync();
        await SendAsync(b, new { type = "identify", userId = "u-p", traits = new { phone = "13812345678", email = "li.na@example.com", name = "李娜" } });
        await LookupAsync(b.Test.Client, "user_id", "u-p");

        using var analyst = app.ClientWithKey(await app.NewKeyAsync("analyst", b.Test.Slug));
        var masked = await LookupAsync(analyst, "user_id", "u-p");
        Assert.Contains(("phone", "+86138****5678"), Identifiers(masked));
        Assert.Contains(("email", "l***@example.com"), Identifiers(masked));
        Assert.Equal("李**", masked.GetProperty("traits").GetProperty("name").GetString());
        Assert.DoesNotContain("13812345678", masked.GetRawText());
    }

    [Fact]
    public async Task Another_brands_key_cannot_find_the_customer()
    {
        var a = await NewBrandAsync();
        var other = await NewBrandAsync();
        await SendAsync(a, new { type = "identify", userId = "secret-customer" });
        var profile = await LookupAsync(a.Test.Client, "user_id", "secret-customer");

        await other.Test.Client.GetAsync("/api/v1/profiles/lookup?type=user_id&value=secret-customer").ProblemAsync(404, ProblemTypes.NotFound);
        await other.Test.Client.GetAsync($"/api/v1/profiles/{profile.GetProperty("id").GetInt64()}").ProblemAsync(404, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task A_brand_can_read_the_tills_user_id_as_a_member_number_so_app_and_store_histories_join()
    {
        var b = await NewBrandAsync();
        var types = await b.Test.Client.GetAsync("/api/v1/identity/types").ReadAsync<List<JsonElement>>();
        var edited = types.Select(t => t.GetProperty("name").GetString() switch
        {
            "user_id" => Replace(t, ["userId?context.channel!=pos"]),
            "member_no" => Replace(t, ["traits.member_no", "userId?context.channel=pos"]),
            _ => JsonSerializer.Deserialize<Dictionary<string, object>>(t.GetRawText())!,
        }).ToList();
        await b.Test.Client.PutAsJsonAsync("/api/v1/identity/types", edited).ReadAsync<JsonElement>();

        await SendAsync(b,
            new { type = "identify", userId = "U100", traits = new { member_no = "M1000", phone = "13800001000" } },
            new { type = "track", userId = "M1000", @event = "Checked In", context = new { channel = "pos" } });

        var profile = await LookupAsync(b.Test.Client, "member_no", "M1000", p => p.GetProperty("eventCount").GetInt64() == 2);
        Assert.Contains(("user_id", "U100"), Identifiers(profile));
        Assert.DoesNotContain(("user_id", "M1000"), Identifiers(profile));
    }

    private static Dictionary<string, object> Replace(JsonElement type, string[] paths)
    {
        var copy = JsonSerializer.Deserialize<Dictionary<string, object>>(type.GetRawText())!;
        copy["paths"] = paths;
        return copy;
    }

    [Fact]
    public async Task WeChat_unionid_in_the_context_identifies_the_customer_across_mini_programs()
    {
        var b = await NewBrandAsync();
        await SendAsync(b,
            new { type = "track", anonymousId = "openid-a", @event = "Product Viewed", context = new { wechat = new { appId = "wx1", openid = "openid-a", unionid = "union-1" } } },
            new { type = "track", anonymousId = "openid-b", @event = "Product Viewed", context = new { wechat = new { appId = "wx2", openid = "openid-b", unionid = "union-1" } } });

        var profile = await LookupAsync(b.Test.Client, "unionid", "union-1", p => p.GetProperty("eventCount").GetInt64() == 2);
        Assert.Contains(("openid", "openid-a"), Identifiers(profile));
        Assert.Contains(("openid", "openid-b"), Identifiers(profile));
    }

    [Fact]
    public async Task A_value_that_cannot_be_normalised_is_a_validation_error_on_lookup()
    {
        var b = await NewBrandAsync();
        var problem = await b.Test.Client.GetAsync("/api/v1/profiles/lookup?type=phone&value=not-a-phone").ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(problem.GetProperty("errors").TryGetProperty("value", out _));
    }
}

public sealed class IdentityResolutionTestsOnSqlite(SqliteApp app) : IdentityResolutionTests(app), IClassFixture<SqliteApp>;

public sealed class IdentityResolutionTestsOnPostgres(PostgresApp app) : IdentityResolutionTests(app), IClassFixture<PostgresApp>;
