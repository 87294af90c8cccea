using System.Data.Common;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Ingestion.Import;
using Meridian.Profiles.Identity;

namespace Meridian.Bench;

/// <summary>What the identity run measured: quality against the truth, lag under load, lookups, and the server's memory.</summary>
internal sealed record IdentityResult(
    IdentityScore Score, LagResult Lag, IReadOnlyList<(int Rate, LagResult Lag)> PacedLag, LoadResult Lookup, LoadResult SingleLookup,
    IReadOnlyList<(int Rate, LoadResult Load)> PacedLookup, LoadResult SettledLookup, IReadOnlyList<(int Rate, LoadResult Load)> SettledPacedLookup, long Events, long FailedRequests, long ImportedRows, TimeSpan Ingest,
    TimeSpan Resolved, long IdleRssBytes, long PeakRssBytes);

/// <summary>
/// ID-Mapping on the whole demo data set, as a brand would run it: each brand's identifier rules set through
/// <c>PUT /api/v1/identity/types</c>, its events sent through <c>POST /v1/batch</c> (with <see cref="ProfileLagProbe"/>
/// measuring the lag meanwhile), its store exports imported through <c>POST /api/v1/imports</c>, then, once
/// <c>GET /api/v1/identity/status</c> says nothing is behind, the profiles scored against <c>truth.jsonl</c>
/// (<see cref="IdentityTruth"/>) and looked up by identifier (<see cref="LookupBench"/>).
/// </summary>
internal static class IdentityBench
{
    public static readonly string[] Brands = ["demo", "demo-outlet"];
    public static readonly (string Brand, string File)[] EventFiles = [("demo", "events-demo.jsonl"), ("demo-outlet", "events-demo-outlet.jsonl")];
    public static readonly (string Kind, string File)[] PosExports = [("customers", "customers-pos.csv"), ("orders", "orders-pos.csv")];
    private static readonly string[] LookedUpTypes = ["user_id", "member_no", "phone", "email"];
    private const int LookupSample = 10_000;

    /// <summary>
    /// The demo's rules: the defaults (device ids, which families share, do not link), except that a user id is an
    /// account id only from the app, the mini program and the web; at the till (<c>context.channel=pos</c>) and in the
    /// stores' exports (imported rows carry no channel, so they are told by the importer's <c>context.library.name</c>)
    /// it is a member number.
    /// </summary>
    public static IReadOnlyList<IdentifierType> Rules()
    {
        var types = DefaultIdentifierTypes.For(0);
        types.Single(t => t.Name == "user_id").Paths = ["userId?context.channel=app", "userId?context.channel=mini_program", "userId?context.channel=web"];
        var member = types.Single(t => t.Name == "member_no");
        member.Paths = [.. member.Paths, "userId?context.channel=pos", $"userId?context.library.name={ImportReader.Library}"];
        return types;
    }

