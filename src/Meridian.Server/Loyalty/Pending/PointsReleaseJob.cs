using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Pending;

/// <summary>
/// Releases pending points once their return window has passed: each held lot whose <c>held_until</c> is due becomes
/// spendable in its own transaction through <see cref="PointsLedger.ReleaseAsync"/>, under the member's balance row like
/// any posting. Exactly once across nodes and restarts: one node at a time holds the job's lease (a <c>loyalty_jobs</c>
/// row), all progress is in the lots (a released lot is no longer held), the lot is re-read under the member's lock
/// before it is released, and a release's source key (<c>release:{lot}</c>) is unique per member.
/// </summary>
public sealed class PointsReleaseJob(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<PointsReleaseJob> logger)
    : BackgroundService
{
    public const string Name = "points-release";
    private readonly string node = opts.Node;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync("Points release", opts.PollInterval, time, logger, ct => RunOnceAsync(ct), stoppingToken);
    }

    /// <summary>One pass, if this node can take the lease: returns the lots released (null: another node holds the job).</summary>
    internal async Task<int?> RunOnceAsync(CancellationToken ct)
    {
        if (!await LeaseAsync(ct)) return null;
        var released = 0;
        while (true)
        {
            var due = await InScopeAsync((db, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return db.Set<PointLot>().AsNoTracking().Where(l => l.HeldUntil != null && l.HeldUntil <= now)
                    .OrderBy(l => l.HeldUntil).ThenBy(l => l.Id).Select(l => new { l.Id, l.MemberId }).Take(opts.BatchSize).ToListAsync(ct);
            });
            foreach (var lot in due)
                if (await InScopeAsync((_, services) => services.GetRequiredService<PointsLedger>().ReleaseAsync(lot.Id, lot.MemberId, ct)) is not null)
                    released++;
            if (!await LeaseAsync(ct)) return released;
            if (due.Count < opts.BatchSize) break;
        }
        await InScopeAsync((db, _) => db.Set<LoyaltyJob>().Where(j => j.Name == Name && j.LeaseOwner == node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LastRunAt, time.GetUtcNow().UtcDateTime), ct));
        if (released > 0) logger.LogInformation("Released {Lots} pending point lots", released);
        return released;
    }

    private Task<bool> LeaseAsync(CancellationToken ct) =>
        InScopeAsync((db, _) => LoyaltyJob.TakeLeaseAsync(db, Name, node, opts.Lease, time.GetUtcNow().UtcDateTime, ct));

    private async Task<T> InScopeAsync<T>(Func<MeridianDb, IServiceProvider, Task<T>> work)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await work(scope.ServiceProvider.GetRequiredService<MeridianDb>(), scope.ServiceProvider);
    }
}
