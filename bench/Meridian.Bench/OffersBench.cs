using System.Data.Common;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// Offers, per database: claims per second on one hot template (C clients, each claim a POST answered once its group
/// commit is durable) divided by a raw conditional <c>UPDATE ... WHERE remaining &gt; 0</c> of one stock row, one per
/// transaction, with as many connections, on the same kind of database in the same run; the p99 of validating a
/// 20-line cart for a customer holding coupons of 50 active templates (one client, so it is the cost of one call);
/// and the time to generate a million codes.
/// </summary>
internal static class OffersBench
{
    private const string RawClaims = "offers: raw conditional UPDATE of one stock row, one per transaction /s (baseline)";
    private const string Claims = "offers: claims/s on one hot template";
    private const string ClaimsRatio = "… ratio to the raw conditional UPDATE";
    private const string ClaimLatency = "offers: claim p50 ms / p99 ms";
    private const string Validate = "offers: validate 20 lines × 50 templates, one client, p50 ms / p99 ms (target p99 < 10)";
    private const string HttpFloor = "offers: HTTP floor: GET " + HttpGetBench.Path + " with as many clients /s, p50 ms / p99 ms";
    private const string ServerCpu = "offers: server CPU ms per call: claim (with its event's fan-out) / GET";
    private const string ValidateBusy = "… the same while the outbox fans out the claims' events, p50 ms / p99 ms";
    private const string Generate = "offers: generate codes: count / s / codes/s";
    private const string Exact = "offers: coupons in the table = claims answered 200";

    public static int Workers(BenchOptions options) => Math.Max(64, options.Concurrency);

