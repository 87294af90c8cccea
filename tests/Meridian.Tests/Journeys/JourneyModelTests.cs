using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Journeys;

/// <summary>Journeys as staff edit them: validation on save naming the node at fault, versions, pause, resume and stop.</summary>
public abstract class JourneyModelTests(JourneysApp app)
{
    private static object Api(object[] nodes, object[] edges, string start = "first") => new { trigger = new { type = "api" }, start, nodes, edges };

    private async Task<JsonElement> RefusedAsync(JourneysTestBrand b, object graph) =>
        await b.Client.PostAsJsonAsync("/api/v1/journeys", new { name = "Bad " + Guid.NewGuid().ToString("N")[..6], graph }).ProblemAsync(400, "/problems/validation");

    private static string[] Errors(JsonElement problem, string key) =>
        problem.GetProperty("errors").TryGetProperty(key, out var e) ? e.EnumerateArray().Select(x => x.GetString()!).ToArray() : [];

    [Fact]
    public async Task Saving_a_graph_with_an_edge_to_no_node_answers_400_naming_the_node()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var problem = await RefusedAsync(b, Api([new { id = "first", type = "wait", duration = "1h" }], [new { from = "first", to = "nowhere" }]));
        Assert.Contains(Errors(problem, "graph.nodes.first"), m => m.Contains("'nowhere', which is no node", StringComparison.Ordinal));
        Assert.Contains("nodes.first", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Saving_a_graph_with_an_unreachable_node_answers_400_naming_it()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var problem = await RefusedAsync(b, Api([new { id = "first", type = "exit" }, new { id = "island", type = "exit" }], []));
        Assert.Contains(Errors(problem, "graph.nodes.island"), m => m.Contains("Not reachable", StringComparison.Ordinal));
        Assert.Empty(Errors(problem, "graph.nodes.first"));
    }

    [Fact]
    public async Task Saving_a_cycle_without_a_wait_answers_400_and_a_cycle_through_a_wait_is_accepted()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        object[] nodes = [new { id = "first", type = "add_tag", tagId = 1 }, new { id = "second", type = "remove_tag", tagId = 1 }];
        var problem = await RefusedAsync(b, Api(nodes, [new { from = "first", to = "second" }, new { from = "second", to = "first" }]));
        Assert.Contains(problem.GetProperty("errors").EnumerateObject(), e => e.Name.StartsWith("graph.nodes.", StringComparison.Ordinal)
            && e.Value.EnumerateArray().Any(m => m.GetString()!.Contains("cycle with no wait", StringComparison.Ordinal)));

