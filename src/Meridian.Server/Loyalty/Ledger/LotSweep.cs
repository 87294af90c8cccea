using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// A job that posts one entry per due lot (expiry, release). One node at a time holds the job's lease (a
/// <c>loyalty_jobs</c> row, renewed between batches); all progress is in the lots themselves, so a restart, or another
/// node taking over once the lease lapses, resumes where it stopped. Each lot is posted in its own transaction through
/// <see cref="PointsLedger"/>, which re-reads the lot under the member's balance row: a lot is never posted twice.
/// </summary>
public abstract class LotSweep(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger logger) : BackgroundService
{
    protected abstract string Name { get; }
    protected string Node { get; } = opts.Node;
    protected LoyaltyJobOptions Options => opts;
    protected TimeProvider Time => time;

    /// <summary>The lots due now, soonest first.</summary>
    protected abstract IQueryable<PointLot> Due(IQueryable<PointLot> lots, DateTime now);

    /// <summary>Posts the lot's entry; null when there was nothing to post (another node or a posting got there first).</summary>
    protected abstract Task<LedgerEntry?> PostAsync(PointsLedger ledger, long lotId, long memberId, CancellationToken ct);

    /// <summary>Work after the lots of a pass (notices), under the same lease.</summary>
    protected virtual Task AfterSweepAsync(CancellationToken ct) => Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync(Name, opts.PollInterval, time, logger, ct => RunOnceAsync(ct), stoppingToken);
    }

    /// <summary>One pass, if this node can take the lease: returns the lots posted (null: another node holds the job).</summary>
    internal async Task<int?> RunOnceAsync(CancellationToken ct)
    {
        if (!await LeaseAsync(ct)) return null;
        var posted = 0;
        while (true)
        {
            var due = await InScopeAsync((db, _) => Due(db.Set<PointLot>().AsNoTracking(), time.GetUtcNow().UtcDateTime)
                .Select(l => new { l.Id, l.MemberId }).Take(opts.BatchSize).ToListAsync(ct));
            foreach (var lot in due)
                if (await InScopeAsync((_, services) => PostAsync(services.GetRequiredService<PointsLedger>(), lot.Id, lot.MemberId, ct)) is not null)
                    posted++;
            if (!await LeaseAsync(ct)) return posted;
            if (due.Count < opts.BatchSize) break;
        }
        await AfterSweepAsync(ct);
        await InScopeAsync((db, _) => db.Set<LoyaltyJob>().Where(j => j.Name == Name && j.LeaseOwner == Node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LastRunAt, time.GetUtcNow().UtcDateTime), ct));
        if (posted > 0) logger.LogInformation("{Job}: {Lots} point lots", Name, posted);
        return posted;
    }

    private Task<bool> LeaseAsync(CancellationToken ct) =>
        InScopeAsync((db, _) => LoyaltyJob.TakeLeaseAsync(db, Name, Node, opts.Lease, time.GetUtcNow().UtcDateTime, ct));

    protected async Task<T> InScopeAsync<T>(Func<MeridianDb, IServiceProvider, Task<T>> work)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await work(scope.ServiceProvider.GetRequiredService<MeridianDb>(), scope.ServiceProvider);
    }
}
