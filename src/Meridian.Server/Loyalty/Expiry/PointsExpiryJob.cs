using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Expiry;

/// <summary>
/// Expires the points left in due lots, one expiry entry per lot, and sends <c>points.expiring</c> the programme's
/// notice days before a lot's date. One node at a time holds the job's lease (the <c>loyalty_jobs</c> row); all progress
/// is in the lots themselves (remaining points, notice sent), so a restart, or another node taking over, resumes.
/// Each lot expires in its own transaction through <see cref="PointsLedger"/>, under the member's balance row like any
/// posting, so expiry never takes points a concurrent spend has drawn.
/// </summary>
public sealed class PointsExpiryJob(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<PointsExpiryJob> logger)
    : BackgroundService
{
    public const string Name = "points-expiry";
    private readonly string node = opts.Node;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync("Points expiry", opts.PollInterval, time, logger, ct => RunOnceAsync(ct), stoppingToken);
    }

    /// <summary>One pass, if this node can take the lease: returns the lots expired (null: another node holds the job).</summary>
    internal async Task<int?> RunOnceAsync(CancellationToken ct)
    {
        if (!await LeaseAsync(ct)) return null;
        var expired = 0;
        while (true)
        {
            var due = await InScopeAsync((db, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return db.Set<PointLot>().AsNoTracking().Where(l => l.Remaining > 0 && l.ExpiresAt <= now)
                    .OrderBy(l => l.ExpiresAt).ThenBy(l => l.Id).Select(l => new { l.Id, l.MemberId }).Take(opts.BatchSize).ToListAsync(ct);
            });
            foreach (var lot in due)
                if (await InScopeAsync((_, services) => services.GetRequiredService<PointsLedger>().ExpireAsync(lot.Id, lot.MemberId, ct)) is not null)
                    expired++;
            if (!await LeaseAsync(ct)) return expired;
            if (due.Count < opts.BatchSize) break;
        }
        await NoticeExpiringAsync(ct);
        await InScopeAsync((db, _) => db.Set<LoyaltyJob>().Where(j => j.Name == Name && j.LeaseOwner == node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LastRunAt, time.GetUtcNow().UtcDateTime), ct));
        if (expired > 0) logger.LogInformation("Expired {Lots} point lots", expired);
        return expired;
    }

    /// <summary>One <c>points.expiring</c> per member and expiry date; each lot is marked as it goes, so it is noticed once.</summary>
    private async Task NoticeExpiringAsync(CancellationToken ct)
    {
        var programmes = await InScopeAsync((db, _) => db.Set<LoyaltyProgramme>().AsNoTracking().Where(p => p.ExpiringNoticeDays > 0 && p.Expiry != ExpiryPolicy.Never).ToListAsync(ct));
        foreach (var programme in programmes)
        {
            await InScopeAsync(async (db, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                var horizon = now.AddDays(programme.ExpiringNoticeDays);
                await using var transaction = await db.Database.BeginTransactionAsync(ct);
                var lots = await (from l in db.Set<PointLot>()
                                  join m in db.Set<LoyaltyMember>() on l.MemberId equals m.Id
                                  where m.ProgrammeId == programme.Id && l.Remaining > 0 && l.NoticeSentAt == null && l.ExpiresAt > now && l.ExpiresAt <= horizon
                                  select new { Lot = l, m.ProfileId }).Take(opts.BatchSize).ToListAsync(ct);
                var events = new EventPublisher(db, time);
                foreach (var group in lots.GroupBy(x => (x.Lot.MemberId, x.ProfileId, x.Lot.ExpiresAt!.Value)))
                {
                    foreach (var x in group) x.Lot.NoticeSentAt = now;
                    var (memberId, profileId, expiresAt) = group.Key;
                    var points = group.Sum(x => x.Lot.Remaining);
                    events.Publish(programme.GroupId, programme.TenantId, () => new PointsExpiring(memberId, profileId, points, expiresAt));
                }
                await db.SaveChangesAsync(ct);
                await transaction.CommitAsync(ct);
                return lots.Count;
            });
        }
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
