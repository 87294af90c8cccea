using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Meridian.Hosting;

public sealed class AdmissionOptions
{
    /// <summary>
    /// API requests worked on at once (<c>/api</c> and <c>/connect</c>); the rest wait their turn in arrival order.
    /// 0 turns admission control off. Default: 8 per core.
    /// </summary>
    public int MaxConcurrentRequests { get; set; } = 8 * Environment.ProcessorCount;
    /// <summary>Requests that may wait at once; one more is turned away at once.</summary>
    public int QueueLimit { get; set; } = 10_000;
    /// <summary>
    /// How long a request may wait for its turn before it is turned away: long enough for a burst (200 spends on one
    /// member at once) to be served, shorter than the usual proxy timeout (60 s), so a client hears 503 and not a 504.
    /// </summary>
    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Marks an endpoint that admission control leaves alone (a long upload would hold a turn for minutes).</summary>
public sealed class SkipAdmissionAttribute : Attribute;

/// <summary>
/// Admission control: at most <see cref="AdmissionOptions.MaxConcurrentRequests"/> API requests run at once, the others
/// wait in arrival order, and one that waits longer than <see cref="AdmissionOptions.QueueTimeout"/> (or finds the
/// queue full) gets 503 with <c>Retry-After</c> before it has touched anything. Without it, a burst above what the
/// machine can serve gets every request running at once: on PostgreSQL a backend each, which on a few cores serves
/// fewer requests a second than a handful would, so the queue grows without end (measured: lookups at a steady 500/s
/// on 2 cores waited 7 s at p50 while 16 closed-loop clients got 700-800/s). The tracking API (<c>/v1</c>) is not
/// counted: its requests wait in the ingestion's group commit and pacing instead; nor are coupon claims, which wait in
/// theirs (<see cref="Offers.Claims.ClaimWriter"/>: a group is one transaction however many requests it answers).
/// Measured against a limit on the database pool alone (Npgsql <c>Maximum Pool Size=16</c>): that limit let lookups at
/// 1,000/s pile up to a 16 s p50 too, since the requests still all ran in the server at once. On <c>/metrics</c>:
/// <c>meridian_admission_running</c>, <c>meridian_admission_waiting</c> and <c>meridian_admission_rejected_total</c>.
/// </summary>
internal sealed class Admission : IMiddleware, IDisposable
{
    private readonly AdmissionOptions opts;
    private readonly ConcurrencyLimiter? limiter;
    private readonly Counter<long> rejected;

    public Admission(IOptions<AdmissionOptions> options, IMeterFactory meters)
    {
        opts = options.Value;
        if (opts.MaxConcurrentRequests > 0)
            limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = opts.MaxConcurrentRequests,
                QueueLimit = Math.Max(0, opts.QueueLimit),
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            });
        var meter = meters.Create("Meridian");
        meter.CreateObservableGauge("meridian.admission.running", () => Running, description: "API requests being worked on.");
        meter.CreateObservableGauge("meridian.admission.waiting", () => Waiting, description: "API requests waiting for their turn.");
        rejected = meter.CreateCounter<long>("meridian.admission.rejected", description: "API requests turned away with 503 after waiting too long.");
    }

    /// <summary>Requests holding a turn now.</summary>
    public long Running => limiter is null ? 0 : opts.MaxConcurrentRequests - limiter.GetStatistics()!.CurrentAvailablePermits;

    /// <summary>Requests waiting for a turn now.</summary>
    public long Waiting => limiter?.GetStatistics()!.CurrentQueuedCount ?? 0;

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (limiter is null || !Counted(http))
        {
            await next(http);
            return;
        }
        using var lease = await WaitForTurnAsync(http);
        if (lease is { IsAcquired: true }) await next(http);
        else if (!http.RequestAborted.IsCancellationRequested) await RejectAsync(http);
    }

    private static bool Counted(HttpContext http) =>
        (http.Request.Path.StartsWithSegments("/api") || http.Request.Path.StartsWithSegments("/connect"))
        && http.GetEndpoint()?.Metadata.GetMetadata<SkipAdmissionAttribute>() is null;

    /// <summary>The request's turn, or null when it waited too long or the client went away.</summary>
    private async Task<RateLimitLease?> WaitForTurnAsync(HttpContext http)
    {
        var now = limiter!.AttemptAcquire();
        if (now.IsAcquired) return now;
        now.Dispose();
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        wait.CancelAfter(opts.QueueTimeout);
        try
        {
            return await limiter.AcquireAsync(1, wait.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private async Task RejectAsync(HttpContext http)
    {
        rejected.Add(1);
        http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        http.Response.Headers.RetryAfter = "1";
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new ProblemDetails
            {
                Status = 503, Type = ProblemTypes.Unavailable, Title = "The service is overloaded or its database is unreachable.",
                Detail = "The server is working on as many requests as it can and this one waited too long for its turn; nothing was changed. Retry shortly.",
            },
        });
    }

    public void Dispose() => limiter?.Dispose();
}
