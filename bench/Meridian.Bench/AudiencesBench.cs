using System.Data.Common;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// Audiences, per database, over customers made through <c>/v1/batch</c> (a city trait, 0-4 orders over 60 days, one in
/// ten tagged VIP): the estimate of a three-condition rule (trait + event window + tag) against a hand-written SQL query
/// for the same rule on the same database; the membership check ("is X in Y") once the segment is materialised; and the
/// lag from a probe event accepted to its customer entering a segment (the same transaction as <c>segment.entered</c>),
/// while another client keeps sending events.
/// </summary>
internal static class AudiencesBench
{
    private const string Estimate = "audiences: estimate trait+window+tag, p50 ms / p99 ms (target < 1000)";
    private const string HandWritten = "audiences: hand-written SQL for the same rule, p50 ms / p99 ms";
    private const string EstimateRatio = "… estimate p50 / hand-written p50 (target within 2x)";
    private const string Check = "audiences: membership check, 4 clients, p50 ms / p99 ms (target p99 < 5)";
    private const string Lag = "audiences: event accepted → segment.entered, under ingest load, p50 ms / p99 ms (target p99 < 2000)";
    private const string Size = "audiences: customers / events / rule size";
    private const string FullEvaluation = "audiences: a new segment (trait+window+tag) saved → ready, s (full evaluation in chunks)";

    private static readonly string[] Cities = ["Hangzhou", "Shanghai", "Beijing", "Shenzhen", "Chengdu"];

    private static readonly object Rule = new
    {
        and = new object[]
        {
            new { trait = "city", op = "eq", value = "Hangzhou" },
            new { @event = "Order Completed", withinDays = 30 },
            new { tag = "VIP" },
        },
    };

