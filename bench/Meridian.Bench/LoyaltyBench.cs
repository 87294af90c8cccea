using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// The points ledger on a server of its own (fresh database, expiry job polling every second): earn postings on
/// independent members and spends on one hot member through <c>POST /api/v1/loyalty/members/{id}/earn|spend</c>
/// (C workers, each posting a fresh <c>Idempotency-Key</c>), a balance read (C workers, then one), and the expiry of
/// lots seeded straight into the tables (10 due lots per member, with their earn entries and balances) until none is left.
/// </summary>
internal static class LoyaltyBench
{
    public const string Earn = "loyalty earn postings/s (independent members)";
    public const string EarnRatio = "… ratio to raw insert (target ≥ 0.20)";
    public const string EarnLatency = "earn p50 ms / p99 ms";
    public const string BatchEarn = "loyalty earn postings/s through earn-batch (independent members, batches of 500)";
    public const string BatchEarnRatio = "… earn-batch ratio to raw insert (target ≥ 0.20)";
    public const string BatchEarnLatency = "earn-batch p50 ms / p99 ms per batch of 500";
    public const string LedgerRows = "the same postings' rows written straight into the ledger's tables, postings/s";
    public const string LedgerRowsRatio = "… their ratio to raw insert (the highest earn-batch ratio the schema allows)";
    public const string BatchEarnToLedgerRows = "… earn-batch ratio to them (the server's share)";
    public const string LedgerRowsLatency = "ledger rows p50 ms / p99 ms per batch of 500";
    public const string Spend = "loyalty spends/s on one hot member";
    public const string SpendLatency = "spend p50 ms / p99 ms";
    public const string Balance = "GET balance req/s";
    public const string BalanceLatency = "balance p50 ms / p99 ms (target p99 < 5)";
    public const string SingleBalance = "GET balance req/s, one client";
    public const string SingleBalanceLatency = "balance p50 ms / p99 ms, one client";
    public const string Expiry = "expiry: lots expired / s";
    public const string ExpiryTime = "expiry: lots, members / elapsed s";
    private const int Members = 400;
    private const int BatchSize = 500;
    /// <summary>Few workers: one batch keeps a core busy, more of them only queue (2 cores here).</summary>
    private const int BatchWorkers = 4;
    private const int LotsPerMember = 10;
    /// <summary>The earn-batch's members' ids start here (seeded straight into the table).</summary>
    private const long BatchBase = 2_000_000_000;

    public static async Task RunAsync(string serverDll, Provider provider, string database, string workDir, double insertBaseline, BenchOptions options,
        Report report, CancellationToken ct)
    {
        Environment.SetEnvironmentVariable("Meridian__Loyalty__Expiry__PollInterval", "00:00:01");
        Environment.SetEnvironmentVariable("Meridian__Loyalty__Expiry__BatchSize", "1000");
        Console.WriteLine($"{provider.Title()}: starting a server on a fresh database for loyalty");
        await using var server = await ServerProcess.StartAsync(serverDll, provider, database, workDir, ct);
        using var http = server.AdminClient("demo", options.Concurrency);

        var programme = await ReadAsync(await http.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Bench club", expiry = "after_days", expiryDays = 365 }, ct), ct);
        var (programmeId, brandId) = (programme.GetProperty("id").GetInt64(), programme.GetProperty("brandId").GetInt64());
        var members = await MembersAsync(server, http, programmeId, ct);

        Console.WriteLine($"{provider.Title()}: loyalty earn postings on {members.Count} members");
        var earn = await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, async worker =>
            await PostAsync(http, $"/api/v1/loyalty/members/{members[(worker + Random.Shared.Next(members.Count / options.Concurrency) * options.Concurrency) % members.Count]}/earn",
                new { points = 10, reference = "bench" }, ct), ct);
        report.Load(Earn, EarnLatency, provider, earn, (EarnRatio, insertBaseline));

        var batchEarn = await BatchEarnAsync(http, provider, database, brandId, programmeId, options, insertBaseline, report, ct);
        if (provider == Provider.Postgres)
        {
            await OffersBench.OutboxIdleAsync(Open, ct);
            await using var programmeDb = await Open("");
            var groupId = await Sql.ScalarAsync<long>(programmeDb, $"SELECT group_id FROM loyalty_programmes WHERE id = {programmeId}", ct);
            await LedgerRowsAsync(database, brandId, programmeId, groupId, batchEarn, options, insertBaseline, report, ct);
        }

        var hot = members[0];
        await PostAsync(http, $"/api/v1/loyalty/members/{hot}/earn", new { points = 1_000_000_000 }, ct);
        Console.WriteLine($"{provider.Title()}: loyalty spends on one member");
        var spend = await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, async _ =>
            await PostAsync(http, $"/api/v1/loyalty/members/{hot}/spend", new { points = 1 }, ct), ct);
        report.Load(Spend, SpendLatency, provider, spend);

