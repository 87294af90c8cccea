using Meridian.Data;
using Meridian.Hosting;
using Meridian.Login.Data;
using Meridian.Login.Linking;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace Meridian.Login.Housekeeping;

/// <summary>
/// Removes what sign-in leaves behind once it can no longer matter: SMS codes and identity proofs a day after they
/// expired, throttle counters idle for a day and no longer blocking, and OpenIddict's tokens and grants that are no
/// longer valid (used codes, rotated or revoked refresh tokens) once older than the refresh token lifetime, so that a
/// replayed old refresh token is still recognised as reuse for as long as it could have been valid. Each delete is
/// idempotent, so nodes running it at the same time do no harm.
/// </summary>
public sealed class LoginHousekeeping(IServiceScopeFactory scopes, IOptions<LoginOptions> options, TimeProvider time, ILogger<LoginHousekeeping> logger)
    : BackgroundService
{
    public static readonly TimeSpan Grace = TimeSpan.FromDays(1);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        options.Value.HousekeepingInterval <= TimeSpan.Zero
            ? Task.CompletedTask
            : PeriodicWork.RunAsync("Login housekeeping", options.Value.HousekeepingInterval, time, logger, async ct => await RunOnceAsync(ct), stoppingToken);

    /// <summary>One round; returns how many rows of each kind it removed.</summary>
    public async Task<(int Codes, int Proofs, int Throttles, long Tokens, long Grants)> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var now = time.GetUtcNow().UtcDateTime;
        var codes = await db.Set<SmsChallenge>().Where(c => c.ExpiresAt < now - Grace).ExecuteDeleteAsync(ct);
        var proofs = await db.Set<IdentityProof>().Where(p => p.ExpiresAt < now - Grace).ExecuteDeleteAsync(ct);
        var throttles = await db.Set<LoginThrottle>().Where(t => t.UpdatedAt < now - Grace && (t.BlockedUntil == null || t.BlockedUntil < now)).ExecuteDeleteAsync(ct);
        var threshold = time.GetUtcNow() - options.Value.RefreshTokenLifetime;
        var tokens = await scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>().PruneAsync(threshold, ct);
        var grants = await scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>().PruneAsync(threshold, ct);
        if (codes + proofs + throttles + tokens + grants > 0)
            logger.LogInformation("Login housekeeping removed {Codes} SMS codes, {Proofs} identity proofs, {Throttles} throttle counters, {Tokens} tokens, {Grants} grants",
                codes, proofs, throttles, tokens, grants);
        return (codes, proofs, throttles, tokens, grants);
    }
}