    public static async Task SqliteAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("meridian-bench-audiences-").FullName;
        try
        {
            var database = $"Data Source={Path.Combine(dir, "audiences.db")}";
            await using var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, database, dir, ct);
            await RunAsync(server, Provider.Sqlite, options, report, async () =>
            {
                var connection = new SqliteConnection(database + ";Pooling=False");
                await connection.OpenAsync(ct);
                return connection;
            }, ct);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            // MERIDIAN_BENCH_KEEP=1 keeps the database for a look at its query plans afterwards (it takes gigabytes at full size).
            if (Environment.GetEnvironmentVariable("MERIDIAN_BENCH_KEEP") is null) Directory.Delete(dir, recursive: true);
            else Console.WriteLine($"SQLite: audiences: kept {dir}");
        }
    }

    public static async Task PostgresAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        await using var cluster = await PostgresCluster.StartAsync(ct);
        if (cluster is null)
        {
            report.Note("PostgreSQL: audiences skipped: no server (see PostgreSQL above).");
            return;
        }
        var database = await cluster.CreateDatabaseAsync("bench_audiences", ct);
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, database, Path.GetTempPath(), ct);
        await RunAsync(server, Provider.Postgres, options, report, async () =>
        {
            var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return (DbConnection)connection;
        }, ct);
    }

    private static async Task RunAsync(ServerProcess server, Provider provider, BenchOptions options, Report report, Func<Task<DbConnection>> open,
        CancellationToken ct)
    {
        using var http = server.AdminClient("demo", 16);
        var customers = options.AudienceCustomers;
        using var created = await http.PostAsJsonAsync("/api/v1/sources", new { name = "audiences-bench", channel = "app" }, ct);
        var writeKey = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("writeKey").GetString();
        using var tracker = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        tracker.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));

        var vip = JsonDocument.Parse(await (await http.PostAsJsonAsync("/api/v1/tags", new { name = "VIP" }, ct)).Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id").GetInt64();
        long events;
        if (options.AudienceProfiles > 0)
        {
            customers = options.AudienceProfiles;
            var asked = options.AudienceEvents > 0 ? options.AudienceEvents : 20L * customers;
            Console.WriteLine($"{provider.Title()}: audiences: seeding {customers:N0} profiles and {asked:N0} events straight into the tables");
            AudiencesSeed.Seeded seeded;
            await using (var db = await open())
                seeded = await AudiencesSeed.SeedAsync(db, provider, await BrandAsync(db, ct), await SourceAsync(db, ct), vip, customers, asked, ct);
            events = seeded.Events;
            report.Note($"{provider.Title()}: audiences: {seeded.Profiles:N0} profiles and {seeded.Events:N0} events seeded with set-based SQL in "
                + $"{seeded.Took.TotalSeconds:N0} s, bypassing ingestion (ingestion speed is issue 3's bench).");
        }
        else events = await IngestAsync(tracker, http, vip, customers, provider, ct);
        await CaughtUpAsync(http, ct);
        var profiles = await ProfilesAsync(open, ct);

        Console.WriteLine($"{provider.Title()}: audiences: estimate vs hand-written SQL");
        var loadBefore = LoadAverage();
        using (var first = await http.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = Rule }, ct))
        {
            var body = await first.Content.ReadAsStringAsync(ct);
            if (!first.IsSuccessStatusCode) throw new InvalidOperationException($"estimate answered {(int)first.StatusCode}: {body}");
            var handCount = await HandWrittenAsync(open, provider, ct);
            var size = JsonDocument.Parse(body).RootElement.GetProperty("size").GetInt64();
            report.Set(Size, provider, $"{Report.Rate(customers)} / {Report.Rate(events)} / {Report.Rate(size)}{(size == handCount ? "" : $" (hand-written SQL counts {handCount}!)")}");
        }
        async Task<bool> EstimateOnce()
        {
            using var response = await http.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = Rule }, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode;
        }
        await using (var db = await open())
        {
            // At full size a call can outlast the measured window, which counts only calls wholly inside it: a fixed number of calls instead.
            var (estimate, hand, label) = options.AudienceProfiles > 0
                ? (await RepeatAsync(EstimateOnce, ct), await RepeatAsync(async () => await HandWrittenAsync(db, provider, ct) >= 0, ct), $"p50 / max of {Repeats} ms")
                : (await ClosedLoop.RunAsync(1, options.WarmUp, options.Measured, async _ => await EstimateOnce(), ct),
                    await ClosedLoop.RunAsync(1, options.WarmUp, options.Measured, async _ => await HandWrittenAsync(db, provider, ct) >= 0, ct), "");
            report.Set(Estimate, provider, $"{Report.Ms(estimate.PercentileMs(50))} / {Report.Ms(estimate.PercentileMs(99))}{(label == "" ? "" : $" ({label})")}");
            report.Set(HandWritten, provider, $"{Report.Ms(hand.PercentileMs(50))} / {Report.Ms(hand.PercentileMs(99))}{(label == "" ? "" : $" ({label})")}");
            report.Set(EstimateRatio, provider, Report.Ratio(estimate.PercentileMs(50), hand.PercentileMs(50)));
        }

        Console.WriteLine($"{provider.Title()}: audiences: membership check");
        var saving = Stopwatch.GetTimestamp();
        var segment = await SaveAsync(http, "bench three conditions", Rule, ct);
        report.Set(FullEvaluation, provider, $"{Stopwatch.GetElapsedTime(saving).TotalSeconds:0.0}");
        var ids = profiles.Values.ToArray();
        var check = await ClosedLoop.RunAsync(4, options.WarmUp, options.Measured, async w =>
        {
            using var response = await http.GetAsync($"/api/v1/segments/{segment}/members/{ids[Random.Shared.Next(ids.Length)]}", ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode;
        }, ct);
        report.Set(Check, provider, $"{Report.Ms(check.PercentileMs(50))} / {Report.Ms(check.PercentileMs(99))}");

        Console.WriteLine($"{provider.Title()}: audiences: entry lag under ingest load");
        var probed = await SaveAsync(http, "bench probe", new { @event = "Bench Probe" }, ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var load = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                var batch = Enumerable.Range(0, 100).Select(_ => new { type = "track", userId = $"aud-{Random.Shared.Next(customers)}", @event = "Page Viewed", properties = new { n = n++ } });
                try
                {
                    using var sent = await tracker.PostAsJsonAsync("/v1/batch", new { batch }, stop.Token);
                    await Task.Delay(100, stop.Token); // about 1,000 events/s from this client
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }, ct);
        var lags = new List<double>();
        try
        {
            for (var p = 0; p < (options.Quick ? 10 : 40); p++)
            {
                var user = $"aud-{p * 7 + 1}";
                using var sent = await tracker.PostAsJsonAsync("/v1/batch", new { batch = new[] { new { type = "track", userId = user, @event = "Bench Probe" } } }, ct);
                sent.EnsureSuccessStatusCode();
                var accepted = Stopwatch.GetTimestamp();
                for (var polls = 0; ; polls++)
                {
                    using var member = await http.GetAsync($"/api/v1/segments/{probed}/members/{profiles[user]}", ct);
                    if (JsonDocument.Parse(await member.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("member").GetBoolean()) break;
                    if (polls > 6000) throw new TimeoutException($"{user} did not enter the probe segment within 2 minutes");
                    await Task.Delay(20, ct);
                }
                lags.Add(Stopwatch.GetElapsedTime(accepted).TotalMilliseconds);
                // With the server's log kept, each probe's time lines it up with the log's lines.
                if (Environment.GetEnvironmentVariable("MERIDIAN_BENCH_SERVER_LOG") is not null)
                    Console.WriteLine($"  probe {p}: accepted {DateTime.UtcNow - TimeSpan.FromMilliseconds(lags[^1]):HH:mm:ss.fff}, entered after {lags[^1]:0} ms");
                await Task.Delay(250, ct);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await load;
        }
        lags.Sort();
        double Percentile(double q) => lags[(int)Math.Min(lags.Count - 1, Math.Ceiling(q / 100 * lags.Count) - 1)];
        report.Set(Lag, provider, $"{Report.Ms(Percentile(50))} / {Report.Ms(Percentile(99))} ({lags.Count} probes)");
        report.Note($"{provider.Title()}: audiences: load average (1, 5, 15 min) when measuring began {loadBefore}, when it ended {LoadAverage()}.");
    }

    private const int Repeats = 7;

    /// <summary>One unmeasured call, then <see cref="Repeats"/> in a row; their latencies as a load result (p99 of seven is the slowest).</summary>
    private static async Task<LoadResult> RepeatAsync(Func<Task<bool>> call, CancellationToken ct)
    {
        await call();
        var ticks = new List<long>();
        for (var i = 0; i < Repeats; i++)
        {
            ct.ThrowIfCancellationRequested();
            var before = Stopwatch.GetTimestamp();
            if (!await call()) throw new InvalidOperationException("a measured call failed");
            ticks.Add(Stopwatch.GetTimestamp() - before);
        }
        ticks.Sort();
        return new LoadResult(ticks.Count, 0, TimeSpan.FromTicks(ticks.Sum() * TimeSpan.TicksPerSecond / Stopwatch.Frequency), [.. ticks]);
    }

    private static string LoadAverage()
    {
        var fields = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ') : [];
        return fields.Length >= 3 ? string.Join(" ", fields[..3]) : "unknown";
    }

    /// <summary>Customers through <c>/v1/batch</c> (a city, 0-4 orders over 60 days), one in ten tagged VIP through the API; returns the orders sent.</summary>
    private static async Task<long> IngestAsync(HttpClient tracker, HttpClient http, long vip, int customers, Provider provider, CancellationToken ct)
    {
        Console.WriteLine($"{provider.Title()}: audiences: {customers:N0} customers through POST /v1/batch");
        var random = new Random(42);
        var now = DateTime.UtcNow;
        var events = 0L;
        var messages = new List<object>();
        for (var i = 0; i < customers; i++)
        {
            messages.Add(new { type = "identify", userId = $"aud-{i}", traits = new { city = Cities[random.Next(Cities.Length)] }, timestamp = now.AddDays(-90) });
            for (var o = random.Next(5); o > 0; o--, events++)
                messages.Add(new
                {
                    type = "track", userId = $"aud-{i}", @event = "Order Completed", timestamp = now.AddDays(-random.NextDouble() * 60),
                    properties = new { order_id = $"aud-{i}-{o}", total = random.Next(10, 900), currency = "CNY" },
                });
            if (messages.Count >= 500 || i == customers - 1)
            {
                using var sent = await tracker.PostAsJsonAsync("/v1/batch", new { batch = messages }, ct);
                sent.EnsureSuccessStatusCode();
                messages.Clear();
            }
        }
        await CaughtUpAsync(http, ct);
        foreach (var chunk in Enumerable.Range(0, customers).Where(i => i % 10 == 0).Chunk(10_000))
        {
            using var tagged = await http.PostAsJsonAsync($"/api/v1/tags/{vip}/profiles", new { identifierType = "user_id", identifiers = chunk.Select(i => $"aud-{i}") }, ct);
            tagged.EnsureSuccessStatusCode();
        }
        return customers + events;
    }

    private static Task<long> BrandAsync(DbConnection db, CancellationToken ct) => Sql.ScalarAsync<long>(db, "SELECT id FROM brands WHERE slug = 'demo'", ct);

    private static Task<long> SourceAsync(DbConnection db, CancellationToken ct) => Sql.ScalarAsync<long>(db, "SELECT id FROM sources WHERE name = 'audiences-bench'", ct);

    /// <summary>Saves a segment and waits until its members are materialised.</summary>
    private static async Task<long> SaveAsync(HttpClient http, string name, object rule, CancellationToken ct)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/segments", new { name, rule }, ct);
        var body = await created.Content.ReadAsStringAsync(ct);
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"POST /api/v1/segments answered {(int)created.StatusCode}: {body}");
        var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();
        for (var waited = 0; ; waited++)
        {
            using var segment = await http.GetAsync($"/api/v1/segments/{id}", ct);
            if (JsonDocument.Parse(await segment.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("status").GetString() == "ready") return id;
            if (waited > 3_600) throw new TimeoutException("the segment was not evaluated within an hour");
            // Once a second, as a console would: until it is ready, each GET counts the rule over the whole brand.
            await Task.Delay(1000, ct);
        }
    }

    private static async Task CaughtUpAsync(HttpClient http, CancellationToken ct)
    {
        for (var waited = 0; ; waited++)
        {
            using var status = await http.GetAsync("/api/v1/identity/status", ct);
            if (JsonDocument.Parse(await status.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("eventsBehind").GetInt64() == 0) return;
            if (waited > 12000) throw new TimeoutException("identity resolution did not catch up within 20 minutes");
            await Task.Delay(100, ct);
        }
    }

    private static async Task<Dictionary<string, long>> ProfilesAsync(Func<Task<DbConnection>> open, CancellationToken ct)
    {
        await using var db = await open();
        await using var command = db.CreateCommand();
        command.CommandText = "SELECT i.value, i.profile_id FROM profile_identifiers i WHERE i.type = 'user_id' AND i.value LIKE 'aud-%'";
        var ids = new Dictionary<string, long>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) ids[reader.GetString(0)] = reader.GetInt64(1);
        return ids;
    }

    private static async Task<long> HandWrittenAsync(Func<Task<DbConnection>> open, Provider provider, CancellationToken ct)
    {
        await using var db = await open();
        return await HandWrittenAsync(db, provider, ct);
    }

    /// <summary>
    /// The rule as one would write it by hand for this schema: the brand's live profiles, the city, an order in 30 days,
    /// the tag. On SQLite the tag is a list of row ids (<c>p.id IN</c>), which its planner starts from; as an EXISTS it
    /// reads every profile of the brand (3x slower at 1,000,000). PostgreSQL starts from the tag either way.
    /// </summary>
    private static async Task<long> HandWrittenAsync(DbConnection db, Provider provider, CancellationToken ct)
    {
        var city = provider == Provider.Postgres ? "CAST(p.traits AS jsonb) -> 'city' ->> 'v'" : "json_extract(p.traits, '$.city.v')";
        var tagged = provider == Provider.Postgres
            ? "EXISTS (SELECT 1 FROM profile_tags pt JOIN tags t ON t.id = pt.tag_id WHERE pt.profile_id = p.id AND t.name = 'VIP')"
            : "p.id IN (SELECT pt.profile_id FROM profile_tags pt JOIN tags t ON t.id = pt.tag_id WHERE t.tenant_id = (SELECT id FROM brands WHERE slug = 'demo') AND t.name = 'VIP')";
        var sql = $"""
            SELECT COUNT(*) FROM profiles p
             WHERE p.tenant_id = (SELECT id FROM brands WHERE slug = 'demo') AND p.merged_into_id IS NULL AND p.erased_at IS NULL
               AND {city} = 'Hangzhou'
               AND EXISTS (SELECT 1 FROM profile_events pe WHERE pe.profile_id = p.id AND pe.name = 'Order Completed' AND pe.timestamp >= @since)
               AND {tagged}
            """;
        return await Sql.ScalarAsync<long>(db, sql, ct, args: ["since", DateTime.UtcNow.AddDays(-30)]);
    }
}