    public static async Task<IdentityResult> RunAsync(ServerProcess server, DemoEvents demo, BenchOptions options, Func<CancellationToken, Task<DbConnection>> open, CancellationToken ct)
    {
        var rules = Rules();
        var sources = new Dictionary<string, (long PosSource, string WriteKey)>();
        foreach (var brand in Brands)
        {
            using var admin = server.AdminClient(brand);
            await EnsureAsync(await admin.PutAsJsonAsync("/api/v1/identity/types",
                rules.Select(t => new { t.Name, t.Priority, t.MaxPerProfile, t.Normalizer, t.Paths, t.BlockedValues, t.Links }), ct), HttpStatusCode.OK, ct);
            var (_, writeKey) = await IngestBench.CreateSourceAsync(server, brand, "app", ct);
            var (pos, _) = await IngestBench.CreateSourceAsync(server, brand, "pos", ct);
            sources[brand] = (pos, writeKey);
        }

        await using var memory = RssSampler.Start(server.Pid);
        var started = Stopwatch.GetTimestamp();
        long events = 0, failed = 0;
        TimeSpan ingest;
        LagResult lag;
        await using (var probe = ProfileLagProbe.Start(server, Brands[0], sources[Brands[0]].WriteKey, ct))
        {
            foreach (var (brand, file) in EventFiles)
            {
                Console.WriteLine($"  {brand}: POST {IngestBench.Path} {file}, {options.IngestBatch} per request, {options.IngestConcurrency} clients, lag probe running");
                var results = await IngestBench.SendAsync(server, sources[brand].WriteKey, demo.FileBatches(file, options.IngestBatch), options.IngestConcurrency, ct);
                events += results.Sum(r => r.Answered);
                failed += results.Sum(r => r.Failed);
            }
            ingest = Stopwatch.GetElapsedTime(started);
            Console.WriteLine($"  {events:N0} events in {ingest.TotalSeconds:0.0} s; waiting for the lag probes to show in their profiles");
            lag = await probe.StopAsync();
        }

        long imported = 0;
        foreach (var brand in Brands)
        {
            using var admin = server.AdminClient(brand);
            foreach (var (kind, file) in PosExports)
            {
                Console.WriteLine($"  {brand}: POST /api/v1/imports {file}");
                imported += await ImportAsync(admin, kind, sources[brand].PosSource, Path.Combine(demo.Folder, file), ct);
            }
        }
        Console.WriteLine("  waiting for GET /api/v1/identity/status to say nothing is behind");
        await WaitResolvedAsync(server, ct);
        var resolved = Stopwatch.GetElapsedTime(started);
        var peak = await memory.StopAsync();

        Console.WriteLine("  scoring the profiles against truth.jsonl");
        var score = await IdentityTruth.ScoreAsync(demo, rules, open, ct);
        Console.WriteLine($"  lookups: {LookupBench.Path}, {options.Concurrency} workers");
        var sample = await SampleAsync(open, Brands[0], ct);
        var members = sample.Where(i => i.Type == "user_id").Select(i => i.Value).ToList();
        var paced = new List<(int, LagResult)>();
        foreach (var rate in options.PacedRates)
        {
            Console.WriteLine($"  lag at a steady {rate:N0} events/s for {options.Measured.TotalSeconds:0} s");
            paced.Add((rate, await PacedLag.RunAsync(server, Brands[0], sources[Brands[0]].WriteKey, members, rate, options.Measured, ct)));
        }
        // The demo data and the truth scored above are garbage now: collected here, not during the client's measures.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var lookup = await LookupBench.RunAsync(server, Brands[0], sample, options.Concurrency, options, ct);
        Console.WriteLine($"  lookups: {LookupBench.Path}, one worker");
        var single = await ClientPausesAsync("one worker", () => LookupBench.RunAsync(server, Brands[0], sample, 1, options, ct));
        await HoldAsync(server, ct);
        async Task<List<(int, LoadResult)>> SteadyLookupsAsync(string when)
        {
            var runs = new List<(int, LoadResult)>();
            foreach (var rate in options.LookupRates)
            {
                Console.WriteLine($"  lookups: {LookupBench.Path}, a steady {rate:N0}/s{when}");
                runs.Add((rate, await LookupBench.RunPacedAsync(server, Brands[0], sample, rate, options, ct)));
            }
            return runs;
        }
        var pacedLookups = await SteadyLookupsAsync("");
        // The lookups above run while the database still digests the load (PostgreSQL: autovacuum of the event tables
        // and checkpoints, seen in the one-client window at 100,000 customers): once more after that work is done.
        Console.WriteLine($"  lookups: {LookupBench.Path}, one worker, once the database has settled (vacuum, analyze, checkpoint)");
        await SettleAsync(open, ct);
        var settled = await ClientPausesAsync("one worker, settled", () => LookupBench.RunAsync(server, Brands[0], sample, 1, options, ct));
        // The steady rates once more on the settled database: whether their tail is the database digesting the load.
        var settledPaced = await SteadyLookupsAsync(", database settled");
        return new IdentityResult(score, lag, paced, lookup, single, pacedLookups, settled, settledPaced, events, failed, imported, ingest, resolved, memory.FirstBytes, peak);
    }

