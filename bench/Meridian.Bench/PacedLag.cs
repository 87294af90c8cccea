using System.Net;
using System.Text;

namespace Meridian.Bench;

/// <summary>
/// The lag at a steady, known load instead of at saturation: after resolution has caught up, <c>Product Viewed</c> tracks
/// for known members (fresh message ids, so each is new work for identity resolution) are sent at a fixed rate in
/// batches of 100, with <see cref="ProfileLagProbe"/> running. At full ingest load the lag is only the projector's
/// backlog; this shows what a profile costs to follow behaviour when the server keeps up.
/// </summary>
internal static class PacedLag
{
    private const int Batch = 100;

    public static async Task<LagResult> RunAsync(ServerProcess server, string brand, string writeKey, IReadOnlyList<string> userIds, int eventsPerSecond,
        TimeSpan duration, CancellationToken ct)
    {
        using var http = IngestBench.WriteKeyClient(server, writeKey, 4);
        var random = new Random(DemoEvents.Seed);
        await using var probe = ProfileLagProbe.Start(server, brand, writeKey, ct);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds((double)Batch / eventsPerSecond));
        var until = DateTime.UtcNow + duration;
        var sends = new List<Task>();
        while (DateTime.UtcNow < until && await timer.WaitForNextTickAsync(ct))
        {
            var items = Enumerable.Range(0, Batch).Select(_ =>
                $"{{\"type\":\"track\",\"event\":\"Product Viewed\",\"userId\":\"{userIds[random.Next(userIds.Count)]}\",\"messageId\":\"paced-{Guid.NewGuid():N}\",\"context\":{{\"channel\":\"app\"}},\"properties\":{{\"sku\":\"SKU-{random.Next(1000)}\"}}}}");
            var body = new StringContent($"{{\"batch\":[{string.Join(',', items)}]}}", Encoding.UTF8, "application/json");
            sends.Add(SendAsync(http, body, ct));
        }
        await Task.WhenAll(sends);
        return await probe.StopAsync();
    }

    private static async Task SendAsync(HttpClient http, HttpContent body, CancellationToken ct)
    {
        using var _ = body;
        using var response = await http.PostAsync(IngestBench.Path, body, ct);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"POST {IngestBench.Path} at a paced rate answered {(int)response.StatusCode}");
    }
}
