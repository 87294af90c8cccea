using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Meridian.Bench;

/// <summary>What one ingest run did: every figure comes from the server's answers, except the rows counted in the table.</summary>
internal sealed record IngestResult(
    long Sent, long Answered, long Accepted, long Duplicates, long FailedRequests, string? FirstFailure,
    IReadOnlyDictionary<string, long> Rejects, TimeSpan Elapsed, long[] SortedLatencyTicks, long IdleRssBytes, long PeakRssBytes, long RowsInTable,
    TimeSpan ServerCpu, TimeSpan? DatabaseCpu, TimeSpan ClientCpu)
{
    /// <summary>CPU milliseconds per 1,000 events answered: where the cores went (database null when it runs in the server, or elsewhere).</summary>
    public (double Server, double? Database, double Client) CpuMsPerThousand =>
        (ServerCpu.TotalMilliseconds * 1000 / Answered, DatabaseCpu?.TotalMilliseconds * 1000 / Answered, ClientCpu.TotalMilliseconds * 1000 / Answered);

    /// <summary>Events in requests answered 200 (accepted, duplicate or rejected: each was stored somewhere) per second of the whole run.</summary>
    public double EventsPerSecond => Answered / Elapsed.TotalSeconds;

    public double PercentileMs(double p) => new LoadResult(0, 0, Elapsed, SortedLatencyTicks).PercentileMs(p);
}

/// <summary>
/// Ingestion as a customer's SDKs do it: a source created through the admin API, then the demo events sent as
/// <c>POST /v1/batch</c> requests (write key as the HTTP Basic user name) by C concurrent clients until all are sent,
/// while the server's resident memory is sampled. At the end the <c>events</c> table is counted directly.
/// </summary>
internal static class IngestBench
{
    public const string Path = "/v1/batch";
    private static readonly byte[] Open = "{\"batch\":["u8.ToArray();
    private static readonly byte[] Close = "]}"u8.ToArray();

