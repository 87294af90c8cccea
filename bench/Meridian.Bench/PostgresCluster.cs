using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// The PostgreSQL the bench measures: the server named by <c>MERIDIAN_BENCH_PG</c> (a connection string with rights
/// to create databases), or else a throwaway cluster started from the machine's binaries (as the <c>postgres</c> user
/// when the bench runs as root) and removed on dispose. Unlike the test cluster, fsync stays on: the baselines and
/// the server must pay the same durability.
/// </summary>
internal sealed class PostgresCluster : IAsyncDisposable
{
    public const string ExternalVariable = "MERIDIAN_BENCH_PG";

    private readonly string admin;
    private readonly (string Bin, string Dir, bool AsRoot)? owned;
    private readonly List<string> created = [];

    private PostgresCluster(string admin, (string, string, bool)? owned)
    {
        this.admin = admin;
        this.owned = owned;
    }

    public string Description => owned is null
        ? $"{ExternalVariable} ({new NpgsqlConnectionStringBuilder(admin).Host})"
        : $"throwaway cluster from {owned.Value.Bin}, fsync on";

    /// <summary>Null when there is neither <c>MERIDIAN_BENCH_PG</c> nor a PostgreSQL installation.</summary>
    public static async Task<PostgresCluster?> StartAsync(CancellationToken ct)
    {
        if (Environment.GetEnvironmentVariable(ExternalVariable) is { Length: > 0 } given)
            return new PostgresCluster(given, null);

        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null) return null;

        var dir = Path.Combine(Path.GetTempPath(), $"meridian-bench-pg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]);
        Directory.CreateDirectory(dir);
        var asRoot = Environment.UserName == "root";
        var port = FreePort();
        var cluster = new PostgresCluster($"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=false;Timeout=30", (bin, dir, asRoot));
        try
        {
            if (asRoot) await RunAsync("chown", ["-R", "postgres:postgres", dir], ct);
            // --no-sync only skips flushing initdb's own files; the running server keeps fsync on. shared_buffers as a
            // server is set up (PostgreSQL's 128 MB default is meant to start anywhere; its manual suggests a quarter of
            // memory): at 1,000,000 profiles the audiences' tables and indexes are ~1 GB, and with 128 MB a brand-wide
            // count spent half its time re-reading pages from the OS cache (1.2-1.5 s, 0.7-0.8 s with 2 GB).
            await cluster.RunPgAsync("initdb", ["-D", cluster.Data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], ct);
            await cluster.RunPgAsync("pg_ctl", ["-D", cluster.Data, "-w", "-t", "60", "-l", Path.Combine(dir, "log"), "start", "-o",
                $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=2GB"], ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>A new database (dropped on dispose when the server is not ours); returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix, CancellationToken ct)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..(prefix.Length + 13)];
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync(ct);
            await Sql.ExecuteAsync(connection, $"CREATE DATABASE \"{name}\"", ct);
        }
        created.Add(name);
        return new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true, MaxPoolSize = 100 }.ConnectionString;
    }

    private string Data => Path.Combine(owned!.Value.Dir, "data");

    /// <summary>CPU time used so far by the cluster's processes (postmaster, backends, WAL writer, checkpointer); null for a server that is not ours.</summary>
    public TimeSpan? ProcessorTime()
    {
        if (owned is null) return null;
        var pidFile = Path.Combine(Data, "postmaster.pid");
        try
        {
            return int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var postmaster) ? ProcFs.TreeProcessorTime(postmaster) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (owned is not { } cluster)
        {
            // Someone else's server: leave it as found, unless MERIDIAN_BENCH_KEEP=1 asks to keep the run's databases
            // for a look afterwards (a server pointed at one, query plans); drop them by hand.
            NpgsqlConnection.ClearAllPools();
            if (Environment.GetEnvironmentVariable("MERIDIAN_BENCH_KEEP") is not null)
            {
                Console.WriteLine($"kept PostgreSQL databases: {string.Join(", ", created)}");
                return;
            }
            foreach (var name in created)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(admin);
                    await connection.OpenAsync();
                    await Sql.ExecuteAsync(connection, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None);
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                {
                    Console.Error.WriteLine($"could not drop database {name}: {ex.Message}");
                }
            }
            return;
        }
        try
        {
            if (File.Exists(Path.Combine(Data, "postmaster.pid")))
                await RunPgAsync("pg_ctl", ["-D", Data, "-m", "fast", "-w", "stop"], CancellationToken.None);
        }
        catch (InvalidOperationException ex)
        {
            Console.Error.WriteLine($"could not stop the PostgreSQL cluster in {cluster.Dir}: {ex.Message}");
        }
        try
        {
            Directory.Delete(cluster.Dir, recursive: true);
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine($"could not delete {cluster.Dir}: {ex.Message}");
        }
    }