        object[] withWait = [.. nodes, new { id = "pause", type = "wait", duration = "7d" }];
        await b.Client.PostAsJsonAsync("/api/v1/journeys", new
        {
            name = "Weekly", graph = Api(withWait, [new { from = "first", to = "second" }, new { from = "second", to = "pause" }, new { from = "pause", to = "first" }]),
        }).ReadAsync<JsonElement>();
    }

    [Fact]
    public async Task Saving_nodes_with_missing_configuration_answers_400_naming_each()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        object[] nodes =
        [
            new { id = "first", type = "send_message", channel = "sms" },
            new { id = "later", type = "wait" },
            new { id = "coupon", type = "issue_coupon" },
            new { id = "ab", type = "split", branches = new[] { new { name = "a", percent = 60 }, new { name = "b", percent = 30 } } },
            new { id = "done", type = "exit" },
        ];
        var problem = await RefusedAsync(b, Api(nodes,
            [new { from = "first", to = "later" }, new { from = "later", to = "coupon" }, new { from = "coupon", to = "ab" }, new { from = "ab", to = "done", on = "a" }]));
        Assert.Contains(Errors(problem, "graph.nodes.first"), m => m.Contains("templateId", StringComparison.Ordinal));
        Assert.Contains(Errors(problem, "graph.nodes.later"), m => m.Contains("duration", StringComparison.Ordinal));
        Assert.Contains(Errors(problem, "graph.nodes.coupon"), m => m.Contains("templateId", StringComparison.Ordinal));
        Assert.Contains(Errors(problem, "graph.nodes.ab"), m => m.Contains("add up to 100", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Saving_a_condition_with_a_bad_rule_or_a_missing_exit_answers_400_naming_the_node()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        object[] nodes = [new { id = "first", type = "condition", rule = new { trait = "plan", op = "sometimes", value = 1 } }, new { id = "done", type = "exit" }];
        var problem = await RefusedAsync(b, Api(nodes, [new { from = "first", to = "done", on = "true" }]));
        var errors = Errors(problem, "graph.nodes.first");
        Assert.Contains(errors, m => m.StartsWith("rule ", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("'false' exit leads nowhere", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Running_instances_finish_on_their_version_while_new_entries_start_on_the_new_one()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync("versions-1");
        var other = await b.CustomerAsync("versions-2");
        object V(string then) => new
        {
            trigger = new { type = "api" }, reentry = "every_time", start = "hold",
            nodes = new object[] { new { id = "hold", type = "wait", duration = "1h" }, new { id = then, type = "exit" } },
            edges = new[] { new { from = "hold", to = then } },
        };
        var journey = await b.PublishedAsync(V("old_end"));
        var first = (await b.EnterAsync(journey, customer)).GetProperty("instanceId").GetInt64();
        await b.UntilAtAsync(journey, first, "hold", "waiting");

        await b.Client.PutAsJsonAsync($"/api/v1/journeys/{journey}", new { name = "Versions", graph = V("new_end") }).ReadAsync<JsonElement>();
        var published = await b.Client.PostAsync($"/api/v1/journeys/{journey}/publish", null).ReadAsync<JsonElement>();
        Assert.Equal(2, published.GetProperty("version").GetInt32());
        var second = (await b.EnterAsync(journey, other)).GetProperty("instanceId").GetInt64();
        await b.UntilAtAsync(journey, second, "hold", "waiting");

        app.Advance(TimeSpan.FromHours(1));
        var old = await b.UntilStateAsync(journey, first, "completed");
        var @new = await b.UntilStateAsync(journey, second, "completed");
        Assert.Equal(1, old.GetProperty("version").GetInt32());
        Assert.Equal(["hold:passed", "old_end:exited"], JourneysTestBrand.Path(old));
        Assert.Equal(2, @new.GetProperty("version").GetInt32());
        Assert.Equal(["hold:passed", "new_end:exited"], JourneysTestBrand.Path(@new));
        var v1 = await b.Client.GetAsync($"/api/v1/journeys/{journey}/versions/1").ReadAsync<JsonElement>();
        Assert.Equal("old_end", v1.GetProperty("graph").GetProperty("nodes")[1].GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_paused_journey_holds_its_timers_and_lets_nobody_in_until_resumed_and_a_stopped_one_ends_its_instances()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync("pause-1");
        var late = await b.CustomerAsync("pause-2");
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "api" }, start = "hold",
            nodes = new object[] { new { id = "hold", type = "wait", duration = "1h" }, new { id = "again", type = "wait", duration = "1d" }, new { id = "end", type = "exit" } },
            edges = new[] { new { from = "hold", to = "again" }, new { from = "again", to = "end" } },
        });
        var instance = (await b.EnterAsync(journey, customer)).GetProperty("instanceId").GetInt64();
        await b.UntilAtAsync(journey, instance, "hold", "waiting");

        var paused = await b.Client.PostAsync($"/api/v1/journeys/{journey}/pause", null).ReadAsync<JsonElement>();
        Assert.Equal("paused", paused.GetProperty("status").GetString());
        var refused = await b.Client.PostAsJsonAsync($"/api/v1/journeys/{journey}/entries", new { profileId = late }).ProblemAsync(409, "/problems/business-rule");
        Assert.Contains("paused", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        app.Advance(TimeSpan.FromHours(2));
        await Task.Delay(500);
        Assert.Equal("hold", (await b.InstanceAsync(journey, instance)).GetProperty("currentNode").GetString());

        await b.Client.PostAsync($"/api/v1/journeys/{journey}/resume", null).ReadAsync<JsonElement>();
        await b.UntilAtAsync(journey, instance, "again", "waiting");

        await b.Client.PostAsync($"/api/v1/journeys/{journey}/stop", null).ReadAsync<JsonElement>();
        var stopped = await b.InstanceAsync(journey, instance);
        Assert.Equal("stopped", stopped.GetProperty("state").GetString());
        app.Advance(TimeSpan.FromDays(2));
        await Task.Delay(300);
        Assert.Equal("again", (await b.InstanceAsync(journey, instance)).GetProperty("currentNode").GetString());
        await b.Client.PostAsync($"/api/v1/journeys/{journey}/resume", null).ProblemAsync(409, "/problems/business-rule");
    }

    [Fact]
    public async Task Another_brands_journey_is_not_found()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var other = await JourneysTestBrand.CreateAsync(app);
        var journey = await b.PublishedAsync(new { trigger = new { type = "api" }, start = "end", nodes = new[] { new { id = "end", type = "exit" } } });
        await other.Client.GetAsync($"/api/v1/journeys/{journey}").ProblemAsync(404, "/problems/not-found");
        await other.Client.PostAsync($"/api/v1/journeys/{journey}/pause", null).ProblemAsync(404, "/problems/not-found");
    }
}

public sealed class JourneyModelTestsOnSqlite(JourneysSqliteApp app) : JourneyModelTests(app), IClassFixture<JourneysSqliteApp>;

public sealed class JourneyModelTestsOnPostgres(JourneysPostgresApp app) : JourneyModelTests(app), IClassFixture<JourneysPostgresApp>;
