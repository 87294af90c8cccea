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

    public static async Task SqliteAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("meridian-bench-sqlite-").FullName;
        try
        {
            var raw = $"Data Source={Path.Combine(dir, "raw.db")}";
            Console.WriteLine($"SQLite: inserting {options.Rows:N0} rows (prepared INSERT, WAL) into {dir}");
            report.Set(InsertBaseline, Provider.Sqlite, Report.Rate(RawInsertBaseline.Sqlite(raw, options.Rows, ct)));
            report.Set(CopyInsert, Provider.Sqlite, "n/a");
            report.Note($"SQLite baseline: prepared single-row INSERT, {BenchRows.BatchSize:N0} per transaction, journal_mode=WAL, synchronous={Pragma(raw, "synchronous")} (the driver's default; 2 = FULL).");

            Console.WriteLine("SQLite: raw select by id");
            var select = await RawSelectBaseline.SqliteAsync(raw, options.Rows, options, ct);
            report.Load(SelectBaseline, SelectLatency, Provider.Sqlite, select);

            Console.WriteLine("SQLite: starting the server");
            await using var server = await ServerProcess.StartAsync(serverDll, Provider.Sqlite, $"Data Source={Path.Combine(dir, "server.db")}", dir, ct);
            await GetAsync(server, select, Provider.Sqlite, options, report, ct);
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
            report.Note($"PostgreSQL: skipped: {PostgresCluster.ExternalVariable} is not set and there is no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql).");
            return;
        }
        Console.WriteLine($"PostgreSQL: {cluster.Description}");
        report.Note($"PostgreSQL: {cluster.Description}; baseline: one prepared {BenchRows.BatchSize:N0}-row INSERT per transaction; COPY: one binary COPY per {BenchRows.BatchSize:N0} rows.");
        await using var db = NpgsqlDataSource.Create(await cluster.CreateDatabaseAsync("bench_raw", ct));

        Console.WriteLine($"PostgreSQL: inserting {options.Rows:N0} rows (multi-row INSERT, then binary COPY)");
        report.Set(InsertBaseline, Provider.Postgres, Report.Rate(await RawInsertBaseline.PostgresMultiRowAsync(db, options.Rows, ct)));
        report.Set(CopyInsert, Provider.Postgres, Report.Rate(await RawInsertBaseline.PostgresCopyAsync(db, options.Rows, ct)));

        Console.WriteLine("PostgreSQL: raw select by id");
        var select = await RawSelectBaseline.PostgresAsync(db, options.Rows, options, ct);
        report.Load(SelectBaseline, SelectLatency, Provider.Postgres, select);

        Console.WriteLine("PostgreSQL: starting the server");
        var serverDb = await cluster.CreateDatabaseAsync("bench_server", ct);
        await using var server = await ServerProcess.StartAsync(serverDll, Provider.Postgres, serverDb, Path.GetTempPath(), ct);
        await GetAsync(server, select, Provider.Postgres, options, report, ct);
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
    }
}
