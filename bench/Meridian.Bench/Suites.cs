using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// One suite per database: the raw baselines first, then the server on a fresh database of the same kind, so that
/// every ratio divides two figures taken minutes apart on the same machine.
/// </summary>
internal static class Suites
{
    private const string InsertBaseline = "raw insert rows/s (baseline)";
    private const string CopyInsert = "raw insert rows/s, binary COPY";
    private const string SelectBaseline = "raw select by id /s (baseline)";
    private const string SelectLatency = "raw select p50 ms / p99 ms";
    private const string Get = $"GET {HttpGetBench.Path} req/s";
    private const string GetRatio = "… ratio to raw select";
    private const string GetLatency = "GET p50 ms / p99 ms";
    private const string IngestBaseline = "raw insert event rows/s, PK only (baseline)";
    private const string Ingest = $"ingest POST {IngestBench.Path} events/s";
    private const string IngestRatio = "… ratio to raw insert (PK-only)";
    private const string IngestLatency = "batch p50 ms / p99 ms";
    private const string IngestMemory = "server RSS MB idle / peak during ingest";
    private const string IngestRows = "events rows = accepted";
    private const string IngestLosses = "duplicates / rejected events / failed requests";
    private const string IngestCpu = "CPU ms per 1,000 events: server / database / bench client";
    private const string IdentityScored = "identity: identifiers scored / linked pairs in the truth";
    private const string IdentityPrecision = "identity pairwise precision (target ≥ 0.999)";
    private const string IdentityRecall = "identity pairwise recall (target ≥ 0.99)";
    private const string IdentityResolved = "events + imported rows / all resolved after s";
    private const string Lag = "lag 200 OK → profile p50 ms / p99 ms (target p99 < 1,000)";
    private const string Lookup = $"GET {LookupBench.Path} req/s";
    private const string LookupRatio = "… ratio to raw select";
    private const string LookupLatency = "lookup p50 ms / p99 ms (target p99 < 10)";
    private const string SingleLookup = $"GET {LookupBench.Path} req/s, one client";
    private const string SingleLookupLatency = "lookup p50 ms / p99 ms, one client";
    private const string SettledLookup = $"GET {LookupBench.Path} req/s, one client, database settled";
    private const string SettledLookupLatency = "lookup p50 ms / p99 ms, one client, database settled";
    private const string IdentityMemory = "server RSS MB idle / peak, identity run";
    private const string Refresh = "POST /connect/token (refresh grant) req/s";
    private const string RefreshRatio = "… ratio to raw select";
    private const string RefreshLatency = "token p50 ms / p99 ms";
    private const string UserInfo = "GET /connect/userinfo req/s";
    private const string UserInfoLatency = "userinfo p50 ms / p99 ms";

    public static async Task SqliteAsync(string serverDll, BenchOptions options, DemoEvents? events, Report report, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("meridian-bench-sqlite-").FullName;
        try
        {
            var select = options.IngestOnly ? null : await SqliteReadsAsync(serverDll, dir, options, report, ct);
            if (events is not null && options.RunsIngest) await SqliteIngestAsync(serverDll, dir, events, options, report, ct);
            if (events is not null && options.RunsIdentity) await SqliteIdentityAsync(serverDll, dir, events, select, options, report, ct);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<LoadResult> SqliteReadsAsync(string serverDll, string dir, BenchOptions options, Report report, CancellationToken ct)
    {
        var raw = $"Data Source={Path.Combine(dir, "raw.db")}";
        Console.WriteLine($"SQLite: inserting {options.Rows:N0} rows (prepared INSERT, WAL) into {dir}");
        var inserts = RawInsertBaseline.Sqlite(raw, options.Rows, ct);
        report.Set(InsertBaseline, Provider.Sqlite, Report.Rate(inserts));
        report.Set(CopyInsert, Provider.Sqlite, "n/a");
        report.Note($"SQLite baseline: prepared single-row INSERT, {BenchRows.BatchSize:N0} per transaction, journal_mode=WAL, synchronous={Pragma(raw, "synchronous")} (the driver's default; 2 = FULL).");

        Console.WriteLine("SQLite: raw select by id");
        var select = await RawSelectBaseline.SqliteAsync(raw, options.Rows, options, ct);
        report.Load(SelectBaseline, SelectLatency, Provider.Sqlite, select);

        Console.WriteLine("SQLite: starting the server");
        await using (var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, $"Data Source={Path.Combine(dir, "server.db")}", dir, ct))
            await GetAsync(server, select, Provider.Sqlite, options, report, ct);
        if (options.RunsLoyalty)
            await LoyaltyBench.RunAsync(serverDll, Provider.Sqlite, $"Data Source={Path.Combine(dir, "loyalty.db")}", dir, inserts, options, report, ct);
        return select;
    }

    private static async Task SqliteIngestAsync(string serverDll, string dir, DemoEvents events, BenchOptions options, Report report, CancellationToken ct)
    {
        Console.WriteLine($"SQLite: inserting {events.Count:N0} event lines raw, {options.IngestBatch} per multi-row INSERT and transaction");
        var baseline = RawInsertBaseline.SqliteEvents($"Data Source={Path.Combine(dir, "raw-events.db")}", events, options.IngestBatch, ct);
        report.Set(IngestBaseline, Provider.Sqlite, Report.Rate(baseline));

        Console.WriteLine("SQLite: starting a server on a fresh database for ingestion");
        var database = $"Data Source={Path.Combine(dir, "ingest.db")}";
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, database, dir, ct);
        var result = await IngestAsync(server, events, Provider.Sqlite, options, async ct =>
        {
            await using var connection = new SqliteConnection(database + ";Pooling=False");
            await connection.OpenAsync(ct);
            return await Sql.ScalarAsync<long>(connection, "SELECT count(*) FROM events", ct);
        }, () => null, ct);
        ReportIngest(report, Provider.Sqlite, baseline, result);
    }