    /// <param name="databaseCpu">CPU time of the database server's processes, when they are ours to see.</param>
    public static async Task<IngestResult> RunAsync(ServerProcess server, DemoEvents events, BenchOptions options,
        Func<CancellationToken, Task<long>> countEventRows, Func<TimeSpan?> databaseCpu, CancellationToken ct)
    {
        var (_, writeKey) = await CreateSourceAsync(server, "demo", "app", ct);
        await using var memory = RssSampler.Start(server.Pid);
        var serverCpu = server.ProcessorTime;
        var dbCpu = databaseCpu();
        var clientCpu = Process.GetCurrentProcess().TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        var results = await SendAsync(server, writeKey, events.Batches(options.IngestBatch), options.IngestConcurrency, ct);
        var elapsed = Stopwatch.GetElapsedTime(started);
        serverCpu = server.ProcessorTime - serverCpu;
        dbCpu = databaseCpu() - dbCpu;
        clientCpu = Process.GetCurrentProcess().TotalProcessorTime - clientCpu;
        var peak = await memory.StopAsync();

        var latencies = results.SelectMany(r => r.Latencies).ToArray();
        Array.Sort(latencies);
        var rejects = results.SelectMany(r => r.Rejects).GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.Sum(r => r.Value));
        return new IngestResult(
            results.Sum(r => r.Sent), results.Sum(r => r.Answered), results.Sum(r => r.Accepted), results.Sum(r => r.Duplicates),
            results.Sum(r => r.Failed), results.Select(r => r.FirstFailure).FirstOrDefault(f => f is not null), rejects,
            elapsed, latencies, memory.FirstBytes, peak, await countEventRows(ct), serverCpu, dbCpu, clientCpu);
    }

    /// <summary>Sends the batches as <c>POST /v1/batch</c> with the source's write key, from C concurrent clients, until all are sent.</summary>
    public static async Task<ClientResult[]> SendAsync(ServerProcess server, string writeKey, IEnumerable<byte[][]> source, int concurrency, CancellationToken ct)
    {
        using var http = WriteKeyClient(server, writeKey, concurrency);

        // One reader fills a short queue, so the file streams through and a slow disk would show as idle clients, not as memory.
        var batches = Channel.CreateBounded<byte[][]>(new BoundedChannelOptions(concurrency * 2) { SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = Task.Run(async () =>
        {
            try
            {
                foreach (var batch in source) await batches.Writer.WriteAsync(batch, stop.Token);
                batches.Writer.Complete();
            }
            catch (Exception ex)
            {
                batches.Writer.Complete(ex);
            }
        }, CancellationToken.None);
        var clients = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            try
            {
                return await ClientAsync(http, batches.Reader, stop.Token);
            }
            catch
            {
                // One client that cannot go on (the server died, the key was refused) stops the others.
                await stop.CancelAsync();
                throw;
            }
        }).ToArray();
        var results = await Task.WhenAll(clients);
        await reader;
        return results;
    }

    /// <summary>A client of the tracking API: the write key as the HTTP Basic user name, as the Segment SDKs send it.</summary>
    public static HttpClient WriteKeyClient(ServerProcess server, string writeKey, int connections) =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseCookies = false })
        {
            BaseAddress = server.BaseAddress,
            Timeout = TimeSpan.FromMinutes(2),
            DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":"))) },
        };

    /// <summary>A source of a brand through the admin API, as an operator would create one; returns its id and write key.</summary>
    public static async Task<(long Id, string WriteKey)> CreateSourceAsync(ServerProcess server, string brand, string channel, CancellationToken ct)
    {
        using var http = server.AdminClient(brand);
        using var response = await http.PostAsJsonAsync("/api/v1/sources", new { name = $"bench-{channel}", channel }, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.Created)
            throw new InvalidOperationException($"POST /api/v1/sources answered {(int)response.StatusCode}: {body}");
        using var json = JsonDocument.Parse(body);
        return (json.RootElement.GetProperty("source").GetProperty("id").GetInt64(), json.RootElement.GetProperty("writeKey").GetString()
            ?? throw new InvalidOperationException($"POST /api/v1/sources returned no writeKey: {body}"));
    }

    public sealed class ClientResult
    {
        public List<long> Latencies { get; } = new(16 * 1024);
        public Dictionary<string, long> Rejects { get; } = [];
        public long Sent, Answered, Accepted, Duplicates, Failed;
        public string? FirstFailure;
    }

    private sealed record BatchAnswer(int Accepted, int Duplicates, List<RejectedAnswer>? Rejected);

    private sealed record RejectedAnswer(string Reason);

    private static async Task<ClientResult> ClientAsync(HttpClient http, ChannelReader<byte[][]> batches, CancellationToken ct)
    {
        var result = new ClientResult();
        await foreach (var batch in batches.ReadAllAsync(ct))
        {
            using var content = new ByteArrayContent(Body(batch));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            var before = Stopwatch.GetTimestamp();
            using var response = await http.PostAsync(Path, content, ct);
            var answer = await response.Content.ReadAsByteArrayAsync(ct);
            var after = Stopwatch.GetTimestamp();
            result.Sent += batch.Length;
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.NotFound)
                throw new InvalidOperationException($"POST {Path} answered {(int)response.StatusCode}: {Encoding.UTF8.GetString(answer)}");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                result.Failed++;
                result.FirstFailure ??= $"{(int)response.StatusCode} {Encoding.UTF8.GetString(answer)}";
                continue;
            }
            result.Latencies.Add(after - before);
            result.Answered += batch.Length;
            var counts = JsonSerializer.Deserialize<BatchAnswer>(answer, JsonSerializerOptions.Web)
                ?? throw new InvalidOperationException($"POST {Path} answered 200 without a body.");
            result.Accepted += counts.Accepted;
            result.Duplicates += counts.Duplicates;
            foreach (var reject in counts.Rejected ?? [])
                result.Rejects[reject.Reason] = result.Rejects.GetValueOrDefault(reject.Reason) + 1;
        }
        return result;
    }

    /// <summary><c>{"batch":[line,line,...]}</c>: the lines are already JSON objects, so they are copied, not re-encoded.</summary>
    private static byte[] Body(byte[][] lines)
    {
        var body = new byte[Open.Length + lines.Sum(l => l.Length) + Math.Max(0, lines.Length - 1) + Close.Length];
        Open.CopyTo(body, 0);
        var at = Open.Length;
        for (var i = 0; i < lines.Length; i++)
        {
            if (i > 0) body[at++] = (byte)',';
            lines[i].CopyTo(body, at);
            at += lines[i].Length;
        }
        Close.CopyTo(body, at);
        return body;
    }
}