    public static async Task SqliteAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("meridian-bench-offers-").FullName;
        try
        {
            var raw = $"Data Source={Path.Combine(dir, "raw-stock.db")}";
            Console.WriteLine("SQLite: offers: raw conditional UPDATE of one stock row");
            var baseline = await RawSqliteAsync(raw, options, ct);
            var database = $"Data Source={Path.Combine(dir, "offers.db")}";
            await using var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, database, dir, ct);
            await RunAsync(server, Provider.Sqlite, baseline, options, report, async sql =>
            {
                var connection = new SqliteConnection(database + ";Pooling=False");
                await connection.OpenAsync(ct);
                return connection;
            }, ct);
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
            report.Note("PostgreSQL: offers skipped: no server (see PostgreSQL above).");
            return;
        }
        LoadResult baseline;
        await using (var raw = NpgsqlDataSource.Create(await cluster.CreateDatabaseAsync("bench_offers_raw", ct)))
        {
            Console.WriteLine("PostgreSQL: offers: raw conditional UPDATE of one stock row");
            baseline = await RawPostgresAsync(raw, options, ct);
        }
        var database = await cluster.CreateDatabaseAsync("bench_offers", ct);
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, database, Path.GetTempPath(), ct);
        await RunAsync(server, Provider.Postgres, baseline, options, report, async sql =>
        {
            var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return (DbConnection)connection;
        }, ct);
    }

    private static async Task RunAsync(ServerProcess server, Provider provider, LoadResult baseline, BenchOptions options, Report report,
        Func<string, Task<DbConnection>> open, CancellationToken ct)
    {
        report.Set(RawClaims, provider, Report.Rate(baseline.PerSecond));
        using var http = server.AdminClient("demo", Workers(options));
        var customers = options.Quick ? 2_000 : 10_000;
        Console.WriteLine($"{provider.Title()}: offers: {customers:N0} customers through POST /v1/batch");
        var profiles = await CustomersAsync(server, http, customers, open, ct);

        // The hot template: no stock limit to run out of, a per-customer limit high enough never to refuse, so that every
        // claim runs the stock row's update, the customer's counted upsert, the coupon's insert and its event.
        var hot = await CreateAsync(http, new { name = "hot", kind = "amount_off", value = 500, perCustomerLimit = 1_000_000 }, ct);
        var next = 0L;
        var answered = 0L;
        var (claims, claimCpu) = await WithCpuAsync(server, options, () => ClosedLoop.RunAsync(Workers(options), options.WarmUp, options.Measured, async w =>
        {
            var profile = profiles[(int)(Interlocked.Increment(ref next) % profiles.Length)];
            using var response = await http.PostAsJsonAsync($"/api/v1/offers/templates/{hot}/claim", new { profileId = profile }, ct);
            if (response.IsSuccessStatusCode) Interlocked.Increment(ref answered);
            return response.IsSuccessStatusCode;
        }, ct));
        report.Load(Claims, ClaimLatency, provider, claims, (ClaimsRatio, baseline.PerSecond));
        // What any request costs on this server with as many clients: claims cannot go faster than this.
        var (floor, floorCpu) = await WithCpuAsync(server, options, () => HttpGetBench.RunAsync(server, options with { Concurrency = Workers(options) }, ct));
        report.Set(HttpFloor, provider, $"{Report.Rate(floor.PerSecond)}, {Report.Ms(floor.PercentileMs(50))} / {Report.Ms(floor.PercentileMs(99))}");
        report.Set(ServerCpu, provider, $"{Report.Ms(claimCpu)} / {Report.Ms(floorCpu)}");
        await using (var db = await open(""))
        {
            var rows = await Sql.ScalarAsync<long>(db, $"SELECT count(*) FROM offer_coupons WHERE template_id = {hot}", ct);
            report.Set(Exact, provider, rows == answered ? $"yes, {Report.Rate(rows)}" : $"NO: {Report.Rate(rows)} rows, {Report.Rate(answered)} answered");
        }

        Console.WriteLine($"{provider.Title()}: offers: validation, 50 templates, a 20-line cart");
        var shopper = profiles[0];
        for (var t = 0; t < 50; t++)
        {
            object template = (t % 5) switch
            {
                0 => new { name = $"amount {t}", kind = "amount_off", value = 100 + t, minSpend = 1000 * t, stacking = "any", priority = t % 3 },
                1 => new { name = $"percent {t}", kind = "percent_off", value = 5 + t % 20, cap = 3000, stacking = "any", conditions = new { excludedCategories = new[] { "c3" } } },
                2 => new { name = $"fixed {t}", kind = "fixed_price", value = 990, stacking = "exclusive", conditions = new { includedCategories = new[] { $"c{t % 7}" } } },
                3 => new { name = $"item {t}", kind = "free_item", freeSku = $"sku-{t % 20}", stacking = "named", stackWith = Array.Empty<long>() },
                _ => new { name = $"shipping {t}", kind = "free_shipping", stacking = "any", conditions = new { channels = new[] { "app", "web" } } },
            };
            var id = await CreateAsync(http, template, ct);
            using var issued = await Post(http, $"/api/v1/offers/templates/{id}/issue", new { profileId = shopper }, Guid.NewGuid().ToString("N"), ct);
            issued.EnsureSuccessStatusCode();
        }
        var cart = new
        {
            channel = "app", shipping = 800,
            lines = Enumerable.Range(0, 20).Select(i => new { sku = $"sku-{i}", category = $"c{i % 7}", quantity = 1 + i % 3, unitPrice = 500 + 137 * i }).ToArray(),
        };
        using (var check = await http.PostAsJsonAsync($"/api/v1/offers/customers/{shopper}/validate", cart, ct))
        {
            var body = await check.Content.ReadAsStringAsync(ct);
            if (!check.IsSuccessStatusCode) throw new InvalidOperationException($"validate answered {(int)check.StatusCode}: {body}");
            var parsed = JsonDocument.Parse(body).RootElement;
            report.Note($"{provider.Title()}: offers: the validated cart: {parsed.GetProperty("coupons").GetArrayLength()} coupons judged, "
                + $"{parsed.GetProperty("coupons").EnumerateArray().Count(c => c.GetProperty("applies").GetBoolean())} apply, best combination of "
                + $"{parsed.GetProperty("best").GetProperty("coupons").GetArrayLength()} takes off {parsed.GetProperty("best").GetProperty("totalDiscount").GetInt64():N0} "
                + $"(search exhaustive: {parsed.GetProperty("best").GetProperty("exhaustive").GetBoolean()}).");
        }
        // The claims' events (and the customers') are still being fanned out to subscribers: the outbox dispatcher's
        // backlog would share the 2 cores with the call measured here. Measured once while it runs, once after it.
        var busy = await ValidateAsync(http, shopper, cart, options, ct);
        var backlog = await OutboxBacklogAsync(open, ct);
        await OutboxIdleAsync(open, ct);
        var (validate, validateCpu) = await WithCpuAsync(server, options, () => ValidateAsync(http, shopper, cart, options, ct));
        report.Set(Validate, provider, $"{Report.Ms(validate.PercentileMs(50))} / {Report.Ms(validate.PercentileMs(99))}, server CPU {Report.Ms(validateCpu)} ms a call");
        report.Set(ValidateBusy, provider, $"{Report.Ms(busy.PercentileMs(50))} / {Report.Ms(busy.PercentileMs(99))} ({Report.Rate(backlog)} events behind after)");

        var count1M = options.Quick ? 100_000 : 1_000_000;
        Console.WriteLine($"{provider.Title()}: offers: generating {count1M:N0} codes");
        var cards = await CreateAsync(http, new { name = "cards", kind = "amount_off", value = 1000, stock = count1M }, ct);
        var started = Stopwatch.GetTimestamp();
        using (var made = await http.PostAsJsonAsync($"/api/v1/offers/templates/{cards}/codes", new { count = count1M }, ct))
        {
            var body = await made.Content.ReadAsStringAsync(ct);
            if (!made.IsSuccessStatusCode) throw new InvalidOperationException($"code generation answered {(int)made.StatusCode}: {body}");
        }
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        report.Set(Generate, provider, $"{Report.Rate(count1M)} / {seconds:0.0} / {Report.Rate(count1M / seconds)}");
    }

    /// <summary>A load and the server's CPU time per call over it (warm-up included, so calls are counted at the measured rate).</summary>
    private static async Task<(LoadResult Load, double CpuMsPerCall)> WithCpuAsync(ServerProcess server, BenchOptions options, Func<Task<LoadResult>> run)
    {
        var before = server.ProcessorTime;
        var load = await run();
        var cpu = server.ProcessorTime - before;
        return (load, cpu.TotalMilliseconds / (load.PerSecond * (options.WarmUp + options.Measured).TotalSeconds));
    }

    private static Task<LoadResult> ValidateAsync(HttpClient http, long shopper, object cart, BenchOptions options, CancellationToken ct) =>
        ClosedLoop.RunAsync(1, options.WarmUp, options.Measured, async _ =>
        {
            using var response = await http.PostAsJsonAsync($"/api/v1/offers/customers/{shopper}/validate", cart, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode;
        }, ct);

    /// <summary>Events not yet fanned out (after the dispatcher's fan-out position), plus deliveries not yet made.</summary>
    internal static async Task<long> OutboxBacklogAsync(Func<string, Task<DbConnection>> open, CancellationToken ct)
    {
        await using var db = await open("");
        var notFannedOut = db is NpgsqlConnection
            ? "(tx_id, id) > (SELECT position_tx, position_id FROM outbox_positions WHERE name = 'fan-out')"
            : "id > (SELECT position_id FROM outbox_positions WHERE name = 'fan-out')";
        return await Sql.ScalarAsync<long>(db, $"SELECT (SELECT count(*) FROM outbox_messages WHERE {notFannedOut}) + (SELECT count(*) FROM outbox_deliveries WHERE status = 0)", ct);
    }

    internal static async Task OutboxIdleAsync(Func<string, Task<DbConnection>> open, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        while (await OutboxBacklogAsync(open, ct) > 0)
        {
            if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromMinutes(10)) throw new TimeoutException("the outbox did not catch up within 10 minutes");
            await Task.Delay(200, ct);
        }
        Console.WriteLine($"  (the outbox caught up after {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s)");
    }

    private static async Task<long> CreateAsync(HttpClient http, object template, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync("/api/v1/offers/templates", template, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST /api/v1/offers/templates answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();
    }

    private static Task<HttpResponseMessage> Post(HttpClient http, string path, object body, string key, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return http.SendAsync(request, ct);
    }

    /// <summary>Customers made through the tracking API (as a front end would), then their profile ids read from the database.</summary>
    /// <param name="traits">The traits of customer i (a phone for the messaging run), or none.</param>
    internal static async Task<long[]> CustomersAsync(ServerProcess server, HttpClient http, int count, Func<string, Task<DbConnection>> open, CancellationToken ct,
        Func<int, object>? traits = null)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/sources", new { name = "offers-bench", channel = "app" }, ct);
        var writeKey = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("writeKey").GetString();
        using var tracker = new HttpClient { BaseAddress = server.BaseAddress };
        tracker.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        foreach (var chunk in Enumerable.Range(0, count).Chunk(500))
        {
            using var sent = await tracker.PostAsJsonAsync("/v1/batch", new { batch = chunk.Select(i => traits is null ? (object)new { type = "identify", userId = $"shopper-{i}" } : new { type = "identify", userId = $"shopper-{i}", traits = traits(i) }) }, ct);
            sent.EnsureSuccessStatusCode();
        }
        for (var waited = 0; ; waited++)
        {
            using var status = await http.GetAsync("/api/v1/identity/status", ct);
            if (JsonDocument.Parse(await status.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("eventsBehind").GetInt64() == 0) break;
            if (waited > 6000) throw new TimeoutException("identity resolution did not catch up within 10 minutes");
            await Task.Delay(100, ct);
        }
        await using var db = await open("");
        await using var command = db.CreateCommand();
        command.CommandText = "SELECT p.id FROM profiles p WHERE p.merged_into_id IS NULL AND p.erased_at IS NULL AND EXISTS (SELECT 1 FROM profile_identifiers i WHERE i.profile_id = p.id AND i.value LIKE 'shopper-%')";
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids.Count > 0 ? [.. ids] : throw new InvalidOperationException("no customers were resolved");
    }

    private static async Task<LoadResult> RawSqliteAsync(string connectionString, BenchOptions options, CancellationToken ct)
    {
        await using (var setup = new SqliteConnection(connectionString))
        {
            await setup.OpenAsync(ct);
            await Sql.ExecuteAsync(setup, "PRAGMA journal_mode=WAL; CREATE TABLE stock (id INTEGER PRIMARY KEY, remaining INTEGER NOT NULL); INSERT INTO stock VALUES (1, 1000000000);", ct);
        }
        var connections = new SqliteConnection[Workers(options)];
        for (var i = 0; i < connections.Length; i++)
        {
            connections[i] = new SqliteConnection(connectionString);
            connections[i].Open();
            using var pragma = connections[i].CreateCommand();
            pragma.CommandText = "PRAGMA busy_timeout = 30000;";
            pragma.ExecuteNonQuery();
        }
        try
        {
            return await ClosedLoop.RunAsync(connections.Length, options.WarmUp, options.Measured, w =>
            {
                using var command = connections[w].CreateCommand();
                command.CommandText = "UPDATE stock SET remaining = remaining - 1 WHERE id = 1 AND remaining > 0";
                return ValueTask.FromResult(command.ExecuteNonQuery() == 1);
            }, ct);
        }
        finally
        {
            foreach (var c in connections) c.Dispose();
        }
    }

    private static async Task<LoadResult> RawPostgresAsync(NpgsqlDataSource db, BenchOptions options, CancellationToken ct)
    {
        await using (var setup = db.CreateCommand("CREATE TABLE stock (id int PRIMARY KEY, remaining bigint NOT NULL); INSERT INTO stock VALUES (1, 1000000000);"))
            await setup.ExecuteNonQueryAsync(ct);
        return await ClosedLoop.RunAsync(Workers(options), options.WarmUp, options.Measured, async _ =>
        {
            await using var command = db.CreateCommand("UPDATE stock SET remaining = remaining - 1 WHERE id = 1 AND remaining > 0");
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);
    }
}
