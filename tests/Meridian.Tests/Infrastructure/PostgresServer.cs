using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Meridian.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server for the test run: the one named by <c>MERIDIAN_TEST_PG</c> (a connection string with
/// rights to create databases), or else a throwaway cluster started here from the machine's PostgreSQL binaries
/// (as the <c>postgres</c> user when the tests run as root) and removed when the run ends.
/// Every test class gets a database of its own.
/// </summary>
public static class PostgresServer
{
    private static readonly Lazy<Task<string>> Admin = new(StartAsync);
    private static string? clusterDir;

    public static async Task<string> CreateDatabaseAsync(string prefix = "t")
    {
        var admin = await Admin.Value;
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(40, prefix.Length + 33)];
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true, MaxPoolSize = 30 }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing the connections still open to it.</summary>
    public static async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        await using var connection = new NpgsqlConnection(await Admin.Value);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string> StartAsync()
    {
        if (Environment.GetEnvironmentVariable("MERIDIAN_TEST_PG") is { Length: > 0 } given) return given;

        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null)
            throw new InvalidOperationException("PostgreSQL is not installed: run ./test.sh (it installs it) or set MERIDIAN_TEST_PG to a server's connection string.");

        var asRoot = Environment.UserName == "root";
        await SweepAsync(asRoot, bin);
        clusterDir = Path.Combine(Path.GetTempPath(), $"meridian-pg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]);
        Directory.CreateDirectory(clusterDir);
        if (asRoot) await RunAsync("chown", ["-R", "postgres:postgres", clusterDir]);
        var port = FreePort();
        var data = Path.Combine(clusterDir, "data");
        await RunPgAsync(asRoot, Path.Combine(bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        await RunPgAsync(asRoot, Path.Combine(bin, "pg_ctl"), ["-D", data, "-w", "-t", "60", "-l", Path.Combine(clusterDir, "log"), "start", "-o",
            $"-p {port} -k {clusterDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 -c shared_buffers=128MB"]);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop(asRoot, bin, data);
        return $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=false;Timeout=30";
    }

    /// <summary>
    /// Stops and removes the clusters of earlier runs whose test process is gone (the folder is named
    /// meridian-pg-&lt;pid&gt;-&lt;guid&gt;): a test host that was killed, or ended before its exit handler finished, leaves its
    /// cluster behind, and <c>dotnet test</c> run by hand (not through test.sh) would otherwise pile them up.
    /// </summary>
    private static async Task SweepAsync(bool asRoot, string bin)
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), "meridian-pg-*"))
        {
            if (Path.GetFileName(dir).Split('-') is not [_, _, var pidText, ..] || !int.TryParse(pidText, out var pid) || Directory.Exists($"/proc/{pid}")) continue;
            try
            {
                if (File.Exists(Path.Combine(dir, "data", "postmaster.pid")))
                    await RunPgAsync(asRoot, Path.Combine(bin, "pg_ctl"), ["-D", Path.Combine(dir, "data"), "-m", "immediate", "stop"]);
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                // another run may be sweeping the same folder, or its server already stopped: leave it for the next sweep
            }
        }
    }

    private static void Stop(bool asRoot, string bin, string data)
    {
        try
        {
            RunPgAsync(asRoot, Path.Combine(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "stop"]).GetAwaiter().GetResult();
            Directory.Delete(clusterDir!, recursive: true);
        }
        catch
        {
            // best effort at exit: the next run's SweepAsync removes what is left
        }
    }

    private static Task RunPgAsync(bool asRoot, string exe, string[] args) =>
        asRoot ? RunAsync("runuser", ["-u", "postgres", "--", exe, .. args]) : RunAsync(exe, args);

    private static async Task RunAsync(string exe, string[] args)
    {
        var info = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed ({process.ExitCode}): {await stderr}{await stdout}");
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
