using System.Diagnostics;

namespace Meridian.Bench;

/// <summary>
/// An open-loop load: calls start on a fixed schedule (so many a second) whether or not earlier ones have answered, as
/// requests from many independent front ends would, so a server that falls behind cannot slow the load down. Each
/// latency counts from the moment the call was sent: counted from its place in the schedule, the timer's own lateness
/// (a few ms for <c>Task.Delay</c> here) showed as the server's.
/// </summary>
internal static class OpenLoop
{
    /// <param name="call">Call number <c>n</c>; false counts as a failure (kept out of the latencies).</param>
    public static async Task<LoadResult> RunAsync(int perSecond, TimeSpan warmUp, TimeSpan measured, Func<long, ValueTask<bool>> call, CancellationToken ct)
    {
        var interval = Stopwatch.Frequency / (double)perSecond;
        var start = Stopwatch.GetTimestamp();
        var windowStart = start + (long)(warmUp.TotalSeconds * Stopwatch.Frequency);
        var windowEnd = windowStart + (long)(measured.TotalSeconds * Stopwatch.Frequency);
        var calls = new List<Task<(long Scheduled, long Latency, bool Ok)>>();
        for (long n = 0; ; n++)
        {
            var scheduled = start + (long)(n * interval);
            if (scheduled >= windowEnd) break;
            var wait = scheduled - Stopwatch.GetTimestamp();
            if (wait > 0) await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), ct);
            calls.Add(TimedAsync(call, n, scheduled));
        }
        var results = await Task.WhenAll(calls);
        var counted = results.Where(r => r.Scheduled >= windowStart).ToList();
        var latencies = counted.Where(r => r.Ok).Select(r => r.Latency).ToArray();
        Array.Sort(latencies);
        return new LoadResult(latencies.Length, counted.Count(r => !r.Ok), measured, latencies);
    }

    private static async Task<(long, long, bool)> TimedAsync(Func<long, ValueTask<bool>> call, long n, long scheduled)
    {
        await Task.Yield();
        var sent = Stopwatch.GetTimestamp();
        var ok = await call(n);
        return (scheduled, Stopwatch.GetTimestamp() - sent, ok);
    }
}
