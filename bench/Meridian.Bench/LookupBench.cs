using System.Net;

namespace Meridian.Bench;

/// <summary>
/// <c>GET /api/v1/profiles/lookup?type=..&amp;value=..</c> over identifiers that exist (a random one per call), C workers:
/// what a front end pays to find the customer in front of it. Divided by the raw select by primary key.
/// </summary>
internal static class LookupBench
{
    public const string Path = "/api/v1/profiles/lookup";

    /// <param name="workers">Closed-loop clients: many to find the throughput, one to see what a single lookup costs when none waits behind another.</param>
    public static async Task<LoadResult> RunAsync(ServerProcess server, string brand, IReadOnlyList<(string Type, string Value)> identifiers, int workers,
        BenchOptions options, CancellationToken ct)
    {
        if (identifiers.Count == 0) throw new InvalidOperationException("no identifiers to look up: identity resolution stored none.");
        var urls = Urls(identifiers);
        using var http = server.AdminClient(brand, workers);
        using (var first = await http.GetAsync(urls[0], ct))
        {
            if (first.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"GET {urls[0]} answered {(int)first.StatusCode}: {await first.Content.ReadAsStringAsync(ct)}");
        }

        var randoms = Enumerable.Range(0, workers).Select(w => new Random(w)).ToArray();
        return await ClosedLoop.RunAsync(workers, options.WarmUp, options.Measured, w => LookUpAsync(http, urls[randoms[w].Next(urls.Length)], ct), ct);
    }

    /// <summary>
    /// Lookups at a steady rate (<see cref="OpenLoop"/>): the latency a front end sees at a known load, where the closed
    /// loop's 16 workers on the server's own 2 cores measure the queue at saturation.
    /// </summary>
    public static async Task<LoadResult> RunPacedAsync(ServerProcess server, string brand, IReadOnlyList<(string Type, string Value)> identifiers, int perSecond,
        BenchOptions options, CancellationToken ct)
    {
        var urls = Urls(identifiers);
        new Random(DemoEvents.Seed).Shuffle(urls);
        using var http = server.AdminClient(brand);
        return await OpenLoop.RunAsync(perSecond, options.WarmUp, options.Measured, n => LookUpAsync(http, urls[n % urls.Length], ct), ct);
    }

    private static string[] Urls(IReadOnlyList<(string Type, string Value)> identifiers) =>
        [.. identifiers.Select(i => $"{Path}?type={i.Type}&value={Uri.EscapeDataString(i.Value)}")];

    private static async ValueTask<bool> LookUpAsync(HttpClient http, string url, CancellationToken ct)
    {
        using var response = await http.GetAsync(url, ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        return response.StatusCode == HttpStatusCode.OK;
    }
}