    private Task RunPgAsync(string tool, string[] args, CancellationToken ct)
    {
        var (bin, _, asRoot) = owned!.Value;
        var exe = Path.Combine(bin, tool);
        return asRoot ? RunAsync("runuser", ["-u", "postgres", "--", exe, .. args], ct) : RunAsync(exe, args, ct);
    }

    private static async Task RunAsync(string exe, string[] args, CancellationToken ct)
    {
        var info = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        // Not cancelled midway: a half-started cluster is harder to clean up than a finished start.
        await process.WaitForExitAsync(CancellationToken.None);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed ({process.ExitCode}): {await stderr}{await stdout}");
        ct.ThrowIfCancellationRequested();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// What the database's client backends are doing, sampled from <c>pg_stat_activity</c> every 100 ms while a load runs:
/// running, waiting for a lock (<c>Lock:transactionid</c> is a row lock), for the WAL to reach the disk, or for the
/// application to send its next statement (<c>idle in transaction</c>). Shows whether the database or the server is the wait.
/// </summary>
internal sealed class PostgresWaitSampler : IAsyncDisposable
{
    private readonly CancellationTokenSource stop = new();
    private readonly Dictionary<string, long> samples = [];
    private readonly Task loop;
    private string? error;

    private PostgresWaitSampler(string connectionString) => loop = Task.Run(() => SampleAsync(connectionString));

    public static PostgresWaitSampler Start(string connectionString) => new(connectionString);

    private async Task SampleAsync(string connectionString)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(stop.Token);
            await using var query = new NpgsqlCommand("""
                SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running')
                            ELSE state || coalesce(' (' || wait_event || ')', '') END
                  FROM pg_stat_activity
                 WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                """, connection);
            await query.PrepareAsync(stop.Token);
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                await using var reader = await query.ExecuteReaderAsync(stop.Token);
                while (await reader.ReadAsync(stop.Token))
                {
                    var what = reader.IsDBNull(0) ? "?" : reader.GetString(0);
                    samples[what] = samples.GetValueOrDefault(what) + 1;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
        catch (NpgsqlException ex)
        {
            error = ex.Message;
        }
    }

    /// <summary>Stops sampling; returns each state's share of the backend samples, the largest first, leaving out idle connections.</summary>
    public async Task<string> StopAsync()
    {
        await stop.CancelAsync();
        await loop;
        var busy = samples.Where(s => !s.Key.StartsWith("idle (", StringComparison.Ordinal) && s.Key != "idle").ToList();
        var total = busy.Sum(s => s.Value);
        if (error is not null) return $"not sampled ({error})";
        return total == 0 ? "no busy backends sampled" : string.Join(", ", busy.OrderByDescending(s => s.Value).Select(s => $"{s.Key} {100.0 * s.Value / total:0}%"));
    }

    public async ValueTask DisposeAsync()
    {
        if (!stop.IsCancellationRequested) await StopAsync();
        stop.Dispose();
    }
}
