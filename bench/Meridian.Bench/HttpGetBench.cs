using System.Net;
using System.Net.Http.Headers;

namespace Meridian.Bench;

/// <summary>
/// An authenticated GET of a trivial endpoint over real HTTP: what every request pays before doing any work
/// (Kestrel, authentication, tenant scope, rate limiter, authorization, one EF Core query, JSON).
/// </summary>
internal static class HttpGetBench
{
    public const string Path = "/api/v1/brands";

    public static async Task<LoadResult> RunAsync(ServerProcess server, BenchOptions options, CancellationToken ct)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency, UseCookies = false })
        {
            BaseAddress = server.BaseAddress,
            DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", ServerProcess.AdminKey) },
        };

        // A load of 401s would measure the wrong thing fast: check once that the key works.
        using (var first = await http.GetAsync(Path, ct))
        {
            if (first.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"GET {Path} answered {(int)first.StatusCode}: {await first.Content.ReadAsStringAsync(ct)}");
        }

        return await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, async _ =>
        {
            using var response = await http.GetAsync(Path, ct);
            // Read the whole body: a client is not served until it has it.
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.StatusCode == HttpStatusCode.OK;
        }, ct);
    }
}
