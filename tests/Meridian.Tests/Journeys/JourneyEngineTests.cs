using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Journeys.Data;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Offers;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Journeys;

/// <summary>The engine: flow nodes, actions with their keys, retries and failure edges, triggers, re-entry and statistics.</summary>
public abstract class JourneyEngineTests(JourneysApp app)
{
    private static object[] Edges(params (string From, string To, string On)[] edges) => edges.Select(e => (object)new { from = e.From, to = e.To, on = e.On }).ToArray();

    [Fact]
    public async Task A_condition_on_the_live_profile_branches_tags_sets_traits_and_a_goal_counts_as_conversion()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var gold = await b.CustomerAsync("cond-gold", new { plan = "gold" });
        var basic = await b.CustomerAsync("cond-basic", new { plan = "basic" });
        var tag = (await b.Client.PostAsJsonAsync("/api/v1/tags", new { name = "VIP" }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "is_gold",
            nodes = new object[]
            {
                new { id = "is_gold", type = "condition", rule = new { trait = "plan", op = "eq", value = "gold" } },
                new { id = "vip", type = "add_tag", tagId = tag },
                new { id = "won", type = "goal" },
                new { id = "nudge", type = "update_trait", trait = "nudged", value = true },
                new { id = "end", type = "exit" },
            },
            edges = Edges(("is_gold", "vip", "true"), ("is_gold", "nudge", "false"), ("vip", "won", "next"), ("nudge", "end", "next")),
        });
        var goldRun = (await b.EnterAsync(journey, gold)).GetProperty("instanceId").GetInt64();
        var basicRun = (await b.EnterAsync(journey, basic)).GetProperty("instanceId").GetInt64();

        Assert.Equal(["is_gold:passed", "vip:passed", "won:converted"], JourneysTestBrand.Path(await b.UntilStateAsync(journey, goldRun, "converted")));
        Assert.Equal(["is_gold:passed", "nudge:passed", "end:exited"], JourneysTestBrand.Path(await b.UntilStateAsync(journey, basicRun, "completed")));
        var tags = await b.Client.GetAsync($"/api/v1/profiles/{gold}/tags").ReadAsync<JsonElement>();
        Assert.Equal("VIP", Assert.Single(tags.EnumerateArray()).GetProperty("name").GetString());
        Assert.Empty((await b.Client.GetAsync($"/api/v1/profiles/{basic}/tags").ReadAsync<JsonElement>()).EnumerateArray());
        var profile = await b.Client.GetAsync($"/api/v1/profiles/{basic}").ReadAsync<JsonElement>();
        Assert.True(profile.GetProperty("traits").GetProperty("nudged").GetBoolean());