    public static async Task PostgresAsync(string serverDll, BenchOptions options, DemoEvents? events, Report report, CancellationToken ct)
    {
        await using var cluster = await PostgresCluster.StartAsync(ct);
        if (cluster is null)
        {
            report.Note($"PostgreSQL: skipped: {PostgresCluster.ExternalVariable} is not set and there is no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql).");
            return;
        }
        Console.WriteLine($"PostgreSQL: {cluster.Description}");
        var select = options.IngestOnly ? null : await PostgresReadsAsync(serverDll, cluster, options, report, ct);
        if (events is not null && options.RunsIngest) await PostgresIngestAsync(serverDll, cluster, events, options, report, ct);
        if (events is not null && options.RunsIdentity) await PostgresIdentityAsync(serverDll, cluster, events, select, options, report, ct);
    }

    private static async Task<LoadResult> PostgresReadsAsync(string serverDll, PostgresCluster cluster, BenchOptions options, Report report, CancellationToken ct)
    {
        report.Note($"PostgreSQL: {cluster.Description}; baseline: one prepared {BenchRows.BatchSize:N0}-row INSERT per transaction; COPY: one binary COPY per {BenchRows.BatchSize:N0} rows.");
        await using var db = NpgsqlDataSource.Create(await cluster.CreateDatabaseAsync("bench_raw", ct));

        Console.WriteLine($"PostgreSQL: inserting {options.Rows:N0} rows (multi-row INSERT, then binary COPY)");
        var inserts = await RawInsertBaseline.PostgresMultiRowAsync(db, options.Rows, ct);
        report.Set(InsertBaseline, Provider.Postgres, Report.Rate(inserts));
        report.Set(CopyInsert, Provider.Postgres, Report.Rate(await RawInsertBaseline.PostgresCopyAsync(db, options.Rows, ct)));

        Console.WriteLine("PostgreSQL: raw select by id");
        var select = await RawSelectBaseline.PostgresAsync(db, options.Rows, options, ct);
        report.Load(SelectBaseline, SelectLatency, Provider.Postgres, select);

        Console.WriteLine("PostgreSQL: starting the server");
        var serverDb = await cluster.CreateDatabaseAsync("bench_server", ct);
        await using (var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, serverDb, Path.GetTempPath(), ct))
            await GetAsync(server, select, Provider.Postgres, options, report, ct);
        if (options.RunsLoyalty)
            await LoyaltyBench.RunAsync(serverDll, Provider.Postgres, await cluster.CreateDatabaseAsync("bench_loyalty", ct), Path.GetTempPath(), inserts, options, report, ct);
        return select;
    }

    private static async Task PostgresIngestAsync(string serverDll, PostgresCluster cluster, DemoEvents events, BenchOptions options, Report report, CancellationToken ct)
    {
        double baseline;
        await using (var raw = NpgsqlDataSource.Create(await cluster.CreateDatabaseAsync("bench_raw_events", ct)))
        {
            Console.WriteLine($"PostgreSQL: inserting {events.Count:N0} event lines raw, {options.IngestBatch} per multi-row INSERT and transaction");
            baseline = await RawInsertBaseline.PostgresEventsAsync(raw, events, options.IngestBatch, ct);
        }
        report.Set(IngestBaseline, Provider.Postgres, Report.Rate(baseline));

        Console.WriteLine("PostgreSQL: starting a server on a fresh database for ingestion");
        var database = await cluster.CreateDatabaseAsync("bench_ingest", ct);
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, database, Path.GetTempPath(), ct);
        await using var waits = PostgresWaitSampler.Start(database);
        var result = await IngestAsync(server, events, Provider.Postgres, options, async ct =>
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return await Sql.ScalarAsync<long>(connection, "SELECT count(*) FROM events", ct);
        }, cluster.ProcessorTime, ct);
        report.Note($"PostgreSQL: during ingestion the server's backends were (sampled every 100 ms, idle connections left out): {await waits.StopAsync()}.");
        ReportIngest(report, Provider.Postgres, baseline, result);
    }

    private static async Task SqliteIdentityAsync(string serverDll, string dir, DemoEvents events, LoadResult? select, BenchOptions options, Report report, CancellationToken ct)
    {
        Console.WriteLine("SQLite: starting a server on a fresh database for identity resolution");
        var database = $"Data Source={Path.Combine(dir, "identity.db")}";
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, database, dir, ct);
        var result = await IdentityBench.RunAsync(server, events, options, async ct =>
        {
            var connection = new SqliteConnection(database + ";Pooling=False");
            await connection.OpenAsync(ct);
            return connection;
        }, ct);
        ReportIdentity(report, Provider.Sqlite, select, result);
    }

    private static async Task PostgresIdentityAsync(string serverDll, PostgresCluster cluster, DemoEvents events, LoadResult? select, BenchOptions options, Report report, CancellationToken ct)
    {
        Console.WriteLine("PostgreSQL: starting a server on a fresh database for identity resolution");
        var database = await cluster.CreateDatabaseAsync("bench_identity", ct);
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, database, Path.GetTempPath(), ct);
        var result = await IdentityBench.RunAsync(server, events, options, async ct =>
        {
            var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return (DbConnection)connection;
        }, ct);
        ReportIdentity(report, Provider.Postgres, select, result);
    }

    private static void ReportIdentity(Report report, Provider provider, LoadResult? select, IdentityResult result)
    {
        var score = result.Score;
        report.Set(IdentityScored, provider, $"{Report.Rate(score.Identifiers)} / {Report.Rate(score.TruePairs)}");
        report.Set(IdentityPrecision, provider, score.Precision.ToString("0.0000", CultureInfo.InvariantCulture));
        report.Set(IdentityRecall, provider, score.Recall.ToString("0.0000", CultureInfo.InvariantCulture));
        report.Set(IdentityResolved, provider, $"{Report.Rate(result.Events)} + {Report.Rate(result.ImportedRows)} / {result.Resolved.TotalSeconds:0}");
        var lag = result.Lag;
        report.Set(Lag, provider, lag.Seen == 0 ? "none seen" : $"{Report.Ms(lag.PercentileMs(50))} / {Report.Ms(lag.PercentileMs(99))}");
        foreach (var (rate, paced) in result.PacedLag)
            report.Set($"lag p50 ms / p99 ms at a steady {rate:N0} events/s", provider,
                paced.Seen == 0 ? "none seen" : $"{Report.Ms(paced.PercentileMs(50))} / {Report.Ms(paced.PercentileMs(99))}");
        report.Load(Lookup, LookupLatency, provider, result.Lookup, select is null ? null : (LookupRatio, select.PerSecond));
        report.Load(SingleLookup, SingleLookupLatency, provider, result.SingleLookup);
        void SteadyLookups(IReadOnlyList<(int Rate, LoadResult Load)> runs, string when)
        {
            foreach (var (rate, load) in runs)
                report.Load($"GET {LookupBench.Path} answered/s at a steady {rate:N0}/s{when}", $"lookup p50 ms / p99 ms at a steady {rate:N0}/s{when}", provider, load);
        }
        SteadyLookups(result.PacedLookup, "");
        report.Load(SettledLookup, SettledLookupLatency, provider, result.SettledLookup);
        SteadyLookups(result.SettledPacedLookup, ", database settled");
        report.Set(IdentityMemory, provider, $"{Report.Megabytes(result.IdleRssBytes)} / {Report.Megabytes(result.PeakRssBytes)}");
        report.Note($"{provider.Title()}: identity: {Report.Rate(score.Identifiers)} identifiers in {Report.Rate(score.Profiles)} profiles, "
            + $"{Report.Rate(score.Unresolved)} in none; pairs in one profile {Report.Rate(score.PredictedPairs)} ({Report.Rate(score.CorrectPairs)} of one person), "
            + $"linked pairs {Report.Rate(score.TruePairs)} ({Report.Rate(score.FoundPairs)} in one profile); batch load {result.Ingest.TotalSeconds:0.0} s, "
            + $"{Report.Rate(result.FailedRequests)} failed requests; lag probes: {lag.Sent:N0} sent, {lag.FailedSends:N0} failed, {lag.Seen:N0} seen in their profile.");
        if (score.MixedComponents > 0)
            report.Note($"{provider.Title()}: identity: {Report.Rate(score.MixedComponents)} groups of linked identifiers span two people: the truth's links are wrong, not the server.");
        foreach (var note in score.Notes) report.Note($"{provider.Title()}: identity: {note}");
    }

    private static async Task<IngestResult> IngestAsync(ServerProcess server, DemoEvents events, Provider provider, BenchOptions options,
        Func<CancellationToken, Task<long>> countEventRows, Func<TimeSpan?> databaseCpu, CancellationToken ct)
    {
        Console.WriteLine($"{provider.Title()}: POST {IngestBench.Path}, {events.Count:N0} events, {options.IngestBatch} per request, {options.IngestConcurrency} clients, at {server.BaseAddress}");
        var result = await IngestBench.RunAsync(server, events, options, countEventRows, databaseCpu, ct);
        Console.WriteLine($"{provider.Title()}: {result.Answered:N0} events answered in {result.Elapsed.TotalSeconds:0.0} s: {result.Accepted:N0} accepted, "
            + $"{result.Duplicates:N0} duplicates, {result.Rejects.Values.Sum():N0} rejected, {result.FailedRequests:N0} failed requests; {result.RowsInTable:N0} rows in events");
        return result;
    }

    private static void ReportIngest(Report report, Provider provider, double baseline, IngestResult result)
    {
        report.Set(Ingest, provider, Report.Rate(result.EventsPerSecond));
        report.Set(IngestRatio, provider, Report.Ratio(result.EventsPerSecond, baseline));
        report.Set(IngestLatency, provider, $"{Report.Ms(result.PercentileMs(50))} / {Report.Ms(result.PercentileMs(99))}");
        var cpu = result.CpuMsPerThousand;
        // SQLite runs inside the server; an external PostgreSQL's processes are not ours to see.
        var database = cpu.Database is { } ms ? Report.Rate(ms) : provider == Provider.Sqlite ? "in server" : "?";
        report.Set(IngestCpu, provider, $"{Report.Rate(cpu.Server)} / {database} / {Report.Rate(cpu.Client)}");
        report.Set(IngestMemory, provider, $"{Report.Megabytes(result.IdleRssBytes)} / {Report.Megabytes(result.PeakRssBytes)}");
        report.Set(IngestRows, provider, result.RowsInTable == result.Accepted
            ? $"yes, {Report.Rate(result.RowsInTable)}"
            : $"NO: {Report.Rate(result.RowsInTable)} rows, {Report.Rate(result.Accepted)} accepted");
        report.Set(IngestLosses, provider, $"{Report.Rate(result.Duplicates)} / {Report.Rate(result.Rejects.Values.Sum())} / {Report.Rate(result.FailedRequests)}");
        if (result.Rejects.Count > 0)
            report.Note($"{provider.Title()}: rejects by reason: " + string.Join(", ", result.Rejects.OrderByDescending(r => r.Value).Select(r => $"{r.Key} {r.Value:N0}")));
        if (result.FailedRequests > 0)
            report.Note($"{provider.Title()}: first failed ingest request: {result.FirstFailure}");
    }

    private static string Pragma(string connectionString, string name)
    {
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"PRAGMA {name};";
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) ?? "?";
    }

    private static async Task GetAsync(ServerProcess server, LoadResult select, Provider provider, BenchOptions options, Report report, CancellationToken ct)
    {
        Console.WriteLine($"{provider.Title()}: GET {HttpGetBench.Path} at {server.BaseAddress}");
        var get = await HttpGetBench.RunAsync(server, options, ct);
        report.Load(Get, GetLatency, provider, get, (GetRatio, select.PerSecond));
        Console.WriteLine($"{provider.Title()}: the OpenID Connect provider (refresh grant, userinfo)");
        var login = await LoginBench.RunAsync(server, options, ct);
        report.Load(Refresh, RefreshLatency, provider, login.Refresh, (RefreshRatio, select.PerSecond));
        report.Load(UserInfo, UserInfoLatency, provider, login.UserInfo);
    }
}
