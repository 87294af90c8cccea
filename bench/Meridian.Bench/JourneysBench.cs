using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// Journeys, per database: 100,000 instances waiting on timers (seeded with one INSERT ... SELECT into the instances table
/// of a published journey: the engine's state is its rows) and what they cost, the server's resident memory and the
/// database's size; then 10,000 more timers falling due at the same instant (T0): timers fired per second (10,000 over the
/// time from T0 to the last one fired) and each fire's lateness (its step's time minus T0), p50 and p99; and steps per
/// second through a condition on the live profile, a random split, an add-tag action and an exit, for 10,000 instances.
/// </summary>
internal static class JourneysBench
{
    private const string Waiting = "journeys: instances waiting on timers";
    private const string Memory = "… server RSS MB with them (target < 1024)";
    private const string Size = "… database MB";
    private const string Fires = "journeys: timers fired/s, 10,000 due at once (target ≥ 1,000)";
    private const string Lateness = "… lateness p50 ms / p99 ms (target p99 < 2,000)";
    private const string Steps = "journeys: steps/s (condition, split, add tag, exit)";

    public static async Task SqliteAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("meridian-bench-journeys-").FullName;
        try
        {
            var file = Path.Combine(dir, "journeys.db");
            var database = $"Data Source={file}";
            await using var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, database, dir, ct);
            await RunAsync(server, Provider.Sqlite, options, report, async () =>
            {
                var connection = new SqliteConnection(database + ";Pooling=False;Default Timeout=60");
                await connection.OpenAsync(ct);
                return connection;
            }, async _ => new FileInfo(file).Length + (File.Exists(file + "-wal") ? new FileInfo(file + "-wal").Length : 0), ct);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    public static async Task PostgresAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        await using var cluster = await PostgresCluster.StartAsync(ct);
        if (cluster is null)
        {
            report.Note("PostgreSQL: journeys skipped: no server (see PostgreSQL above).");
            return;
        }
        var database = await cluster.CreateDatabaseAsync("bench_journeys", ct);
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, database, Path.GetTempPath(), ct);
        async Task<DbConnection> Open()
        {
            var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return connection;
        }
        await RunAsync(server, Provider.Postgres, options, report, Open, db => Sql.ScalarAsync<long>(db, "SELECT pg_database_size(current_database())", ct), ct);
    }

    private static async Task RunAsync(ServerProcess server, Provider provider, BenchOptions options, Report report, Func<Task<DbConnection>> open,
        Func<DbConnection, Task<long>> databaseBytes, CancellationToken ct)
    {
        using var http = server.AdminClient("demo");
        var (firstProfile, customers) = await CustomersAsync(server, http, options.Quick ? 500 : 2_000, open, ct);
        var waiting = options.Quick ? 10_000 : 100_000;
        const int due = 10_000;

        // The waiting crowd: a day's wait, then an exit.
        var (parked, parkedVersion) = await JourneyAsync(http, "parked", "hold", [new { id = "hold", type = "wait", duration = "1d" }, new { id = "end", type = "exit" }],
            [new { from = "hold", to = "end" }], ct);
        Console.WriteLine($"{provider.Title()}: journeys: {waiting:N0} instances waiting on timers");
        await SeedAsync(open, provider, parked, parkedVersion, firstProfile, customers, waiting, "hold", 1, DateTime.UtcNow.AddDays(1), ct);
        await Task.Delay(TimeSpan.FromSeconds(options.Quick ? 3 : 10), ct); // a few idle claim rounds over the crowd
        report.Set(Waiting, provider, Report.Rate(waiting));
        report.Set(Memory, provider, Report.Megabytes(ProcFs.ResidentBytes(server.Pid) ?? 0));
        await using (var db = await open()) report.Set(Size, provider, Report.Megabytes(await databaseBytes(db)));

        // 10,000 timers at one instant, a few seconds ahead; the worker finds them by polling, as it would any timer.
        var (fire, fireVersion) = await JourneyAsync(http, "fire", "hold", [new { id = "hold", type = "wait", duration = "1h" }, new { id = "end", type = "exit" }],
            [new { from = "hold", to = "end" }], ct);
        var t0 = DateTime.UtcNow.AddSeconds(5);
        t0 = new DateTime(t0.Ticks - t0.Ticks % TimeSpan.TicksPerMillisecond, DateTimeKind.Utc);
        await SeedAsync(open, provider, fire, fireVersion, firstProfile, customers, due, "hold", 1, t0, ct);
        Console.WriteLine($"{provider.Title()}: journeys: {due:N0} timers due at {t0:HH:mm:ss.fff}");
        await UntilAsync(open, $"SELECT count(*) FROM journey_instances WHERE journey_id = {fire} AND state = 2", due, TimeSpan.FromMinutes(5), ct);
        var late = await LatenessAsync(open, fire, t0, ct);
        report.Set(Fires, provider, Report.Rate(due / Math.Max(late[^1], 1) * 1000));
        report.Set(Lateness, provider, $"{Report.Rate(Percentile(late, 50))} / {Report.Rate(Percentile(late, 99))}");

        // Steps: each instance passes a condition (a segment rule on its live profile), a split, a tag and an exit.
        using var tagged = await http.PostAsJsonAsync("/api/v1/tags", new { name = "bench-journey" }, ct);
        var tag = JsonDocument.Parse(await tagged.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id").GetInt64();
        var (flow, flowVersion) = await JourneyAsync(http, "flow", "check",
        [
            new { id = "check", type = "condition", rule = new { identifier = "user_id" } },
            new { id = "ab", type = "split", branches = new[] { new { name = "a", percent = 50 }, new { name = "b", percent = 50 } } },
            new { id = "tag_a", type = "add_tag", tagId = tag }, new { id = "tag_b", type = "add_tag", tagId = tag }, new { id = "end", type = "exit" },
        ],
        [
            new { from = "check", to = "ab", on = "true" }, new { from = "check", to = "end", on = "false" }, new { from = "ab", to = "tag_a", on = "a" },
            new { from = "ab", to = "tag_b", on = "b" }, new { from = "tag_a", to = "end", on = "next" }, new { from = "tag_b", to = "end", on = "next" },
        ], ct);
        var started = Stopwatch.GetTimestamp();
        await SeedAsync(open, provider, flow, flowVersion, firstProfile, customers, due, "check", 0, DateTime.UtcNow, ct);
        await UntilAsync(open, $"SELECT count(*) FROM journey_instances WHERE journey_id = {flow} AND state IN (2, 4)", due, TimeSpan.FromMinutes(5), ct);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await using (var db = await open())
        {
            var steps = await Sql.ScalarAsync<long>(db, $"SELECT count(*) FROM journey_steps WHERE journey_id = {flow}", ct);
            report.Set(Steps, provider, $"{Report.Rate(steps / seconds)} ({Report.Rate(steps)} steps in {seconds:0.0} s)");
        }
    }

    private static async Task<(long Journey, long Version)> JourneyAsync(HttpClient http, string name, string start, object[] nodes, object[] edges, CancellationToken ct)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/journeys", new { name, graph = new { trigger = new { type = "api" }, reentry = "every_time", start, nodes, edges } }, ct);
        var body = await created.Content.ReadAsStringAsync(ct);
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"creating journey {name}: {body}");
        var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();
        using var published = await http.PostAsync($"/api/v1/journeys/{id}/publish", null, ct);
        return (id, JsonDocument.Parse(await published.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id").GetInt64());
    }

    /// <summary>Instances at <paramref name="node"/> in <paramref name="state"/>, due at <paramref name="dueAt"/>, spread over the customers; one statement.</summary>
    private static async Task SeedAsync(Func<Task<DbConnection>> open, Provider provider, long journey, long version, long firstProfile, int customers, int count,
        string node, int state, DateTime dueAt, CancellationToken ct)
    {
        await using var db = await open();
        var numbers = provider == Provider.Postgres
            ? $"SELECT n FROM generate_series(1, {count}) AS n"
            : $"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) SELECT n FROM s";
        var sql = $"""
            INSERT INTO journey_instances (tenant_id, journey_id, version_id, profile_id, entry_key, state, current_node, step, due_at, attempts, event_arrived, context, entered_at)
            SELECT (SELECT tenant_id FROM journeys WHERE id = {journey}), {journey}, {version}, {firstProfile} + (n % {customers}), 'seed:' || n, {state}, '{node}', 0, @due, 0,
                   {(provider == Provider.Postgres ? "FALSE" : "0")}, '{"{"}{"}"}', @now
              FROM ({numbers}) AS numbers
            """;
        await Sql.ExecuteAsync(db, sql, ct, args: ["due", dueAt, "now", DateTime.UtcNow], timeoutSeconds: 600);
    }

    /// <summary>Milliseconds from T0 to each fire (the wait node's step), sorted.</summary>
    private static async Task<double[]> LatenessAsync(Func<Task<DbConnection>> open, long journey, DateTime t0, CancellationToken ct)
    {
        await using var db = await open();
        await using var command = db.CreateCommand();
        command.CommandText = $"SELECT at FROM journey_steps WHERE journey_id = {journey} AND node = 'hold'";
        var late = new List<double>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) late.Add((DateTime.SpecifyKind(reader.GetDateTime(0), DateTimeKind.Utc) - t0).TotalMilliseconds);
        late.Sort();
        return [.. late];
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static async Task UntilAsync(Func<Task<DbConnection>> open, string sql, long expected, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            await using (var db = await open())
            {
                var seen = await Sql.ScalarAsync<long>(db, sql, ct);
                if (seen >= expected) return;
                if (Stopwatch.GetTimestamp() > deadline) throw new TimeoutException($"{seen:N0} of {expected:N0} after {timeout}: {sql}");
            }
            await Task.Delay(50, ct);
        }
    }

    private static async Task<(long First, int Count)> CustomersAsync(ServerProcess server, HttpClient http, int count, Func<Task<DbConnection>> open, CancellationToken ct)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/sources", new { name = "journeys-bench", channel = "app" }, ct);
        var writeKey = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("writeKey").GetString();
        using var tracker = new HttpClient { BaseAddress = server.BaseAddress };
        tracker.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        foreach (var chunk in Enumerable.Range(0, count).Chunk(500))
        {
            using var sent = await tracker.PostAsJsonAsync("/v1/batch", new { batch = chunk.Select(i => new { type = "identify", userId = $"traveller-{i}" }) }, ct);
            sent.EnsureSuccessStatusCode();
        }
        for (var waited = 0; ; waited++)
        {
            using var status = await http.GetAsync("/api/v1/identity/status", ct);
            if (JsonDocument.Parse(await status.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("eventsBehind").GetInt64() == 0) break;
            if (waited > 6000) throw new TimeoutException("identity resolution did not catch up within 10 minutes");
            await Task.Delay(100, ct);
        }
        await using var db = await open();
        await using var command = db.CreateCommand();
        // Profiles made in one fresh database are numbered in a row: the seeds spread instances over first..first+count-1.
        command.CommandText = "SELECT min(p.id), count(*) FROM profiles p WHERE EXISTS (SELECT 1 FROM profile_identifiers i WHERE i.profile_id = p.id AND i.value LIKE 'traveller-%')";
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt64(0), Convert.ToInt32(reader.GetInt64(1), CultureInfo.InvariantCulture));
    }
}