        var stats = await b.StatsAsync(journey);
        Assert.Equal(2, stats.GetProperty("entered").GetInt64());
        Assert.Equal(1, stats.GetProperty("converted").GetInt64());
        Assert.Equal(0.5, stats.GetProperty("conversionRate").GetDouble());
        var nodes = stats.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("node").GetString()!);
        Assert.Equal(2, nodes["is_gold"].GetProperty("entered").GetInt64());
        Assert.Equal(2, nodes["is_gold"].GetProperty("passed").GetInt64());
        Assert.Equal(1, nodes["vip"].GetProperty("passed").GetInt64());
        Assert.Equal(1, nodes["won"].GetProperty("entered").GetInt64());
        Assert.Equal(0, nodes["won"].GetProperty("failed").GetInt64());
    }

    [Fact]
    public async Task A_random_split_records_each_customers_branch_and_sends_them_down_it()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var customers = await new OffersTestBrand(b.Brand) { App = app }.CustomersAsync(40, "split");
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "ab",
            nodes = new object[]
            {
                new { id = "ab", type = "split", branches = new[] { new { name = "a", percent = 70 }, new { name = "b", percent = 30 } } },
                new { id = "end_a", type = "exit" }, new { id = "end_b", type = "exit" },
            },
            edges = Edges(("ab", "end_a", "a"), ("ab", "end_b", "b")),
        });
        var entered = await b.Client.PostAsJsonAsync($"/api/v1/journeys/{journey}/entries", new { profileIds = customers }).ReadAsync<JsonElement>();
        Assert.All(entered.EnumerateArray(), e => Assert.Equal("entered", e.GetProperty("outcome").GetString()));

        var branches = new Dictionary<string, int>();
        foreach (var e in entered.EnumerateArray())
        {
            var instance = await b.UntilStateAsync(journey, e.GetProperty("instanceId").GetInt64(), "completed");
            var branch = instance.GetProperty("context").GetProperty("splits").GetProperty("ab").GetString()!;
            Assert.Equal([$"ab:passed", $"end_{branch}:exited"], JourneysTestBrand.Path(instance));
            Assert.Equal(branch, instance.GetProperty("steps")[0].GetProperty("detail").GetString());
            branches[branch] = branches.GetValueOrDefault(branch) + 1;
        }
        // 40 draws at 70/30: each branch is taken (all on one side has a chance below one in a million).
        Assert.True(branches.GetValueOrDefault("a") > 0 && branches.GetValueOrDefault("b") > 0, string.Join(", ", branches));
    }

    [Fact]
    public async Task A_wait_for_an_event_leaves_by_its_event_exit_when_an_event_passing_its_filter_comes_and_by_its_timeout_otherwise()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var buyer = await b.CustomerAsync("wait-buyer");
        var idle = await b.CustomerAsync("wait-idle");
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "order",
            nodes = new object[]
            {
                new { id = "order", type = "wait_event", @event = "Order Completed", timeout = "2d", where = new[] { new { property = "total", op = "gte", value = 50 } } },
                new { id = "bought", type = "exit" }, new { id = "gave_up", type = "exit" },
            },
            edges = Edges(("order", "bought", "event"), ("order", "gave_up", "timeout")),
        });
        var buyerRun = (await b.EnterAsync(journey, buyer)).GetProperty("instanceId").GetInt64();
        var idleRun = (await b.EnterAsync(journey, idle)).GetProperty("instanceId").GetInt64();
        await b.UntilAtAsync(journey, buyerRun, "order", "waiting");
        await b.UntilAtAsync(journey, idleRun, "order", "waiting");

        // The idle customer's small order does not pass the filter; it is in the log before the buyer's, so once the buyer
        // has moved on it has been seen too.
        await b.Brand.SendAsync(new { type = "track", userId = "wait-idle", @event = "Order Completed", properties = new { order_id = "o-0", total = 10 } });
        await b.Brand.SendAsync(new { type = "track", userId = "wait-buyer", @event = "Order Completed", properties = new { order_id = "o-1", total = 80 } });
        Assert.Equal(["order:passed", "bought:exited"], JourneysTestBrand.Path(await b.UntilStateAsync(journey, buyerRun, "completed")));
        Assert.Equal("waiting", (await b.InstanceAsync(journey, idleRun)).GetProperty("state").GetString());

        app.Advance(TimeSpan.FromDays(2));
        Assert.Equal(["order:passed", "gave_up:exited"], JourneysTestBrand.Path(await b.UntilStateAsync(journey, idleRun, "completed")));
    }

    [Fact]
    public async Task A_tracked_event_with_matching_properties_lets_the_customer_in_once()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var store = await b.CustomerAsync("evt-store");
        var web = await b.CustomerAsync("evt-web");
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "event", @event = "Signed Up", where = new[] { new { property = "channel", op = "eq", value = "store" } } },
            reentry = "once", start = "hold",
            nodes = new object[] { new { id = "hold", type = "wait", duration = "1d" }, new { id = "end", type = "exit" } },
            edges = Edges(("hold", "end", "next")),
        });
        await b.Brand.SendAsync(
            new { type = "track", userId = "evt-store", @event = "Signed Up", properties = new { channel = "store" } },
            new { type = "track", userId = "evt-web", @event = "Signed Up", properties = new { channel = "web" } });
        var entered = await UntilInstancesAsync(b, journey, store, 1);
        Assert.Equal("store", entered[0].GetProperty("context").GetProperty("event").GetProperty("channel").GetString());

        await b.Brand.SendAsync(new { type = "track", userId = "evt-store", @event = "Signed Up", properties = new { channel = "store" } });
        await b.Brand.SendAsync(new { type = "track", userId = "evt-web", @event = "Page Viewed", properties = new { } });
        await WaitForFollowerAsync(b);
        Assert.Single(await b.InstancesAsync(journey, store));
        Assert.Empty(await b.InstancesAsync(journey, web));
    }

    [Fact]
    public async Task Re_entry_once_per_n_days_and_the_entry_limit_keep_customers_out_and_an_idempotency_key_enters_once()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var first = await b.CustomerAsync("reentry-1");
        var second = await b.CustomerAsync("reentry-2");
        var third = await b.CustomerAsync("reentry-3");
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, reentry = "once_per_days", reentryDays = 7, maxEntries = 3, start = "end",
            nodes = new object[] { new { id = "end", type = "exit" } },
        });
        Assert.Equal("entered", (await b.EnterAsync(journey, first, key: "k-1")).GetProperty("outcome").GetString());
        var again = await b.EnterAsync(journey, first, key: "k-1");
        Assert.Equal("already_entered", again.GetProperty("outcome").GetString());
        Assert.Equal("not_eligible", (await b.EnterAsync(journey, first)).GetProperty("outcome").GetString());

        app.Advance(TimeSpan.FromDays(8));
        Assert.Equal("entered", (await b.EnterAsync(journey, first)).GetProperty("outcome").GetString());
        Assert.Equal("entered", (await b.EnterAsync(journey, second)).GetProperty("outcome").GetString());
        Assert.Equal("limit_reached", (await b.EnterAsync(journey, third)).GetProperty("outcome").GetString());
        Assert.Equal("profile_not_found", (await b.EnterAsync(journey, 999_999_999)).GetProperty("outcome").GetString());
        Assert.Equal(3, (await b.InstancesAsync(journey)).Count);
    }

    [Fact]
    public async Task Concurrent_entries_under_different_keys_admit_one_instance_for_once_and_no_more_than_the_entry_limit()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var once = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, reentry = "once", start = "end", nodes = new object[] { new { id = "end", type = "exit" } },
        });
        var customer = await b.CustomerAsync("race-once");
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 16).Select(n => b.EnterAsync(once, customer, key: $"race-{n}")));
        Assert.Equal(1, outcomes.Count(o => o.GetProperty("outcome").GetString() == "entered"));
        Assert.All(outcomes.Where(o => o.GetProperty("outcome").GetString() != "entered"), o => Assert.Equal("not_eligible", o.GetProperty("outcome").GetString()));
        Assert.Single(await b.InstancesAsync(once));

        var limited = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, maxEntries = 3, start = "end", nodes = new object[] { new { id = "end", type = "exit" } },
        });
        var crowd = new List<long>();
        for (var n = 0; n < 10; n++) crowd.Add(await b.CustomerAsync($"race-limit-{n}"));
        var admitted = await Task.WhenAll(crowd.Select(c => b.EnterAsync(limited, c)));
        Assert.Equal(3, admitted.Count(o => o.GetProperty("outcome").GetString() == "entered"));
        Assert.Equal(3, (await b.InstancesAsync(limited)).Count);
    }

    [Fact]
    public async Task A_webhook_step_is_signed_retried_with_backoff_under_one_id_and_a_dead_endpoint_takes_the_failure_edge()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync("hook-1");
        using var receiver = new WebhookReceiver(failFirst: 1);
        var secret = "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        var dead = $"http://127.0.0.1:{PostgresServer.FreePort()}/gone";
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "notify",
            nodes = new object[]
            {
                new { id = "notify", type = "webhook", url = receiver.Url, secret, data = new { campaign = "spring" } },
                new { id = "crm", type = "webhook", url = dead, secret },
                new { id = "done", type = "exit" }, new { id = "fallback", type = "exit" },
            },
            edges = Edges(("notify", "crm", "next"), ("crm", "done", "next"), ("crm", "fallback", "failure")),
        });
        var run = (await b.EnterAsync(journey, customer, new { source = "test" })).GetProperty("instanceId").GetInt64();

        // The first call is answered 503: the step waits a minute (RetryBase) and tries again.
        var retrying = await b.UntilAsync(journey, run, i => i.GetProperty("attempts").GetInt32() == 1, "a retry");
        Assert.Equal("notify", retrying.GetProperty("currentNode").GetString());
        Assert.Empty(receiver.Calls);
        app.Advance(TimeSpan.FromMinutes(1));
        await receiver.WaitForAsync(calls => calls.Count == 1, TimeSpan.FromSeconds(30));
        var call = Assert.Single(receiver.Calls);
        Assert.Equal($"journey:{journey}:i{run}:notify:s0", call.Id);
        var key = Convert.FromBase64String(secret["whsec_".Length..]);
        Assert.Equal("v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{call.Id}.{call.Timestamp}.{call.Body}"))), call.Signature);
        var body = JsonDocument.Parse(call.Body).RootElement;
        Assert.Equal(customer, body.GetProperty("profileId").GetInt64());
        Assert.Equal("spring", body.GetProperty("data").GetProperty("campaign").GetString());
        Assert.Equal("test", body.GetProperty("event").GetProperty("source").GetString());

        // The dead endpoint: tried at once, after 1 minute and after 2 more (MaxAttempts 3), then the failure edge.
        await b.UntilAsync(journey, run, i => i.GetProperty("currentNode").GetString() == "crm" && i.GetProperty("attempts").GetInt32() == 1, "crm's first failure");
        app.Advance(TimeSpan.FromMinutes(1));
        await b.UntilAsync(journey, run, i => i.GetProperty("attempts").GetInt32() == 2, "crm's second failure");
        app.Advance(TimeSpan.FromMinutes(2));
        var done = await b.UntilStateAsync(journey, run, "completed");
        Assert.Equal(["notify:passed", "crm:failed", "fallback:exited"], JourneysTestBrand.Path(done));
        Assert.Contains("could not be reached", done.GetProperty("context").GetProperty("error").GetString(), StringComparison.Ordinal);
        var crm = (await b.StatsAsync(journey)).GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("node").GetString() == "crm");
        Assert.Equal(1, crm.GetProperty("failed").GetInt64());
        Assert.Equal(0, crm.GetProperty("passed").GetInt64());
    }

    [Fact]
    public async Task Wait_until_a_time_of_day_uses_the_brands_time_zone()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        await app.Admin.PatchAsJsonAsync($"/api/v1/brands/{b.Id}", new { timeZone = "Asia/Shanghai" }).ReadAsync<JsonElement>();
        var customer = await b.CustomerAsync("tz-1");
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "morning",
            nodes = new object[] { new { id = "morning", type = "wait_until", time = "09:00" }, new { id = "end", type = "exit" } },
            edges = Edges(("morning", "end", "next")),
        });
        var run = (await b.EnterAsync(journey, customer)).GetProperty("instanceId").GetInt64();
        var waiting = await b.UntilAtAsync(journey, run, "morning", "waiting");
        // 09:00 in Shanghai (UTC+8) is 01:00 UTC: the next one after now.
        var due = waiting.GetProperty("dueAt").GetDateTime();
        var now = app.Clock.GetUtcNow().UtcDateTime;
        Assert.Equal(1, due.Hour);
        Assert.Equal(0, due.Minute);
        Assert.True(due > now && due <= now.AddDays(1), $"{due:O} after {now:O}");
        app.Advance(due - now);
        await b.UntilStateAsync(journey, run, "completed");
    }

    [Fact]
    public async Task An_action_step_run_again_after_a_crash_repeats_no_effect()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync("crash-1");
        var offers = new OffersTestBrand(b.Brand) { App = app };
        var template = (await offers.TemplateAsync(new { name = "Ten off", kind = "percent_off", value = 10 })).GetProperty("id").GetInt64();
        var programme = (await b.Client.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Club", expiry = "after_days", expiryDays = 365 }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var member = (await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programme}/members", new { profileId = customer }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        await b.Client.PostAsJsonAsync("/api/v1/service/agents", new { name = "Ann", queue = "welcome" }).ReadAsync<JsonElement>();
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "coupon",
            nodes = new object[]
            {
                new { id = "coupon", type = "issue_coupon", templateId = template },
                new { id = "points", type = "award_points", points = 50 },
                new { id = "ticket", type = "open_ticket", subject = "Call the new member", queue = "welcome" },
                new { id = "end", type = "exit" },
            },
            edges = Edges(("coupon", "points", "next"), ("points", "ticket", "next"), ("ticket", "end", "next")),
        });
        var run = (await b.EnterAsync(journey, customer)).GetProperty("instanceId").GetInt64();
        await b.UntilStateAsync(journey, run, "completed");

        // As if the node had crashed after the effects but before writing the instance back: every step runs again.
        await using (var scope = app.Services.CreateAsyncScope())
        {
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
            await db.Set<JourneyStep>().Where(s => s.InstanceId == run).ExecuteDeleteAsync();
            await db.Set<JourneyInstance>().Where(i => i.Id == run).ExecuteUpdateAsync(s => s.SetProperty(i => i.CurrentNode, "coupon").SetProperty(i => i.Step, 0)
                .SetProperty(i => i.State, InstanceState.Active).SetProperty(i => i.DueAt, app.Clock.GetUtcNow().UtcDateTime).SetProperty(i => i.FinishedAt, (DateTime?)null));
        }
        app.Advance(TimeSpan.FromSeconds(1));
        var again = await b.UntilStateAsync(journey, run, "completed");
        Assert.Equal(["coupon:passed", "points:passed", "ticket:passed", "end:exited"], JourneysTestBrand.Path(again));

        var coupons = await b.Client.GetAsync($"/api/v1/offers/customers/{customer}/coupons").ReadAsync<JsonElement>();
        Assert.Single(coupons.GetProperty("items").EnumerateArray());
        var balance = await b.Client.GetAsync($"/api/v1/loyalty/members/{member}/balance").ReadAsync<JsonElement>();
        Assert.Equal(50, balance.GetProperty("balance").GetInt64());
        var tickets = await b.Client.GetAsync($"/api/v1/service/tickets?profileId={customer}").ReadAsync<JsonElement>();
        Assert.NotEqual(JsonValueKind.Null, Assert.Single(tickets.GetProperty("items").EnumerateArray()).GetProperty("agentId").ValueKind);
    }

    private static async Task<List<JsonElement>> UntilInstancesAsync(JourneysTestBrand b, long journey, long profile, int count)
    {
        for (var attempt = 0; ; attempt++)
        {
            var found = await b.InstancesAsync(journey, profile);
            if (found.Count >= count) return found;
            Assert.True(attempt < 600, $"profile {profile} entered {found.Count} times, not {count}");
            await Task.Delay(50);
        }
    }

    /// <summary>Lets identity resolution and the event trigger read everything sent so far.</summary>
    private async Task WaitForFollowerAsync(JourneysTestBrand b)
    {
        for (var attempt = 0; attempt < 600; attempt++)
        {
            var status = await b.Client.GetAsync("/api/v1/identity/status").ReadAsync<JsonElement>();
            if (status.GetProperty("eventsBehind").GetInt64() == 0) break;
            await Task.Delay(50);
        }
        await app.Services.GetRequiredService<Meridian.Journeys.Triggers.EventTrigger>().RunOnceAsync(default);
        await Task.Delay(300);
    }
}

public sealed class JourneyEngineTestsOnSqlite(JourneysSqliteApp app) : JourneyEngineTests(app), IClassFixture<JourneysSqliteApp>;

public sealed class JourneyEngineTestsOnPostgres(JourneysPostgresApp app) : JourneyEngineTests(app), IClassFixture<JourneysPostgresApp>;
