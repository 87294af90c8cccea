using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading.Channels;

namespace Meridian.Bench;

/// <summary>What the probe saw: identifies answered 200, how many showed in a profile, and the lags of those that did.</summary>
internal sealed record LagResult(int Sent, int FailedSends, int Seen, long[] SortedLagTicks)
{
    public double PercentileMs(double p) => new LoadResult(0, 0, TimeSpan.Zero, SortedLagTicks).PercentileMs(p);
}

/// <summary>
/// The lag from a tracking call's 200 OK to its effect in the profile, while the ingest load runs: every 100 ms an
/// <c>identify</c> with a fresh user id and a trait, then one poller looks the user id up (oldest first, since the
/// projector follows the log in commit order) until the profile carries the trait. Lag = first answer that shows it − 200 OK.
/// </summary>
internal sealed class ProfileLagProbe : IAsyncDisposable
{
    private static readonly TimeSpan Every = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);
    // A probe not in its profile by then counts as not seen, rather than holding the run forever.
    private static readonly TimeSpan GiveUp = TimeSpan.FromMinutes(10);

    private readonly HttpClient tracking;
    private readonly HttpClient admin;
    private readonly CancellationTokenSource sending;
    private readonly Channel<(int Number, long OkAt)> sent = Channel.CreateUnbounded<(int, long)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly List<long> lags = [];
    private readonly string run = Guid.NewGuid().ToString("N")[..8];
    private Task<(int Sent, int Failed)>? sender;
    private Task? poller;

    private ProfileLagProbe(ServerProcess server, string brand, string writeKey, CancellationToken ct)
    {
        tracking = IngestBench.WriteKeyClient(server, writeKey, 1);
        admin = server.AdminClient(brand, 1);
        sending = CancellationTokenSource.CreateLinkedTokenSource(ct);
    }

    public static ProfileLagProbe Start(ServerProcess server, string brand, string writeKey, CancellationToken ct)
    {
        var probe = new ProfileLagProbe(server, brand, writeKey, ct);
        probe.sender = Task.Run(() => probe.SendAsync(probe.sending.Token), CancellationToken.None);
        probe.poller = Task.Run(() => probe.PollAsync(ct), CancellationToken.None);
        return probe;
    }

    private string UserId(int number) => $"lag-{run}-{number}";

    private async Task<(int Sent, int Failed)> SendAsync(CancellationToken ct)
    {
        int number = 0, ok = 0, failed = 0;
        using var timer = new PeriodicTimer(Every);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                number++;
                using var response = await tracking.PostAsJsonAsync("/v1/identify",
                    new { userId = UserId(number), traits = new { lag_probe = number }, context = new { channel = "app" } }, ct);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    failed++;
                    continue;
                }
                await sent.Writer.WriteAsync((number, Stopwatch.GetTimestamp()), CancellationToken.None);
                ok++;
            }
        }
        catch (OperationCanceledException)
        {
            // stopped; a call cut short is neither sent nor failed
        }
        finally
        {
            sent.Writer.Complete();
        }
        return (ok, failed);
    }

    private async Task PollAsync(CancellationToken ct)
    {
        await foreach (var (number, okAt) in sent.Reader.ReadAllAsync(ct))
        {
            var url = $"{LookupBench.Path}?type=user_id&value={UserId(number)}";
            while (Stopwatch.GetElapsedTime(okAt) < GiveUp)
            {
                using var response = await admin.GetAsync(url, ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    using var profile = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(ct));
                    if (profile.RootElement.GetProperty("traits").TryGetProperty("lag_probe", out var trait) && trait.GetInt32() == number)
                    {
                        lags.Add(Stopwatch.GetTimestamp() - okAt);
                        break;
                    }
                }
                await Task.Delay(Poll, ct);
            }
        }
    }

    /// <summary>Stops sending, waits until every probe sent has shown (or been given up), and returns the lags.</summary>
    public async Task<LagResult> StopAsync()
    {
        await sending.CancelAsync();
        var (count, failed) = await sender!;
        await poller!;
        var sorted = lags.ToArray();
        Array.Sort(sorted);
        return new LagResult(count, failed, sorted.Length, sorted);
    }

    public async ValueTask DisposeAsync()
    {
        await sending.CancelAsync();
        if (sender is not null) await sender;
        try
        {
            if (poller is not null) await poller;
        }
        catch (OperationCanceledException)
        {
            // the run was cancelled
        }
        tracking.Dispose();
        admin.Dispose();
        sending.Dispose();
    }
}
