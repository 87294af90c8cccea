using System.Collections.Concurrent;
using Meridian.Hosting;
using Meridian.Platform.Audit;
using Microsoft.Extensions.Options;

namespace Meridian.Offers.Codes;

/// <summary><c>Meridian:Offers:CodeGuessing</c>: how many unknown codes one customer (or, naming none, one key) may try per window.</summary>
public sealed class CodeGuessingOptions
{
    public int MaxMisses { get; set; } = 10;
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Slows down code guessing: every code that names no coupon of the customer is a miss, recorded in the audit log;
/// after <see cref="CodeGuessingOptions.MaxMisses"/> misses within the window the customer (or the key) gets 429
/// for any code until the oldest miss leaves the window, and the block itself is audited. Counted per node: N nodes
/// allow N times the misses, which still leaves a 60-bit code space out of reach.
/// </summary>
public sealed class CodeGuard(IOptions<CodeGuessingOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<(long Brand, string Who), Queue<DateTime>> misses = new();

    /// <summary>Seconds to wait before trying a code again (null: may try now).</summary>
    public int? RetryAfter(long brand, string who)
    {
        if (!misses.TryGetValue((brand, who), out var queue)) return null;
        lock (queue)
        {
            var now = time.GetUtcNow().UtcDateTime;
            while (queue.Count > 0 && queue.Peek() <= now - options.Value.Window) queue.Dequeue();
            return queue.Count < options.Value.MaxMisses ? null : Math.Max(1, (int)Math.Ceiling((queue.Peek() + options.Value.Window - now).TotalSeconds));
        }
    }

    public void Miss(long brand, string who, string code, AuditLog audit)
    {
        var queue = misses.GetOrAdd((brand, who), _ => new Queue<DateTime>());
        lock (queue) queue.Enqueue(time.GetUtcNow().UtcDateTime);
        // The tried code is kept only in part: an audit reader should see the pattern, not learn a valid code.
        var shown = code.Length > 4 ? code[..4] + new string('*', code.Length - 4) : "****";
        audit.Record(brand, () => new AuditChange("offers.code.miss", "customer", who, null, new { code = shown }));
    }

    public static IResult Blocked(int retryAfter, HttpContext http)
    {
        http.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, type: ProblemTypes.RateLimited, title: "Too many requests.",
            detail: $"Too many unknown coupon codes were tried; try again in {retryAfter} s.");
    }

    /// <summary>Who the guesses are counted against: the customer named, else the calling key.</summary>
    public static string Subject(long? profileId, HttpContext http) =>
        profileId is { } p ? $"profile:{p}" : $"key:{http.Features.Get<Meridian.Platform.Access.ApiKeyIdentity>()?.KeyId}";
}
