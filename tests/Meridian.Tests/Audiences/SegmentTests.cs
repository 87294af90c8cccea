using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;

namespace Meridian.Tests.Audiences;

/// <summary>Segment rules over traits, identifiers, tags, computed traits and events: estimate, save, members, membership, and errors with the path.</summary>
public abstract class SegmentTests(MeridianAppFixture app)
{
    private static readonly DateTime Now = DateTime.UtcNow;

    private static string Ago(int days) => Now.AddDays(-days).ToString("O");

    /// <summary>Four customers: Hangzhou shoe buyer (VIP), Hangzhou browser, Shanghai shopper by email only, Beijing one with no orders.</summary>
    private async Task<(ProfileTestBrand Brand, Dictionary<string, long> Ids)> ShopAsync()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "identify", userId = "ann", traits = new { city = "Hangzhou", age = 34, phone = "13900000601", vip = true } },
            new { type = "identify", userId = "bo", traits = new { city = "Hangzhou", age = 19, phone = "13900000602" } },
            new { type = "identify", userId = "cai", traits = new { city = "Shanghai", age = 45, email = "cai@example.com" } },
            new { type = "identify", userId = "dan", traits = new { city = "Beijing", phone = "13900000604" } },
            Order("ann", "a1", "shoes", 300, 3), Order("ann", "a2", "shoes", 250, 10), Order("ann", "a3", "bags", 90, 60),
            Order("bo", "b1", "shoes", 120, 5), new { type = "track", userId = "bo", @event = "Product Viewed", timestamp = Ago(2), properties = new { category = "shoes" } },
            Order("cai", "c1", "shoes", 800, 40), Order("cai", "c2", "shoes", 700, 45));
        var ids = new Dictionary<string, long>();
        foreach (var user in new[] { "ann", "bo", "cai", "dan" })
            ids[user] = (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", user, p => user == "dan" || p.GetProperty("eventCount").GetInt64() > 1)).GetProperty("id").GetInt64();
        var vip = await b.Test.Client.PostAsJsonAsync("/api/v1/tags", new { name = "VIP" }).ReadAsync<JsonElement>();
        await b.Test.Client.PutAsync($"/api/v1/tags/{vip.GetProperty("id").GetInt64()}/profiles/{ids["ann"]}", null).ReadAsync<JsonElement>();
        return (b, ids);
    }

    private static object Order(string userId, string orderId, string category, int total, int daysAgo) =>
        new { type = "track", userId, @event = "Order Completed", timestamp = Ago(daysAgo), properties = new { order_id = orderId, category, total, currency = "CNY" } };

    private static async Task<(long Size, string Text)> EstimateAsync(HttpClient client, object rule)
    {
        var estimate = await client.PostAsJsonAsync("/api/v1/segments/estimate", new { rule }).ReadAsync<JsonElement>();
        return (estimate.GetProperty("size").GetInt64(), estimate.GetProperty("text").GetString()!);
    }

    private static async Task<List<long>> MembersAsync(HttpClient client, object rule)
    {
        var created = await client.PostAsJsonAsync("/api/v1/segments", new { name = "s-" + Guid.NewGuid().ToString("N")[..8], rule }).ReadAsync<JsonElement>();
        var page = await client.GetAsync($"/api/v1/segments/{created.GetProperty("id").GetInt64()}/members").ReadAsync<JsonElement>();
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetInt64()).Order()];
    }

    [Fact]
    public async Task Trait_identifier_tag_and_computed_conditions_combine_with_and_or_not()
    {
        var (b, ids) = await ShopAsync();
        var c = b.Test.Client;

        Assert.Equal(2, (await EstimateAsync(c, new { trait = "city", op = "eq", value = "Hangzhou" })).Size);
        Assert.Equal([ids["ann"], ids["cai"]], await MembersAsync(c, new { trait = "age", op = "gte", value = 30 }));
        Assert.Equal([ids["ann"], ids["bo"], ids["dan"]], await MembersAsync(c, new { identifier = "phone" }));
        Assert.Equal([ids["ann"]], await MembersAsync(c, new { tag = "VIP" }));
        Assert.Equal([ids["ann"]], await MembersAsync(c, new { trait = "vip", op = "eq", value = true }));
        Assert.Equal([ids["ann"], ids["bo"], ids["cai"]], await MembersAsync(c, new { trait = "city", op = "in", value = new[] { "Shanghai", "Hangzhou" } }));
        Assert.Equal([ids["dan"]], await MembersAsync(c, new { trait = "age", op = "not_exists" }));
        Assert.Equal([ids["ann"], ids["cai"]], await MembersAsync(c, new { computed = "order_count", op = "gte", value = 2 }));
        Assert.Equal([ids["ann"], ids["bo"]], await MembersAsync(c, new { computed = "last_order_at", op = "within_days", value = 7 }));
        Assert.Equal([ids["ann"], ids["bo"]], await MembersAsync(c, new { trait = "city", op = "contains", value = "zhou" }));
        Assert.Equal([ids["ann"], ids["bo"], ids["cai"]], await MembersAsync(c, new { trait = "city", op = "ne", value = "Beijing" }));
        Assert.Equal([ids["ann"], ids["cai"]], await MembersAsync(c, new { trait = "age", op = "ne", value = 19 })); // dan has no age: not "not 19"

        var (size, text) = await EstimateAsync(c, new
        {
            and = new object[]
            {
                new { or = new object[] { new { trait = "city", op = "eq", value = "Hangzhou" }, new { identifier = "email" } } },
                new { not = new { tag = "VIP" } },
            },
        });
        Assert.Equal(2, size); // bo (Hangzhou, not VIP) and cai (email)
        Assert.Equal("(city = \"Hangzhou\" OR has email) AND NOT (has tag \"VIP\")", text);
    }

    [Fact]
    public async Task Event_conditions_count_and_sum_matching_events_within_their_window()
    {
        var (b, ids) = await ShopAsync();
        var c = b.Test.Client;
        var shoesTwiceIn30Days = new
        {
            @event = "Order Completed", where = new[] { new { property = "category", op = "eq", value = "shoes" } },
            count = new { op = "gte", value = 2 }, withinDays = 30,
        };

        Assert.Equal([ids["ann"]], await MembersAsync(c, shoesTwiceIn30Days));
        Assert.Equal([ids["ann"], ids["cai"]], await MembersAsync(c, new { @event = "Order Completed", where = new[] { new { property = "category", op = "eq", value = "shoes" } }, count = new { op = "gte", value = 2 } }));
        Assert.Equal([ids["cai"]], await MembersAsync(c, new { @event = "Order Completed", sum = new { property = "total", op = "gte", value = 1000 } }));
        Assert.Equal([ids["bo"]], await MembersAsync(c, new
        {
            and = new object[]
            {
                new { @event = "Product Viewed", withinDays = 7 },
                new { @event = "Order Completed", where = new[] { new { property = "total", op = "gt", value = 200 } }, withinDays = 7, count = new { op = "eq", value = 0 } },
            },
        }));
        var (_, text) = await EstimateAsync(c, shoesTwiceIn30Days);
        Assert.Equal("event \"Order Completed\" where category = \"shoes\" count ≥ 2 in the last 30 days", text);
    }

    [Fact]
    public async Task A_saved_segment_answers_whether_a_customer_is_in_it_and_a_customer_lists_their_segments()
    {
        var (b, ids) = await ShopAsync();
        var c = b.Test.Client;
        var hangzhou = await c.PostAsJsonAsync("/api/v1/segments", new { name = "Hangzhou", rule = new { trait = "city", op = "eq", value = "Hangzhou" } }).ReadAsync<JsonElement>();
        var buyers = await c.PostAsJsonAsync("/api/v1/segments", new { name = "Buyers", rule = new { computed = "order_count", op = "gte", value = 1 } }).ReadAsync<JsonElement>();
        var hangzhouId = hangzhou.GetProperty("id").GetInt64();

        Assert.True((await c.GetAsync($"/api/v1/segments/{hangzhouId}/members/{ids["bo"]}").ReadAsync<JsonElement>()).GetProperty("member").GetBoolean());
        Assert.False((await c.GetAsync($"/api/v1/segments/{hangzhouId}/members/{ids["cai"]}").ReadAsync<JsonElement>()).GetProperty("member").GetBoolean());
        var ofAnn = await c.GetAsync($"/api/v1/profiles/{ids["ann"]}/segments").ReadAsync<List<JsonElement>>();
        Assert.Equal(["Hangzhou", "Buyers"], ofAnn.Select(s => s.GetProperty("name").GetString()));
        Assert.Equal(2, (await c.GetAsync($"/api/v1/segments/{hangzhouId}").ReadAsync<JsonElement>()).GetProperty("size").GetInt64());

        await b.SendAsync(new { type = "identify", userId = "cai", traits = new { city = "Hangzhou" } });
        await ProfileTestBrand.LookupAsync(c, "user_id", "cai", p => p.GetProperty("traits").GetProperty("city").GetString() == "Hangzhou");
        await AudiencesApp.CaughtUpAsync(c); // the segment's members are materialised: the change shows once maintenance has read it
        Assert.True((await c.GetAsync($"/api/v1/segments/{hangzhouId}/members/{ids["cai"]}").ReadAsync<JsonElement>()).GetProperty("member").GetBoolean());
        var page = await c.GetAsync($"/api/v1/segments/{hangzhouId}/members?limit=2").ReadAsync<JsonElement>();
        Assert.Equal(2, page.GetProperty("items").GetArrayLength());
        var next = await c.GetAsync($"/api/v1/segments/{hangzhouId}/members?limit=2&cursor={page.GetProperty("nextCursor").GetString()}").ReadAsync<JsonElement>();
        Assert.Equal(1, next.GetProperty("items").GetArrayLength());
        Assert.NotEqual(buyers.GetProperty("id").GetInt64(), hangzhouId);
    }

    [Fact]
    public async Task A_segment_exports_its_members_identifiers_masked_without_pii_read_and_two_segments_show_their_overlap()
    {
        var (b, ids) = await ShopAsync();
        var c = b.Test.Client;
        var hangzhou = (await c.PostAsJsonAsync("/api/v1/segments", new { name = "Hangzhou", rule = new { trait = "city", op = "eq", value = "Hangzhou" } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var buyers = (await c.PostAsJsonAsync("/api/v1/segments", new { name = "Repeat buyers", rule = new { computed = "order_count", op = "gte", value = 2 } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

        var csv = await c.GetStringAsync($"/api/v1/segments/{hangzhou}/export?identifiers=phone,user_id");
        Assert.Equal(["profile_id,phone,user_id", $"{ids["ann"]},+8613900000601,ann", $"{ids["bo"]},+8613900000602,bo"], csv.TrimEnd('\n').Split('\n'));
        var marketer = app.ClientWithKey(await app.NewKeyAsync("marketer", b.Test.Slug), b.Test.Slug);
        var masked = (await marketer.GetStringAsync($"/api/v1/segments/{hangzhou}/export?identifiers=phone")).TrimEnd('\n').Split('\n');
        Assert.Equal(3, masked.Length);
        Assert.DoesNotContain("13900000601", masked[1]);
        Assert.StartsWith($"{ids["ann"]},", masked[1]);
        await c.GetAsync($"/api/v1/segments/{hangzhou}/export?identifiers=phone;drop table").ProblemAsync(400, ProblemTypes.Validation);

        var overlap = await c.GetAsync($"/api/v1/segments/overlap?a={hangzhou}&b={buyers}").ReadAsync<JsonElement>();
        Assert.Equal((2, 2, 1), (overlap.GetProperty("sizeA").GetInt64(), overlap.GetProperty("sizeB").GetInt64(), overlap.GetProperty("both").GetInt64()));
    }

    [Fact]
    public async Task An_invalid_rule_gets_400_naming_the_path_of_each_offending_node()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var rule = new object[]
        {
            new { trait = "city", op = "eq", value = "Hangzhou" },
            new { trait = "age", op = "between", value = 3 },
            new { not = new { @event = "Order Completed", count = new { op = "gte", value = "two" } } },
            new { computed = "shoe_size", op = "eq", value = 42 },
        };

        var problem = await b.Test.Client.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = new { and = rule } }).ProblemAsync(400, ProblemTypes.Validation);

        var errors = problem.GetProperty("errors");
        Assert.Equal(["rule.and[1].op", "rule.and[2].not.count.value", "rule.and[3].computed"], errors.EnumerateObject().Select(e => e.Name).Order());
        await b.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = "Broken", rule = new { or = Array.Empty<object>() } }).ProblemAsync(400, ProblemTypes.Validation);
        await b.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = "Two kinds", rule = new { tag = "VIP", trait = "city", op = "exists" } }).ProblemAsync(400, ProblemTypes.Validation);
    }
}

public sealed class SegmentTestsOnSqlite(SqliteApp app) : SegmentTests(app), IClassFixture<SqliteApp>;

public sealed class SegmentTestsOnPostgres(PostgresApp app) : SegmentTests(app), IClassFixture<PostgresApp>;
