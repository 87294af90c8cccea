using System.Collections.Concurrent;
using System.Diagnostics;

namespace Meridian.Bench;

/// <summary>
/// The real server as a child process on a free loopback port, configured only through environment variables
/// (as an operator would), with a fixed admin key and a rate limit high enough never to be what is measured.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    public const string AdminKey = "mdn_sk_BenchAdmin0000000000000000000000";

    private readonly Process process;
    // The last lines the server printed, shown if it fails to start; the pipes must be drained anyway.
    private readonly ConcurrentQueue<string> output = new();

    public Uri BaseAddress { get; }

    /// <summary>The server's process id (<c>dotnet meridian.dll</c> runs the app in the host process itself), for sampling its memory.</summary>
    public int Pid => process.Id;

    /// <summary>CPU time (user and kernel) the server has used since it started.</summary>
    public TimeSpan ProcessorTime
    {
        get
        {
            process.Refresh();
            return process.TotalProcessorTime;
        }
    }

    private ServerProcess(Process process, Uri baseAddress)
    {
        this.process = process;
        BaseAddress = baseAddress;
    }

    /// <summary>Locates the built server: <c>--server</c>, or the Release build beside the repository root, built now if missing.</summary>
    public static async Task<string> LocateAsync(BenchOptions options, CancellationToken ct)
    {
        if (options.ServerDll is { } given)
            return File.Exists(given) ? given : throw new FileNotFoundException($"--server {given}: no such file.");

        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Meridian.slnx"))) root = root.Parent;
        if (root is null) throw new DirectoryNotFoundException("Cannot find the repository root (Meridian.slnx) above the bench; pass --server <path to meridian.dll>.");

        var dll = Path.Combine(root.FullName, "src", "Meridian.Server", "bin", "Release", "net10.0", "meridian.dll");
        if (File.Exists(dll)) return dll;

        Console.WriteLine($"{dll} is missing: building the server (Release).");
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = root.FullName, ArgumentList = { "build", "-c", "Release", "src/Meridian.Server" } };
        using var build = Process.Start(info)!;
        await build.WaitForExitAsync(ct);
        return build.ExitCode == 0 && File.Exists(dll) ? dll : throw new InvalidOperationException($"dotnet build -c Release src/Meridian.Server failed ({build.ExitCode}).");
    }

    /// <summary>A client of the admin API with the bootstrap admin key, acting on one brand.</summary>
    public HttpClient AdminClient(string brand, int connections = int.MaxValue)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseCookies = false }) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        http.DefaultRequestHeaders.Add("Meridian-Brand", brand);
        return http;
    }

    /// <param name="settings">Extra configuration for this server (<c>Meridian__Messaging__Delivery__Enabled</c>...), as environment variables.</param>
    public static async Task<ServerProcess> StartAsync(string dll, Provider provider, string connectionString, string workDir, CancellationToken ct,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var baseAddress = new Uri($"http://127.0.0.1:{PostgresCluster.FreePort()}");
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            ArgumentList = { dll, "--urls", baseAddress.ToString().TrimEnd('/') },
            Environment =
            {
                ["Meridian__Database__Provider"] = provider.ToString(),
                ["Meridian__Database__ConnectionString"] = connectionString,
                ["Meridian__Bootstrap__AdminApiKey"] = AdminKey,
                ["Meridian__RateLimit__PermitsPerSecond"] = "1000000",
                ["Meridian__RateLimit__Burst"] = "1000000",
                ["Meridian__RateLimit__IngestPermitsPerSecond"] = "1000000",
                ["Meridian__RateLimit__IngestBurst"] = "1000000",
                ["Meridian__Login__RequireHttps"] = "false", // the bench speaks plain http on loopback
                ["Logging__LogLevel__Default"] = "Warning",
            },
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var process = new Process { StartInfo = info };
        var server = new ServerProcess(process, baseAddress);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitReadyAsync(ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Where to copy every line the server prints, to study a run afterwards (<c>MERIDIAN_BENCH_SERVER_LOG</c>).</summary>
    private static readonly string? LogFile = Environment.GetEnvironmentVariable("MERIDIAN_BENCH_SERVER_LOG");
    private static readonly Lock LogLock = new();

    private void Keep(string? line)
    {
        if (line is null) return;
        if (LogFile is not null)
            lock (LogLock) File.AppendAllText(LogFile, $"{DateTime.UtcNow:HH:mm:ss.fff} {line}\n");
        output.Enqueue(line);
        while (output.Count > 40) output.TryDequeue(out _);
    }

    private async Task WaitReadyAsync(CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.GetTimestamp() + 120 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"the server exited ({process.ExitCode}) before it was ready:\n{string.Join('\n', output)}");
            try
            {
                using var response = await http.GetAsync("/health/ready", ct);
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // listening but too slow to answer yet (a loaded machine)
            }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"the server was not ready within 120 s:\n{string.Join('\n', output)}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }
        process.Dispose();
    }
}