    /// <summary>
    /// <c>MERIDIAN_BENCH_HOLD=S</c>: leaves the server as the load left it for S seconds after the one-client lookups,
    /// to be studied from outside (a probe, dotnet-counters, dotnet-gcdump) before the run goes on.
    /// </summary>
    private static async Task HoldAsync(ServerProcess server, CancellationToken ct)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("MERIDIAN_BENCH_HOLD"), out var seconds) || seconds <= 0) return;
        Console.WriteLine($"  holding the server (pid {server.Pid}, {server.BaseAddress}) for {seconds} s (MERIDIAN_BENCH_HOLD)");
        await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
    }

    /// <summary>
    /// Does now what the database would do in the background after a load: PostgreSQL vacuums and analyzes, then
    /// checkpoints (needs a superuser; skipped otherwise); SQLite checkpoints its write-ahead log.
    /// </summary>
    /// <summary>
    /// Runs a measure and prints how long the bench's own garbage collections paused it: the client shares this process
    /// with everything the run holds, and a pause there shows as the server's latency.
    /// </summary>
    private static async Task<T> ClientPausesAsync<T>(string what, Func<Task<T>> measure)
    {
        var (paused, gen0, gen1, gen2) = (GC.GetTotalPauseDuration(), GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var result = await measure();
        Console.WriteLine($"  lookups, {what}: the bench's own GC paused {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds:N1} ms " +
            $"({GC.CollectionCount(0) - gen0} gen0, {GC.CollectionCount(1) - gen1} gen1, {GC.CollectionCount(2) - gen2} gen2 collections)");
        return result;
    }

    private static async Task SettleAsync(Func<CancellationToken, Task<DbConnection>> open, CancellationToken ct)
    {
        await using var db = await open(ct);
        string[] statements = db is Npgsql.NpgsqlConnection ? ["VACUUM (ANALYZE)", "CHECKPOINT"] : ["PRAGMA wal_checkpoint(TRUNCATE)"];
        foreach (var sql in statements)
        {
            try
            {
                await Sql.ExecuteAsync(db, sql, ct, timeoutSeconds: 1800);
            }
            catch (Npgsql.PostgresException ex) when (ex.SqlState == "42501")
            {
                Console.WriteLine($"  {sql} skipped: {ex.MessageText}");
            }
        }
    }

    /// <summary>Uploads a store export and waits for the import worker to finish it; returns the rows it accepted.</summary>
    private static async Task<long> ImportAsync(HttpClient admin, string kind, long sourceId, string path, CancellationToken ct)
    {
        await using var file = File.OpenRead(path);
        using var content = new StreamContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        var created = await EnsureAsync(await admin.PostAsync($"/api/v1/imports?kind={kind}&sourceId={sourceId}&fileName={Path.GetFileName(path)}", content, ct), HttpStatusCode.Accepted, ct);
        var id = created.GetProperty("id").GetInt64();
        while (true)
        {
            var import = await EnsureAsync(await admin.GetAsync($"/api/v1/imports/{id}", ct), HttpStatusCode.OK, ct);
            switch (import.GetProperty("status").GetString())
            {
                case "completed":
                    return import.GetProperty("accepted").GetInt64();
                case "failed":
                    throw new InvalidOperationException($"import {id} of {path} failed: {import.GetProperty("error")}");
            }
            await Task.Delay(250, ct);
        }
    }

    private static async Task WaitResolvedAsync(ServerProcess server, CancellationToken ct)
    {
        using var admin = server.AdminClient(Brands[0]);
        while ((await EnsureAsync(await admin.GetAsync("/api/v1/identity/status", ct), HttpStatusCode.OK, ct)).GetProperty("eventsBehind").GetInt64() > 0)
            await Task.Delay(250, ct);
    }

    /// <summary>Up to <see cref="LookupSample"/> identifiers of the brand that a front end would look a customer up by, at random.</summary>
    private static async Task<List<(string Type, string Value)>> SampleAsync(Func<CancellationToken, Task<DbConnection>> open, string brand, CancellationToken ct)
    {
        var all = new List<(string Type, string Value)>();
        await using var connection = await open(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT i.type, i.value FROM profile_identifiers i JOIN brands b ON b.id = i.tenant_id WHERE b.slug = @brand ORDER BY i.id";
        command.AddParameter("@brand", brand);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            if (LookedUpTypes.Contains(reader.GetString(0))) all.Add((reader.GetString(0), reader.GetString(1)));
        }
        var random = new Random(DemoEvents.Seed);
        return all.Count <= LookupSample ? all : [.. random.GetItems(all.ToArray(), LookupSample)];
    }

    private static async Task<JsonElement> EnsureAsync(HttpResponseMessage response, HttpStatusCode expected, CancellationToken ct)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            if (response.StatusCode != expected)
                throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.PathAndQuery} answered {(int)response.StatusCode}: {body}");
            return JsonDocument.Parse(body).RootElement.Clone();
        }
    }
}
