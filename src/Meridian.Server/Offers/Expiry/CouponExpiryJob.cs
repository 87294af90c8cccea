using Meridian.Data;
using Meridian.Hosting;
using Meridian.Offers.Data;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Offers.Expiry;

public sealed record CouponExpiring(long CouponId, long TemplateId, long ProfileId, DateTime ExpiresAt) : IDomainEvent
{
    public string EventType => "coupon.expiring";
}

public sealed record CouponExpired(long CouponId, long TemplateId, long? ProfileId) : IDomainEvent
{
    public string EventType => "coupon.expired";
}

/// <summary><c>Meridian:Offers:Expiry</c>: how often due coupons are expired, on one node at a time.</summary>
public sealed class CouponExpiryOptions
{
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(1);
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);
    public int BatchSize { get; set; } = 500;
    public bool Enabled { get; set; } = true;
    public string? NodeName { get; set; }
    public string Node => NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";
}

/// <summary>
/// Expires coupons (held or not yet claimed) whose validity has ended, and sends <c>coupon.expiring</c> the template's
/// notice days before a held coupon ends. One node holds the job's lease (the <c>offer_jobs</c> row); progress is in the
/// coupons themselves (status, notice sent), so a restart or another node resumes. Each change is a conditional
/// <c>UPDATE ... WHERE status = ...</c>, so a redemption racing with expiry wins or loses whole.
/// </summary>
public sealed class CouponExpiryJob(IServiceScopeFactory scopes, Microsoft.Extensions.Options.IOptions<CouponExpiryOptions> options, TimeProvider time,
    ILogger<CouponExpiryJob> logger) : BackgroundService
{
    public const string Name = "coupon-expiry";
    private CouponExpiryOptions Opts => options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Opts.Enabled) return;
        await PeriodicWork.RunAsync("Coupon expiry", Opts.PollInterval, time, logger, ct => RunOnceAsync(ct), stoppingToken);
    }

    /// <summary>One pass, if this node can take the lease: the coupons expired (null: another node holds the job).</summary>
    internal async Task<int?> RunOnceAsync(CancellationToken ct)
    {
        if (!await InScopeAsync(db => OfferJob.TakeLeaseAsync(db, Name, Opts.Node, Opts.Lease, time.GetUtcNow().UtcDateTime, ct))) return null;
        var expired = 0;
        while (true)
        {
            var done = await InScopeAsync(async db =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                var due = await db.Set<OfferCoupon>().AsNoTracking()
                    .Where(c => (c.Status == CouponStatus.Issued || c.Status == CouponStatus.Unassigned) && c.ValidUntil <= now)
                    .OrderBy(c => c.ValidUntil).ThenBy(c => c.Id).Take(Opts.BatchSize).ToListAsync(ct);
                if (due.Count == 0) return (0, 0);
                var groups = await GroupsAsync(db, due.Select(c => c.TenantId), ct);
                await using var transaction = await db.Database.BeginTransactionAsync(ct);
                var events = new EventPublisher(db, time);
                var count = 0;
                foreach (var c in due)
                {
                    if (await db.Set<OfferCoupon>().Where(x => x.Id == c.Id && x.Status == c.Status)
                            .ExecuteUpdateAsync(s => s.SetProperty(x => x.Status, CouponStatus.Expired), ct) == 0) continue;
                    count++;
                    if (c.Status == CouponStatus.Issued)
                        events.Publish(groups[c.TenantId], c.TenantId, () => new CouponExpired(c.Id, c.TemplateId, c.ProfileId));
                }
                await db.SaveChangesAsync(ct);
                await transaction.CommitAsync(ct);
                return (count, due.Count);
            });
            expired += done.Item1;
            if (done.Item2 < Opts.BatchSize) break;
        }
        await NoticeExpiringAsync(ct);
        await InScopeAsync(db => db.Set<OfferJob>().Where(j => j.Name == Name && j.LeaseOwner == Opts.Node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LastRunAt, time.GetUtcNow().UtcDateTime), ct));
        if (expired > 0) logger.LogInformation("Expired {Coupons} coupons", expired);
        return expired;
    }

    /// <summary>One <c>coupon.expiring</c> per held coupon, marked as it goes so it is sent once.</summary>
    private Task NoticeExpiringAsync(CancellationToken ct) => InScopeAsync(async db =>
    {
        var now = time.GetUtcNow().UtcDateTime;
        var templates = await db.Set<OfferTemplate>().AsNoTracking().Where(t => t.ExpiringNoticeDays > 0).Select(t => new { t.Id, t.TenantId, t.ExpiringNoticeDays }).ToListAsync(ct);
        if (templates.Count == 0) return 0;
        var groups = await GroupsAsync(db, templates.Select(t => t.TenantId), ct);
        foreach (var template in templates)
        {
            var horizon = now.AddDays(template.ExpiringNoticeDays);
            while (true)
            {
                await using var transaction = await db.Database.BeginTransactionAsync(ct);
                var coupons = await db.Set<OfferCoupon>().Where(c => c.TemplateId == template.Id && c.Status == CouponStatus.Issued && c.NoticeSentAt == null
                    && c.ValidUntil > now && c.ValidUntil <= horizon).OrderBy(c => c.Id).Take(Opts.BatchSize).ToListAsync(ct);
                var events = new EventPublisher(db, time);
                foreach (var c in coupons)
                {
                    c.NoticeSentAt = now;
                    events.Publish(groups[template.TenantId], template.TenantId, () => new CouponExpiring(c.Id, c.TemplateId, c.ProfileId ?? 0, c.ValidUntil!.Value));
                }
                await db.SaveChangesAsync(ct);
                await transaction.CommitAsync(ct);
                db.ChangeTracker.Clear();
                if (coupons.Count < Opts.BatchSize) break;
            }
        }
        return 0;
    });

    private static Task<Dictionary<long, long>> GroupsAsync(MeridianDb db, IEnumerable<long> tenants, CancellationToken ct)
    {
        var ids = tenants.Distinct().ToList();
        return db.Set<Brand>().AsNoTracking().Where(b => ids.Contains(b.Id)).ToDictionaryAsync(b => b.Id, b => b.GroupId, ct);
    }

    private async Task<T> InScopeAsync<T>(Func<MeridianDb, Task<T>> work)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await work(scope.ServiceProvider.GetRequiredService<MeridianDb>());
    }
}