/// <summary>
/// A process's resident set size (VmRSS in <c>/proc/PID/status</c>), sampled every 100 ms: the peak a run reached,
/// which the kernel's own high-water mark would blur with start-up and earlier loads.
/// </summary>
internal sealed class RssSampler : IAsyncDisposable
{
    private readonly int pid;
    private readonly CancellationTokenSource stop = new();
    private Task? loop;
    private long peak;
    private bool stopped;

    private RssSampler(int pid)
    {
        this.pid = pid;
        FirstBytes = Read(pid);
        peak = FirstBytes;
    }

    /// <summary>The RSS when sampling started (the server idle, before the load).</summary>
    public long FirstBytes { get; }

    public static RssSampler Start(int pid)
    {
        var sampler = new RssSampler(pid);
        sampler.loop = Task.Run(sampler.SampleAsync);
        return sampler;
    }

    private async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token))
                peak = Math.Max(peak, Read(pid));
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
    }

    /// <summary>Stops sampling and returns the peak in bytes.</summary>
    public async Task<long> StopAsync()
    {
        if (stopped) return peak;
        stopped = true;
        await stop.CancelAsync();
        if (loop is not null) await loop;
        return peak = Math.Max(peak, Read(pid));
    }

    private static long Read(int pid)
    {
        if (ProcFs.ResidentBytes(pid) is { } bytes) return bytes;
        using var process = Process.GetProcessById(pid);
        return process.WorkingSet64;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        stop.Dispose();
    }
}

/// <summary>What Linux tells about a process in <c>/proc</c>: null where it cannot (another OS, a process that has gone).</summary>
internal static class ProcFs
{
    // USER_HZ, in which /proc reports CPU times: 100 on every Linux architecture .NET runs on.
    private const double TicksPerSecond = 100;

    /// <summary>VmRSS in <c>/proc/PID/status</c> ("VmRSS:	  123456 kB").</summary>
    public static long? ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
            // no /proc, or the process has exited
        }
        return null;
    }

    /// <summary>
    /// CPU time of a process tree: the process, its live children, and (through the parent's cutime and cstime) the
    /// children it has already reaped, such as PostgreSQL backends whose connections closed.
    /// </summary>
    public static TimeSpan? TreeProcessorTime(int pid)
    {
        if (Stat(pid) is not { } root) return null;
        var ticks = root.User + root.System + root.ChildrenUser + root.ChildrenSystem;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var child) && Stat(child) is { } c && c.Parent == pid)
                ticks += c.User + c.System;
        }
        return TimeSpan.FromSeconds(ticks / TicksPerSecond);
    }

    private static (int Parent, long User, long System, long ChildrenUser, long ChildrenSystem)? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // "pid (comm) state ppid ...": comm may hold spaces, so the fields are counted from after its ')'.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            long Field(int number) => long.Parse(fields[number - 3], System.Globalization.CultureInfo.InvariantCulture);
            return ((int)Field(4), Field(14), Field(15), Field(16), Field(17));
        }
        catch (IOException)
        {
            return null;
        }
    }
}
