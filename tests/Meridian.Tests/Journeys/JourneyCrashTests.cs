using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Offers;
using Npgsql;

namespace Meridian.Tests.Journeys;

/// <summary>
/// Real server processes on one PostgreSQL: a node killed (SIGKILL) with timers pending loses none of them: they fire when
/// the servers are back (two nodes), once each; and timers falling due while both nodes run are taken by either, every
/// step run once and every coupon issued once.
/// </summary>
public sealed class JourneyCrashTests
{
    private const string AdminKey = TwoNodes.AdminKey;
    private const int Customers = 300;

    [Fact]
    public async Task Timers_pending_when_the_server_is_killed_fire_once_each_after_restart_on_two_nodes()
    {
        var database = await PostgresServer.CreateDatabaseAsync("journeycrash");
        Dictionary<string, string> Settings(string node) => new()
        {
            ["Meridian:Database:Provider"] = "Postgres", ["Meridian:Database:ConnectionString"] = database, ["Meridian:Bootstrap:AdminApiKey"] = AdminKey,
            ["Meridian:RateLimit:PermitsPerSecond"] = "100000", ["Meridian:RateLimit:Burst"] = "100000",
            ["Meridian:Journeys:NodeName"] = node, ["Meridian:Journeys:Lease"] = "00:00:05", ["Meridian:Journeys:PollInterval"] = "00:00:00.100",
            ["Meridian:Journeys:BatchSize"] = "20",
        };

        long journey, template;
        var first = ServerProcess.Start(Settings("node-a"));
        await using (first)
        {
            await first.WaitUntilReadyAsync();
            using var api = Client(first);
            var source = await api.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
            using var tracker = new HttpClient { BaseAddress = first.BaseAddress };
            tracker.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes(source.GetProperty("writeKey").GetString() + ":")));
            var customers = await OffersTestBrand.CustomersAsync(
                async batch => await tracker.PostAsJsonAsync("/v1/batch", new { batch }).ReadAsync<JsonElement>(), api, Customers, "crash", TwoNodeClaimTests.ProfilesAsync(database));
            template = (await api.PostAsJsonAsync("/api/v1/offers/templates", new { name = "Welcome 10%", kind = "percent_off", value = 10 }).ReadAsync<JsonElement>())
                .GetProperty("id").GetInt64();
            var created = await api.PostAsJsonAsync("/api/v1/journeys", new
            {
                name = "Crash",
                graph = new
                {
                    trigger = new { type = "api" }, reentry = "every_time", start = "hold",
                    nodes = new object[] { new { id = "hold", type = "wait", duration = "1h" }, new { id = "coupon", type = "issue_coupon", templateId = template }, new { id = "end", type = "exit" } },
                    edges = new[] { new { from = "hold", to = "coupon" }, new { from = "coupon", to = "end" } },
                },
            }).ReadAsync<JsonElement>();
            journey = created.GetProperty("id").GetInt64();
            await api.PostAsync($"/api/v1/journeys/{journey}/publish", null).ReadAsync<JsonElement>();
            await api.PostAsJsonAsync($"/api/v1/journeys/{journey}/entries", new { profileIds = customers }).ReadAsync<JsonElement>();
            await UntilAsync(database, $"SELECT count(*) FROM journey_instances WHERE journey_id = {journey} AND state = 1", Customers, "every customer waiting");

            first.Kill();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }
        Assert.Equal(0, await CountAsync(database, $"SELECT count(*) FROM offer_coupons WHERE template_id = {template}"));
        // The hour passes while no server runs: every timer is overdue when the servers come back.
        await ExecuteAsync(database, $"UPDATE journey_instances SET due_at = now() - interval '1 second' WHERE journey_id = {journey}");

        await using var a = ServerProcess.Start(Settings("node-a2"));
        await using var b = ServerProcess.Start(Settings("node-b"));
        await Task.WhenAll(a.WaitUntilReadyAsync(), b.WaitUntilReadyAsync());
        await UntilAsync(database, $"SELECT count(*) FROM journey_instances WHERE journey_id = {journey} AND state = 2", Customers, "every overdue instance completed");

        // The same customers again (every entry is new: a fresh Idempotency-Key), their timers falling due while both nodes run.
        using (var api = Client(a))
        {
            var again = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/journeys/{journey}/entries")
            {
                Content = JsonContent.Create(new { profileIds = await ProfileIdsAsync(database, journey) }),
            };
            await api.SendAsync(again).ReadAsync<JsonElement>();
        }
        await UntilAsync(database, $"SELECT count(*) FROM journey_instances WHERE journey_id = {journey} AND state = 1", Customers, "the second entries waiting");
        await ExecuteAsync(database, $"UPDATE journey_instances SET due_at = now() WHERE journey_id = {journey} AND state = 1");
        await UntilAsync(database, $"SELECT count(*) FROM journey_instances WHERE journey_id = {journey} AND state = 2", 2 * Customers, "every instance completed");

        Assert.Equal(2 * Customers, await CountAsync(database, $"SELECT count(*) FROM offer_coupons WHERE template_id = {template}"));
        Assert.Equal(2 * Customers, await CountAsync(database, $"SELECT count(DISTINCT issue_key) FROM offer_coupons WHERE template_id = {template}"));
        Assert.Equal(6 * Customers, await CountAsync(database, $"SELECT count(*) FROM journey_steps WHERE journey_id = {journey}"));
        Assert.Equal(6 * Customers, await CountAsync(database, $"SELECT count(DISTINCT (instance_id, node)) FROM journey_steps WHERE journey_id = {journey}"));
        // Which node fires which batch (of 20) is up to timing: on a quiet machine one may take them all before the other
        // polls. What holds either way is above: every step ran once and every coupon was issued once.
    }

    private static async Task<long[]> ProfileIdsAsync(string database, long journey)
    {
        await using var db = new NpgsqlConnection(database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT DISTINCT profile_id FROM journey_instances WHERE journey_id = {journey}", db);
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
        return [.. ids];
    }

    private static async Task ExecuteAsync(string database, string sql)
    {
        await using var db = new NpgsqlConnection(database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }

    private static HttpClient Client(ServerProcess node)
    {
        var client = new HttpClient { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        client.DefaultRequestHeaders.Add("Meridian-Brand", "demo");
        return client;
    }

    private static async Task UntilAsync(string database, string sql, long expected, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        long seen;
        while ((seen = await CountAsync(database, sql)) != expected)
        {
            Assert.True(DateTime.UtcNow < deadline, $"never saw {what}: {seen} of {expected}");
            await Task.Delay(200);
        }
    }

    private static async Task<long> CountAsync(string database, string sql) => await ScalarAsync<long>(database, sql);

    private static async Task<T> ScalarAsync<T>(string database, string sql)
    {
        await using var db = new NpgsqlConnection(database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(sql, db);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
