using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// A job that works through due items of members one at a time (lots to expire or release, members whose tier is due
/// for review). One node at a time holds the job's lease (a <c>loyalty_jobs</c> row, renewed between batches); all
/// progress is in the rows themselves, so a restart, or another node taking over once the lease lapses, resumes where
/// it stopped. Each item is handled in its own transaction through <see cref="PointsLedger"/>, which re-reads it under
/// the member's balance row: an item is never handled twice.
/// </summary>
public abstract class LedgerSweep(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger logger) : BackgroundService
{
    protected abstract string Name { get; }
    protected string Node { get; } = opts.Node;
    protected LoyaltyJobOptions Options => opts;
    protected TimeProvider Time => time;
    protected ILogger Logger => logger;

    /// <summary>Up to <paramref name="take"/> items due now (an item's id and its member's), soonest first.</summary>
    protected abstract Task<List<DueItem>> DueAsync(MeridianDb db, DateTime now, int take, CancellationToken ct);

    /// <summary>Handles the item; false when there was nothing to do (another node or a posting got there first).</summary>
    protected abstract Task<bool> HandleAsync(PointsLedger ledger, DueItem item, CancellationToken ct);

    protected sealed record DueItem(long Id, long MemberId);

    /// <summary>Work after the lots of a pass (notices), under the same lease.</summary>
    protected virtual Task AfterSweepAsync(CancellationToken ct) => Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync(Name, opts.PollInterval, time, logger, ct => RunOnceAsync(ct), stoppingToken);
    }

    /// <summary>One pass, if this node can take the lease: returns the items handled (null: another node holds the job).</summary>
    internal async Task<int?> RunOnceAsync(CancellationToken ct)
    {
        if (!await LeaseAsync(ct)) return null;
        var posted = 0;
        while (true)
        {
            var due = await InScopeAsync((db, _) => DueAsync(db, time.GetUtcNow().UtcDateTime, opts.BatchSize, ct));
            posted += await HandleDueAsync(due, ct);
            if (!await LeaseAsync(ct)) return posted;
            if (due.Count < opts.BatchSize) break;
        }
        await AfterSweepAsync(ct);
        await InScopeAsync((db, _) => db.Set<LoyaltyJob>().Where(j => j.Name == Name && j.LeaseOwner == Node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LastRunAt, time.GetUtcNow().UtcDateTime), ct));
        if (posted > 0) logger.LogInformation("{Job}: {Items} handled", Name, posted);
        return posted;
    }

    /// <summary>Handles a batch of due items, by default each in a scope and transaction of its own; returns how many it handled.</summary>
    protected virtual async Task<int> HandleDueAsync(List<DueItem> due, CancellationToken ct)
    {
        var handled = 0;
        foreach (var item in due)
            if (await InScopeAsync((_, services) => HandleAsync(services.GetRequiredService<PointsLedger>(), item, ct)))
                handled++;
        return handled;
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
