using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;

namespace Meridian.Tests.Audiences;

/// <summary>
/// Random rules over random customers: the engine's answer (SQL on the real database) must equal a plain in-memory
/// reference evaluator's, rule after rule; and the materialised membership, kept current as events arrive, tags change
/// and the clock moves windows past events, must equal the reference's after every step, with one entry or exit event
/// per change. A failure prints the seed and the rule.
/// </summary>
public abstract class SegmentReferenceTests(AudiencesApp app)
{
    private static readonly string[] Cities = ["Hangzhou", "Shanghai", "Beijing"];
    private static readonly string[] Categories = ["shoes", "bags"];
    private static readonly string[] TagNames = ["VIP", "Complained"];

    private sealed record Event(string Name, string Category, int Total, double DaysAgo);

    /// <summary>A customer as the reference sees them: traits as sent (a JSON value or absent), identifiers, tags, events.</summary>
    private sealed record Customer(string UserId, Dictionary<string, JsonNode?> Traits, bool Phone, bool Email, HashSet<string> Tags, List<Event> Events,
        double FirstSeenDaysAgo)
    {
        /// <summary>The lifecycle stage the profile API shows (computed in C# by OrderFacts), which the SQL must agree with.</summary>
        public string Stage { get; set; } = "";

        public IEnumerable<Event> Orders => Events.Where(e => e.Name == "Order Completed");
    }

    private sealed record Rule(JsonNode Json, Func<Customer, bool> Holds);

