using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Npgsql;

namespace Meridian.Tests.Platform;

/// <summary>
/// Two real server processes on one PostgreSQL database share the outbox through leases: every event reaches each
/// subscriber effect (here: a webhook endpoint) exactly once, and both nodes take part in the work.
/// </summary>
public sealed class TwoNodeOutboxTests
{
    [Fact]
    public async Task Two_server_processes_on_one_PostgreSQL_deliver_every_event_exactly_once()
    {
        await using var nodes = await TwoNodes.StartAsync("twonode", node =>
        [
            new("Meridian:Outbox:NodeName", node),
            new("Meridian:Outbox:PollInterval", "00:00:00.050"),
            new("Meridian:Outbox:BatchSize", "10"),
        ]);
        using var receiver = new WebhookReceiver();
        var a = TwoNodes.Client(nodes.A);
        var b = TwoNodes.Client(nodes.B);

        var hook = await a.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url, eventTypes = new[] { "source.created" } }).ReadAsync<JsonElement>();
        var secret = hook.GetProperty("secret").GetString()!;

        const int events = 200;
        await Parallel.ForAsync(0, events, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            var node = i % 2 == 0 ? a : b;
            using var response = await node.PostAsJsonAsync("/api/v1/sources", new { name = $"src-{i}", channel = "pos" }, ct);
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}\n{nodes.Output}");
        });

        await receiver.WaitForAsync(calls => calls.Count >= events, TimeSpan.FromSeconds(60));
        await Task.Delay(1000); // a duplicate, if any, would arrive now

        var calls = receiver.Calls.ToArray();
        Assert.Equal(events, calls.Length);
        Assert.Equal(events, calls.Select(c => c.Id).Distinct().Count());
        var names = calls.Select(c => JsonDocument.Parse(c.Body).RootElement.GetProperty("data").GetProperty("name").GetString()!).Order().ToList();
        Assert.Equal(Enumerable.Range(0, events).Select(i => $"src-{i}").Order().ToList(), names);
        var one = calls[0];
        Assert.Equal("v1," + Meridian.Platform.Webhooks.WebhookSubscriber.Sign(secret, $"{one.Id}.{one.Timestamp}.{one.Body}"), one.Signature);

        await using var db = new NpgsqlConnection(nodes.Database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT delivered_by, count(*), max(attempts) FROM outbox_deliveries WHERE subscriber = 'webhooks' AND status = 1 GROUP BY delivered_by", db);
        var byNode = new Dictionary<string, (long Count, int MaxAttempts)>();
        await using (var reader = await command.ExecuteReaderAsync())
            while (await reader.ReadAsync()) byNode[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt32(2));
        Assert.Equal(events, byNode.Values.Sum(v => v.Count));
        Assert.True(byNode.GetValueOrDefault("node-a").Count > 0 && byNode.GetValueOrDefault("node-b").Count > 0,
            $"both nodes should deliver: {string.Join(", ", byNode.Select(kv => $"{kv.Key}={kv.Value.Count}"))}");
        Assert.All(byNode.Values, v => Assert.Equal(1, v.MaxAttempts)); // no delivery was claimed twice
    }
}
