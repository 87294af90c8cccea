using System.Diagnostics;

namespace Meridian.Bench;

/// <summary>What a load measured: calls that started and ended inside the measured window, and their latencies.</summary>
internal sealed record LoadResult(long Calls, long Failures, TimeSpan Window, long[] SortedLatencyTicks)
{
    public double PerSecond => Calls / Window.TotalSeconds;

    public double PercentileMs(double p) => SortedLatencyTicks.Length == 0
        ? double.NaN
        : SortedLatencyTicks[(int)Math.Min(SortedLatencyTicks.Length - 1, Math.Ceiling(p / 100 * SortedLatencyTicks.Length) - 1)] * 1000.0 / Stopwatch.Frequency;
}

/// <summary>
/// A closed-loop load: N workers each send the next call as soon as the previous one answers. The HTTP measure and the
/// raw-database baseline it is divided by both go through here, so their figures mean the same thing.
/// </summary>
internal static class ClosedLoop
{
    /// <param name="call">One call by worker <c>i</c>; false counts as a failure (kept out of the latencies).</param>
    public static async Task<LoadResult> RunAsync(int workers, TimeSpan warmUp, TimeSpan measured, Func<int, ValueTask<bool>> call, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        var windowStart = start + (long)(warmUp.TotalSeconds * Stopwatch.Frequency);
        var windowEnd = windowStart + (long)(measured.TotalSeconds * Stopwatch.Frequency);

        // LongRunning gives each worker a thread of its own: a synchronous driver (Microsoft.Data.Sqlite) then never
        // waits for the thread pool to grow, while an asynchronous one (HTTP, Npgsql) moves to the pool at its first await.
        var tasks = Enumerable.Range(0, workers).Select(i => Task.Factory.StartNew(
            () => WorkerAsync(i, call, windowStart, windowEnd, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap()).ToArray();
        var results = await Task.WhenAll(tasks);

        var latencies = results.SelectMany(r => r.Latencies).ToArray();
        Array.Sort(latencies);
        return new LoadResult(latencies.Length, results.Sum(r => r.Failures), measured, latencies);
    }

    private static async Task<(List<long> Latencies, long Failures)> WorkerAsync(
        int worker, Func<int, ValueTask<bool>> call, long windowStart, long windowEnd, CancellationToken ct)
    {
        var latencies = new List<long>(64 * 1024);
        long failures = 0;
        while (!ct.IsCancellationRequested)
        {
            var before = Stopwatch.GetTimestamp();
            if (before >= windowEnd) break;
            var ok = await call(worker);
            var after = Stopwatch.GetTimestamp();
            // Only calls wholly inside the window count, so warm-up and the ragged end do not skew the rate.
            if (before < windowStart || after > windowEnd) continue;
            if (ok) latencies.Add(after - before);
            else failures++;
        }
        ct.ThrowIfCancellationRequested();
        return (latencies, failures);
    }
}