    [Theory]
    [InlineData(11)]
    [InlineData(23)]
    [InlineData(37)]
    [InlineData(53)]
    [InlineData(71)]
    public async Task Random_rules_over_random_customers_select_exactly_whom_the_reference_evaluator_selects(int seed)
    {
        var random = new Random(seed);
        var (b, customers, ids, _) = await DataAsync(random, 14);
        Assert.True(customers.Select(c => c.Stage).Distinct().Count() >= 3, $"seed {seed}: the data should span lifecycle stages");

        for (var n = 0; n < 40; n++)
        {
            var rule = RandomRule(random, 0);
            var expected = customers.Where(rule.Holds).Select(c => ids[c.UserId]).Order().ToList();
            // The estimate counts over the whole brand, with conditions written as sets (a tag as the list of its profiles).
            var estimate = await b.Test.Client.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = rule.Json }).ReadAsync<JsonElement>();
            Assert.True(expected.Count == estimate.GetProperty("size").GetInt64(),
                $"seed {seed}, rule {n}: {rule.Json.ToJsonString()}\nestimated {estimate.GetProperty("size").GetInt64()}, expected {expected.Count}");
            var created = await b.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = $"r{n}", rule = rule.Json }).ReadAsync<JsonElement>();
            var members = await b.Test.Client.GetAsync($"/api/v1/segments/{created.GetProperty("id").GetInt64()}/members?limit=200").ReadAsync<JsonElement>();
            var actual = members.GetProperty("items").EnumerateArray().Select(i => i.GetInt64()).Order().ToList();
            Assert.True(expected.SequenceEqual(actual),
                $"seed {seed}, rule {n}: {rule.Json.ToJsonString()}\nexpected [{string.Join(", ", expected)}]\nactual   [{string.Join(", ", actual)}]");
        }
    }

    [Theory]
    [InlineData(5)]
    [InlineData(17)]
    [InlineData(29)]
    public async Task Materialised_membership_follows_new_events_tag_changes_and_lapsing_windows_exactly_as_the_reference_with_one_event_per_change(int seed)
    {
        var random = new Random(seed);
        var (b, customers, ids, tagIds) = await DataAsync(random, 10);
        var client = b.Test.Client;
        var segments = new List<(long Id, Rule Rule)>();
        for (var n = 0; n < 12; n++)
        {
            var rule = RandomRule(random, 0);
            if (n >= 9)
            {
                // A segment of segments: in one saved earlier (or not), and a rule of its own.
                var named = segments[random.Next(segments.Count)];
                var include = random.Next(2) == 0;
                var membership = new JsonObject { ["segment"] = named.Id };
                var own = rule;
                rule = new Rule(new JsonObject { ["and"] = new JsonArray(include ? membership : new JsonObject { ["not"] = membership }, own.Json) },
                    c => named.Rule.Holds(c) == include && own.Holds(c));
            }
            var created = await client.PostAsJsonAsync("/api/v1/segments", new { name = $"m{n}", rule = rule.Json }).ReadAsync<JsonElement>();
            segments.Add((created.GetProperty("id").GetInt64(), rule));
        }
        var previous = segments.ToDictionary(s => s.Id, _ => new List<long>());
        var mark = 0L;

        async Task CheckAsync(string step)
        {
            await AudiencesApp.CaughtUpAsync(client);
            foreach (var c in customers)
                c.Stage = (await ProfileTestBrand.LookupAsync(client, "user_id", c.UserId)).GetProperty("computed").GetProperty("lifecycleStage").GetString()!;
            var changes = await app.OutboxAsync(b.Test.Id, mark, "segment.entered", "segment.exited");
            foreach (var (id, rule) in segments)
            {
                var expected = customers.Where(rule.Holds).Select(c => ids[c.UserId]).Order().ToList();
                var segment = await client.GetAsync($"/api/v1/segments/{id}").ReadAsync<JsonElement>();
                var page = await client.GetAsync($"/api/v1/segments/{id}/members?limit=200").ReadAsync<JsonElement>();
                var actual = page.GetProperty("items").EnumerateArray().Select(i => i.GetInt64()).Order().ToList();
                var context = $"seed {seed}, {step}, segment {id}: {rule.Json.ToJsonString()}";
                Assert.True(segment.GetProperty("status").GetString() == "ready", context);
                Assert.True(expected.SequenceEqual(actual), $"{context}\nexpected [{string.Join(", ", expected)}]\nactual   [{string.Join(", ", actual)}]");
                List<long> Emitted(string type) => [.. changes.Where(m => m.Type == type && m.Payload.GetProperty("segmentId").GetInt64() == id)
                    .Select(m => m.Payload.GetProperty("profileId").GetInt64()).Order()];
                Assert.True(expected.Except(previous[id]).Order().SequenceEqual(Emitted("segment.entered")), $"{context}: entered events");
                Assert.True(previous[id].Except(expected).Order().SequenceEqual(Emitted("segment.exited")), $"{context}: exited events");
                previous[id] = expected;
            }
            mark = changes.Select(m => m.Id).DefaultIfEmpty(mark).Max();
        }

        await CheckAsync("saved");
        for (var round = 0; round < 2; round++)
        {
            var now = app.Clock.GetUtcNow().UtcDateTime;
            var messages = new List<object>();
            foreach (var c in customers.OrderBy(_ => random.Next()).Take(4))
            {
                var e = new Event(random.Next(3) == 0 ? "Product Viewed" : "Order Completed", Categories[random.Next(Categories.Length)], random.Next(0, 500),
                    random.Next(0, 40) + 0.5 + c.Events.Count * 0.01);
                c.Events.Add(e);
                messages.Add(Track(c, e, now, $"new-{round}-{c.UserId}"));
            }
            await b.SendAsync([.. messages]);
            foreach (var c in customers)
                await ProfileTestBrand.LookupAsync(client, "user_id", c.UserId, p => p.GetProperty("eventCount").GetInt64() == 1 + c.Events.Count);
            await CheckAsync($"round {round}, new events");

            foreach (var c in customers.OrderBy(_ => random.Next()).Take(4))
            {
                var tag = TagNames[random.Next(TagNames.Length)];
                if (c.Tags.Remove(tag)) (await client.DeleteAsync($"/api/v1/tags/{tagIds[tag]}/profiles/{ids[c.UserId]}")).EnsureSuccessStatusCode();
                else
                {
                    c.Tags.Add(tag);
                    await client.PutAsync($"/api/v1/tags/{tagIds[tag]}/profiles/{ids[c.UserId]}", null).ReadAsync<JsonElement>();
                }
            }
            await CheckAsync($"round {round}, tags changed");

            // Whole days keep every event (half a day off whole days) clear of a window's edge.
            var days = random.Next(1, 25);
            app.Clock.Advance(TimeSpan.FromDays(days));
            foreach (var c in customers)
                for (var i = 0; i < c.Events.Count; i++) c.Events[i] = c.Events[i] with { DaysAgo = c.Events[i].DaysAgo + days };
            await CheckAsync($"round {round}, {days} days later");
        }
    }

    /// <summary>A brand with random customers, their events and tags; returns them, their profile ids and the tags' ids.</summary>
    private async Task<(ProfileTestBrand Brand, List<Customer> Customers, Dictionary<string, long> Ids, Dictionary<string, long> Tags)> DataAsync(Random random, int count)
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var customers = Enumerable.Range(0, count).Select(i => RandomCustomer(random, i)).ToList();
        await SendAsync(b, customers, app.Clock.GetUtcNow().UtcDateTime);
        var ids = new Dictionary<string, long>();
        foreach (var c in customers)
        {
            var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", c.UserId, p => p.GetProperty("eventCount").GetInt64() == 1 + c.Events.Count);
            ids[c.UserId] = profile.GetProperty("id").GetInt64();
            c.Stage = profile.GetProperty("computed").GetProperty("lifecycleStage").GetString()!;
        }
        var tagIds = new Dictionary<string, long>();
        foreach (var tag in TagNames)
        {
            var tagId = tagIds[tag] = (await b.Test.Client.PostAsJsonAsync("/api/v1/tags", new { name = tag }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
            foreach (var c in customers.Where(c => c.Tags.Contains(tag))) await b.Test.Client.PutAsync($"/api/v1/tags/{tagId}/profiles/{ids[c.UserId]}", null).ReadAsync<JsonElement>();
        }
        return (b, customers, ids, tagIds);
    }

    private static Customer RandomCustomer(Random random, int i)
    {
        var traits = new Dictionary<string, JsonNode?>();
        if (random.Next(4) > 0) traits["city"] = Cities[random.Next(Cities.Length)];
        switch (random.Next(4))
        {
            case 0: break;
            case 1: traits["age"] = "unknown"; break; // a string where others hold numbers
            default: traits["age"] = random.Next(16, 70); break;
        }
        if (random.Next(3) > 0) traits["vip"] = random.Next(2) == 0;
        // Recent, fading and old customers (by their index), with now and then an event from another time: every lifecycle
        // stage turns up (new, active, at risk, lapsed, won back).
        (int From, int To)[] periods = [(0, 30), (95, 175), (185, 300)];
        int DaysAgo() => random.Next(5) == 0 ? random.Next(0, 300) : random.Next(periods[i % 3].From, periods[i % 3].To);
        // Half a day off whole days keeps every event clear of a window's edge however long the test runs; a customer's
        // events differ by some minutes more, so no two orders are exactly a threshold apart (where SQL's arithmetic on
        // times and .NET's could round differently).
        var events = Enumerable.Range(0, random.Next(0, 5)).Select(j => new Event(
            random.Next(3) == 0 ? "Product Viewed" : "Order Completed", Categories[random.Next(Categories.Length)], random.Next(0, 500), DaysAgo() + 0.5 + j * 0.01)).ToList();
        var firstSeen = events.Select(e => e.DaysAgo).Append(DaysAgo() + 0.5).Max() + random.Next(0, 20);
        return new Customer($"ref-{i}", traits, random.Next(2) == 0, random.Next(2) == 0, [.. TagNames.Where(_ => random.Next(3) == 0)], events, firstSeen);
    }

    private static JsonObject Track(Customer c, Event e, DateTime now, string orderId) => new()
    {
        ["type"] = "track", ["userId"] = c.UserId, ["event"] = e.Name, ["timestamp"] = now.AddDays(-e.DaysAgo).ToString("O"),
        ["properties"] = new JsonObject { ["order_id"] = orderId, ["category"] = e.Category, ["total"] = e.Total, ["currency"] = "CNY" },
    };

    private static async Task SendAsync(ProfileTestBrand b, List<Customer> customers, DateTime now)
    {
        var messages = new List<object>();
        var order = 0;
        foreach (var c in customers)
        {
            var traits = new JsonObject();
            foreach (var (name, value) in c.Traits) traits[name] = value?.DeepClone();
            if (c.Phone) traits["phone"] = $"1390000{customers.IndexOf(c):D4}";
            if (c.Email) traits["email"] = $"{c.UserId}@example.com";
            messages.Add(new JsonObject { ["type"] = "identify", ["userId"] = c.UserId, ["traits"] = traits, ["timestamp"] = now.AddDays(-c.FirstSeenDaysAgo).ToString("O") });
            messages.AddRange(c.Events.Select(e => Track(c, e, now, $"o-{order++}")));
        }
        await b.SendAsync([.. messages]);
    }

    private static Rule RandomRule(Random random, int depth)
    {
        var pick = random.Next(depth >= 2 ? 7 : 10);
        switch (pick)
        {
            case 0: return TraitRule(random);
            case 1:
            {
                var type = random.Next(2) == 0 ? "phone" : "email";
                return new Rule(new JsonObject { ["identifier"] = type }, c => type == "phone" ? c.Phone : c.Email);
            }
            case 2:
            {
                var tag = TagNames[random.Next(TagNames.Length)];
                return new Rule(new JsonObject { ["tag"] = tag }, c => c.Tags.Contains(tag));
            }
            case 3:
            {
                var (op, value) = (Ops[random.Next(Ops.Length)], random.Next(0, 4));
                return new Rule(new JsonObject { ["computed"] = "order_count", ["op"] = op, ["value"] = value }, c => Compare(c.Orders.Count(), op, value));
            }
            case 4:
            {
                var days = random.Next(1, 60);
                var within = random.Next(2) == 0;
                return new Rule(new JsonObject { ["computed"] = "last_order_at", ["op"] = within ? "within_days" : "not_within_days", ["value"] = days },
                    c => c.Orders.Any(o => o.DaysAgo < days) == within);
            }
            case 5: return EventRule(random);
            case 6:
            {
                string[] stages = ["unknown", "new", "active", "at_risk", "lapsed", "won_back"];
                var (a, b) = (stages[random.Next(stages.Length)], stages[random.Next(stages.Length)]);
                return random.Next(3) switch
                {
                    0 => new Rule(new JsonObject { ["computed"] = "lifecycle_stage", ["op"] = "eq", ["value"] = a }, c => c.Stage == a),
                    1 => new Rule(new JsonObject { ["computed"] = "lifecycle_stage", ["op"] = "ne", ["value"] = a }, c => c.Stage != a),
                    _ => new Rule(new JsonObject { ["computed"] = "lifecycle_stage", ["op"] = "in", ["value"] = new JsonArray(a, b) }, c => c.Stage == a || c.Stage == b),
                };
            }
            case 7 or 8:
            {
                var parts = Enumerable.Range(0, random.Next(2, 4)).Select(_ => RandomRule(random, depth + 1)).ToList();
                var and = pick == 7;
                return new Rule(new JsonObject { [and ? "and" : "or"] = new JsonArray([.. parts.Select(p => p.Json)]) },
                    c => and ? parts.All(p => p.Holds(c)) : parts.Any(p => p.Holds(c)));
            }
            default:
            {
                var inner = RandomRule(random, depth + 1);
                return new Rule(new JsonObject { ["not"] = inner.Json }, c => !inner.Holds(c));
            }
        }
    }

    private static readonly string[] Ops = ["eq", "ne", "gt", "gte", "lt", "lte"];

    private static Rule TraitRule(Random random)
    {
        var trait = new[] { "city", "age", "vip" }[random.Next(3)];
        var op = new[] { "eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists", "not_exists" }[random.Next(10)];
        JsonNode? value = trait switch
        {
            "city" => Cities[random.Next(Cities.Length)],
            "age" => random.Next(3) == 0 ? "unknown" : random.Next(16, 70),
            _ => random.Next(2) == 0,
        };
        if (op == "contains") value = trait == "city" ? Cities[random.Next(Cities.Length)][1..4] : "nk";
        // Booleans only compare equal or not, and lists hold strings and numbers.
        if (trait == "vip" && op is "gt" or "gte" or "lt" or "lte" or "in") op = "eq";
        if (op == "in") value = new JsonArray(value!.DeepClone(), trait == "age" ? JsonValue.Create(30) : JsonValue.Create("Shanghai"));
        var json = new JsonObject { ["trait"] = trait, ["op"] = op };
        if (op is not ("exists" or "not_exists")) json["value"] = value!.DeepClone();
        return new Rule(json, c => ReferenceTrait(c.Traits.GetValueOrDefault(trait), op, value));
    }

    /// <summary>The documented semantics: a comparison holds only for a present value of the compared kind.</summary>
    private static bool ReferenceTrait(JsonNode? actual, string op, JsonNode? value)
    {
        if (op == "exists") return actual is not null;
        if (op == "not_exists") return actual is null;
        if (actual is null) return false;
        if (op == "in") return value!.AsArray().Any(v => Equal(actual, v!));
        if (op == "eq") return Equal(actual, value!);
        if (op == "ne") return !Equal(actual, value!);
        var a = actual.AsValue();
        if (op == "contains") return a.GetValueKind() == JsonValueKind.String && a.GetValue<string>().Contains(value!.GetValue<string>(), StringComparison.Ordinal);
        var v = value!.AsValue();
        if (v.GetValueKind() == JsonValueKind.Number)
            return a.GetValueKind() == JsonValueKind.Number && Compare(Num(a), op, Num(v));
        return a.GetValueKind() == JsonValueKind.String && Compare(string.CompareOrdinal(a.GetValue<string>(), v.GetValue<string>()), op, 0);
    }

    private static decimal Num(JsonNode n) => decimal.Parse(n.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    private static bool Equal(JsonNode actual, JsonNode value)
    {
        var (a, v) = (actual.AsValue(), value.AsValue());
        return (a.GetValueKind(), v.GetValueKind()) switch
        {
            (JsonValueKind.Number, JsonValueKind.Number) => Num(a) == Num(v),
            (JsonValueKind.String, JsonValueKind.String) => a.GetValue<string>() == v.GetValue<string>(),
            (JsonValueKind.True or JsonValueKind.False, JsonValueKind.True or JsonValueKind.False) => a.GetValueKind() == v.GetValueKind(),
            _ => false,
        };
    }

    private static Rule EventRule(Random random)
    {
        var name = random.Next(3) == 0 ? "Product Viewed" : "Order Completed";
        var category = random.Next(3) == 0 ? null : Categories[random.Next(Categories.Length)];
        int? within = random.Next(2) == 0 ? null : random.Next(1, 60);
        var json = new JsonObject { ["event"] = name };
        if (category is not null) json["where"] = new JsonArray(new JsonObject { ["property"] = "category", ["op"] = "eq", ["value"] = category });
        if (within is { } w) json["withinDays"] = w;
        var op = Ops[random.Next(Ops.Length)];
        var sum = random.Next(3) == 0;
        var threshold = sum ? random.Next(0, 800) : random.Next(0, 3);
        json[sum ? "sum" : "count"] = sum ? new JsonObject { ["property"] = "total", ["op"] = op, ["value"] = threshold } : new JsonObject { ["op"] = op, ["value"] = threshold };
        return new Rule(json, c =>
        {
            var matching = c.Events.Where(e => e.Name == name && (category is null || e.Category == category) && (within is null || e.DaysAgo < within)).ToList();
            return Compare(sum ? matching.Sum(e => e.Total) : matching.Count, op, threshold);
        });
    }

    private static bool Compare(decimal a, string op, decimal b) => op switch
    {
        "eq" => a == b, "ne" => a != b, "gt" => a > b, "gte" => a >= b, "lt" => a < b, _ => a <= b,
    };
}

public sealed class SegmentReferenceTestsOnSqlite(AudiencesSqliteApp app) : SegmentReferenceTests(app), IClassFixture<AudiencesSqliteApp>;

public sealed class SegmentReferenceTestsOnPostgres(AudiencesPostgresApp app) : SegmentReferenceTests(app), IClassFixture<AudiencesPostgresApp>;