        // The earnings' points.earned events are still being fanned out: read once the outbox is idle, as a front end
        // would in a steady state (the offers bench measures validation both ways).
        async Task<DbConnection> Open(string _)
        {
            DbConnection connection = provider == Provider.Sqlite ? new SqliteConnection(database + ";Pooling=False;Default Timeout=120") : new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return connection;
        }
        await OffersBench.OutboxIdleAsync(Open, ct);
        Console.WriteLine($"{provider.Title()}: balance reads");
        async ValueTask<bool> Read(int _)
        {
            using var response = await http.GetAsync($"/api/v1/loyalty/members/{members[Random.Shared.Next(members.Count)]}/balance", ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.StatusCode == HttpStatusCode.OK;
        }
        report.Load(Balance, BalanceLatency, provider, await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, Read, ct));
        report.Load(SingleBalance, SingleBalanceLatency, provider, await ClosedLoop.RunAsync(1, options.WarmUp, options.Measured, Read, ct));

        var lots = options.ExpiryLots;
        Console.WriteLine($"{provider.Title()}: seeding {lots:N0} due lots, then waiting for the expiry job");
        await using var db = provider == Provider.Sqlite
            ? (DbConnection)new SqliteConnection(database + ";Pooling=False;Default Timeout=120")
            : new NpgsqlConnection(database);
        await db.OpenAsync(ct);
        var memberCount = await SeedDueLotsAsync(db, provider, brandId, programmeId, lots, ct);
        var started = Stopwatch.GetTimestamp();
        var deadline = TimeSpan.FromMinutes(options.Quick ? 2 : 30);
        long left;
        while ((left = await Sql.ScalarAsync<long>(db, "SELECT count(*) FROM loyalty_lots WHERE remaining > 0 AND id >= 1000000000", ct)) > 0
               && Stopwatch.GetElapsedTime(started) < deadline)
            await Task.Delay(1000, ct);
        var elapsed = Stopwatch.GetElapsedTime(started);
        var expired = lots - left;
        report.Set(Expiry, provider, Report.Rate(expired / elapsed.TotalSeconds));
        report.Set(ExpiryTime, provider, $"{expired:N0} of {lots:N0}, {memberCount:N0} / {elapsed.TotalSeconds:N0}");
        if (left > 0)
            report.Note($"{provider.Title()}: expiry stopped after {deadline.TotalMinutes:N0} min with {left:N0} of {lots:N0} lots left; at that rate all would take {lots / (expired / elapsed.TotalSeconds):N0} s.");
        var unbalanced = await Sql.ScalarAsync<long>(db, $"SELECT count(*) FROM loyalty_members m WHERE m.programme_id = {programmeId} AND m.balance <> (SELECT coalesce(sum(l.remaining), 0) FROM loyalty_lots l WHERE l.member_id = m.id)", ct);
        if (unbalanced > 0) report.Note($"{provider.Title()}: {unbalanced} members' balance differs from their lots after the loyalty run.");
    }

    /// <summary>
    /// Earn postings through <c>POST /api/v1/loyalty/postings/earn-batch</c>: <see cref="BatchWorkers"/> workers, each
    /// sending batches of <see cref="BatchSize"/> postings to members of its own (one posting a member, a fresh source key
    /// each), so no two batches wait for each other's row locks. The members are seeded straight into the table (ids from
    /// 2,000,000,000, made-up profile ids: the ledger does not join profiles).
    /// </summary>
    private static async Task<double> BatchEarnAsync(HttpClient http, Provider provider, string database, long brandId, long programmeId, BenchOptions options,
        double insertBaseline, Report report, CancellationToken ct)
    {
        var workers = Math.Min(BatchWorkers, options.Concurrency);
        await using (var db = provider == Provider.Sqlite ? (DbConnection)new SqliteConnection(database + ";Pooling=False;Default Timeout=120") : new NpgsqlConnection(database))
        {
            await db.OpenAsync(ct);
            var series = provider == Provider.Sqlite
                ? $"WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < {workers * BatchSize}) SELECT n FROM s"
                : $"SELECT generate_series(0, {workers * BatchSize} - 1) AS n";
            var enrolled = provider == Provider.Sqlite ? "'2026-01-01 00:00:00'" : "timestamptz '2026-01-01 00:00:00+00'";
            await Sql.ExecuteAsync(db, $"""
                INSERT INTO loyalty_members (id, tenant_id, programme_id, profile_id, balance, pending, owed, qualifying_points, version, enrolled_at)
                SELECT {BatchBase} + n, {brandId}, {programmeId}, {BatchBase} + n, 0, 0, 0, 0, 0, {enrolled} FROM ({series}) x
                """, ct, timeoutSeconds: 600);
        }

        Console.WriteLine($"{provider.Title()}: loyalty earn-batch, {workers} workers, {BatchSize} members each");
        var sent = new long[workers];
        var (warmUp, measured) = BatchWindow(options);
        var batches = await ClosedLoop.RunAsync(workers, warmUp, measured, async worker =>
        {
            var n = ++sent[worker];
            var postings = Enumerable.Range(0, BatchSize).Select(i => new { memberId = BatchMember(worker, i), points = 10, sourceKey = $"bench-{n}", reference = "bench" });
            using var response = await http.PostAsJsonAsync("/api/v1/loyalty/postings/earn-batch", new { postings }, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            return response.StatusCode == HttpStatusCode.OK && !body.Contains("\"rejected\"", StringComparison.Ordinal);
        }, ct);
        report.Load(BatchEarn, BatchEarnLatency, provider, batches with { Calls = batches.Calls * BatchSize }, (BatchEarnRatio, insertBaseline));
        report.Note($"{provider.Title()}: earn-batch: {workers} workers, {batches.Calls:N0} batches of {BatchSize} in {batches.Window.TotalSeconds:N1} s (load average {LoadAverage()}).");
        return batches.Calls * BatchSize / batches.Window.TotalSeconds;
    }

    /// <summary>
    /// The earn-batch's rows straight into the tables (<see cref="LedgerRowsBaseline"/>) beside the idle server (the
    /// earn-batch's events fanned out), on the same members, right after the earn-batch (the tables as large as it left them).
    /// </summary>
    private static async Task LedgerRowsAsync(string database, long brandId, long programmeId, long groupId, double batchEarn, BenchOptions options,
        double insertBaseline, Report report, CancellationToken ct)
    {
        var workers = Math.Min(BatchWorkers, options.Concurrency);
        Console.WriteLine("PostgreSQL: the earn-batch's rows straight into the ledger's tables");
        long[][] members = [.. Enumerable.Range(0, workers).Select(w => Enumerable.Range(0, BatchSize).Select(i => BatchMember(w, i)).ToArray())];
        var (warmUp, measured) = BatchWindow(options);
        var rows = await LedgerRowsBaseline.RunAsync(database, brandId, programmeId, groupId, members, warmUp, measured, ct);
        rows = rows with { Calls = rows.Calls * BatchSize };
        report.Load(LedgerRows, LedgerRowsLatency, Provider.Postgres, rows, (LedgerRowsRatio, insertBaseline));
        report.Set(BatchEarnToLedgerRows, Provider.Postgres, Report.Ratio(batchEarn, rows.PerSecond));
    }

    /// <summary>The i-th member of a batch worker (each keeps to its own).</summary>
    private static long BatchMember(int worker, int i) => BatchBase + worker * BatchSize + i;

    /// <summary>
    /// A batch takes tens to hundreds of ms: a window of a few seconds would hold a handful of batches, most of them
    /// still running code the JIT has not optimised yet.
    /// </summary>
    private static (TimeSpan WarmUp, TimeSpan Measured) BatchWindow(BenchOptions options) =>
        (options.WarmUp > TimeSpan.FromSeconds(5) ? options.WarmUp : TimeSpan.FromSeconds(5),
         options.Measured > TimeSpan.FromSeconds(10) ? options.Measured : TimeSpan.FromSeconds(10));

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ')[..3]) : "unknown";

    /// <summary>Profiles made through <c>identify</c>, enrolled through the API; returns the member ids.</summary>
    private static async Task<List<long>> MembersAsync(ServerProcess server, HttpClient http, long programmeId, CancellationToken ct)
    {
        var (_, writeKey) = await IngestBench.CreateSourceAsync(server, "demo", "app", ct);
        using var tracker = IngestBench.WriteKeyClient(server, writeKey, 4);
        for (var first = 0; first < Members; first += 100)
        {
            var batch = Enumerable.Range(first, 100).Select(i => new { type = "identify", userId = $"loyalty-bench-{i}" }).ToList();
            (await tracker.PostAsJsonAsync(IngestBench.Path, new { batch }, ct)).EnsureSuccessStatusCode();
        }
        var members = new List<long>();
        for (var i = 0; i < Members; i++)
        {
            long? profile = null;
            for (var attempt = 0; profile is null; attempt++)
            {
                using var response = await http.GetAsync($"/api/v1/profiles/lookup?type=user_id&value=loyalty-bench-{i}", ct);
                if (response.StatusCode == HttpStatusCode.OK) profile = (await ReadAsync(response, ct)).GetProperty("id").GetInt64();
                else if (attempt > 600) throw new InvalidOperationException($"Profile loyalty-bench-{i} never appeared.");
                else await Task.Delay(100, ct);
            }
            var member = await ReadAsync(await http.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programmeId}/members", new { profileId = profile }, ct), ct);
            members.Add(member.GetProperty("id").GetInt64());
        }
        return members;
    }

    /// <summary>
    /// Members (made-up profile ids; the ledger does not join profiles), one earn entry and one lot per 100 points, all
    /// expired, and balances that match; ids from 1,000,000,000 so they never meet the API's rows. Returns the members.
    /// </summary>
    private static async Task<long> SeedDueLotsAsync(DbConnection db, Provider provider, long brandId, long programmeId, long lots, CancellationToken ct)
    {
        const long Base = 1_000_000_000;
        var members = lots / LotsPerMember;
        var past = provider == Provider.Sqlite ? "'2020-01-01 00:00:00'" : "timestamptz '2020-01-01 00:00:00+00'";
        var series = provider == Provider.Sqlite
            ? "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < {0}) SELECT n FROM s"
            : "SELECT generate_series(0, {0} - 1) AS n";
        string Series(long count) => string.Format(CultureInfo.InvariantCulture, series, count);
        await Sql.ExecuteAsync(db, $"""
            INSERT INTO loyalty_members (id, tenant_id, programme_id, profile_id, balance, pending, owed, qualifying_points, version, enrolled_at)
            SELECT {Base} + n, {brandId}, {programmeId}, {Base} + n, {100 * LotsPerMember}, 0, 0, {100 * LotsPerMember}, 0, {past} FROM ({Series(members)}) x
            """, ct, timeoutSeconds: 600);
        await Sql.ExecuteAsync(db, $"""
            INSERT INTO loyalty_entries (id, tenant_id, programme_id, member_id, kind, points, pending, account, balance_after, rule, qualifying_spend, created_at)
            SELECT {Base} + n, {brandId}, {programmeId}, {Base} + n / {LotsPerMember}, 'earn', 100, 0, 'issued', 100 * (n % {LotsPerMember} + 1), 'bench seed', 0, {past}
            FROM ({Series(lots)}) x
            """, ct, timeoutSeconds: 600);
        await Sql.ExecuteAsync(db, $"""
            INSERT INTO loyalty_lots (id, tenant_id, member_id, entry_id, granted, remaining, expires_at)
            SELECT {Base} + n, {brandId}, {Base} + n / {LotsPerMember}, {Base} + n, 100, 100, {past} FROM ({Series(lots)}) x
            """, ct, timeoutSeconds: 600);
        if (provider == Provider.Postgres)
            foreach (var table in new[] { "loyalty_members", "loyalty_entries", "loyalty_lots" })
                await Sql.ExecuteAsync(db, $"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table})); ANALYZE {table}", ct, timeoutSeconds: 600);
        return members;
    }

    private static async Task<bool> PostAsync(HttpClient http, string path, object body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        using var response = await http.SendAsync(request, ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        return response.StatusCode == HttpStatusCode.OK;
    }

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        using var _ = response;
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
