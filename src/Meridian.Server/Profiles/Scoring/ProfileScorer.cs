using System.Diagnostics;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Profiles.Scoring;

/// <summary><c>Meridian:Profiles:Scoring</c>: how often each brand's profiles are scored, and how often to look for a brand that is due.</summary>
public sealed class ScoringOptions
{
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>
    /// Longer than one brand's run takes, or a second node may start it too. Measured with a million profiles (800,000
    /// buying) on 2 shared cores: 10–15 s a run on either database, 25–40 s for the first, which writes every score.
    /// </summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(10);
    public bool Enabled { get; set; } = true;
    public string? NodeName { get; set; }
}

/// <summary>
/// Scores every buying customer of a brand against the others, periodically, since a quintile needs the whole brand.
/// Each brand is one claimed run (a lease on its <c>profile_scoring</c> row, so two nodes never score it at once) of
/// two set-based statements, whatever the number of profiles:
/// <list type="bullet">
/// <item>recency, frequency and monetary scores, 1 to 5: the quintile of the customer's rank by last order, order count and
/// spend among the brand's live customers with at least one order; ties share the lower score
/// (<c>1 + 5 × (rank − 1) / n</c>);</item>
/// <item>the value score, 0 to 100: the percentage of those customers whose spend is at most this one's;</item>
/// <item>the RFM segment, from R and F, first rule that holds: <c>champions</c> R≥4 F≥4, <c>loyal</c> R≥3 F≥3,
/// <c>new_customers</c> R≥4 F=1, <c>promising</c> R≥4 (F=2), <c>need_attention</c> R=3 (F≤2), <c>at_risk</c> R≤2 F≥3,
/// <c>hibernating</c> R≤2 F≤2.</item>
/// </list>
/// Only scores that changed are written, so a quiet brand's run reads much and writes little.
/// </summary>
public sealed class ProfileScorer(IServiceScopeFactory scopes, IOptions<ScoringOptions> options, TimeProvider time, ILogger<ProfileScorer> logger)
    : BackgroundService
{
    private readonly ScoringOptions opts = options.Value;
    private readonly string node = options.Value.NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync("Profile scoring", opts.PollInterval, time, logger, ct => RunOnceAsync(ct), stoppingToken);
    }

    /// <summary>Scores every brand whose last run is older than the interval. Returns how many brands this node scored.</summary>
    internal async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var dueBefore = time.GetUtcNow().UtcDateTime - opts.Interval;
        List<long> due;
        await using (var scope = scopes.CreateAsyncScope())
        {
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
            due = await db.Set<Brand>()
                .Where(b => !db.Set<ProfileScoring>().Any(s => s.TenantId == b.Id && s.ScoredAt > dueBefore))
                .OrderBy(b => b.Id).Select(b => b.Id).ToListAsync(ct);
        }
        var scored = 0;
        foreach (var brandId in due)
            if (await ScoreAsync(brandId, dueBefore, ct)) scored++;
        return scored;
    }

    /// <summary>
    /// Scores one brand if this node can claim it (and, given <paramref name="dueBefore"/>, if no node scored it since).
    /// Returns false when another node holds it or got there first.
    /// </summary>
    internal async Task<bool> ScoreAsync(long brandId, DateTime? dueBefore, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        if (!await TakeLeaseAsync(db, brandId, dueBefore, ct)) return false;

        var clock = Stopwatch.StartNew();
        // Ranking reads the whole brand; it fills a temporary table outside the transaction, so that the write lock
        // (all of SQLite's, while it lasts) is held only to apply what changed.
        await using var open = await db.Database.OpenedAsync(ct);
        db.Database.SetCommandTimeout(opts.Lease); // a brand's first run rewrites every score: longer than a request's 30 s
        await db.Database.ExecuteSqlRawAsync("DROP TABLE IF EXISTS profile_scores_run", ct);
        await db.Database.ExecuteSqlRawAsync("CREATE TEMP TABLE profile_scores_run (id bigint NOT NULL, r int NOT NULL, f int NOT NULL, m int NOT NULL, v int NOT NULL)", ct);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO profile_scores_run (id, r, f, m, v)
            SELECT id,
                   1 + 5 * (RANK() OVER (ORDER BY last_order_at) - 1) / COUNT(*) OVER (),
                   1 + 5 * (RANK() OVER (ORDER BY order_count) - 1) / COUNT(*) OVER (),
                   1 + 5 * (RANK() OVER (ORDER BY total_spend_minor) - 1) / COUNT(*) OVER (),
                   100 * COUNT(*) OVER (ORDER BY total_spend_minor) / COUNT(*) OVER ()
              FROM profiles
             WHERE tenant_id = {brandId} AND merged_into_id IS NULL AND erased_at IS NULL AND order_count > 0
            """, ct);
        if (db.Database.IsNpgsql()) await db.Database.ExecuteSqlRawAsync("ANALYZE profile_scores_run", ct); // else it hashes the whole profiles table
        var ranked = clock.ElapsedMilliseconds;
        var eligible = await db.Database.SqlQueryRaw<long>("SELECT COUNT(*) AS \"Value\" FROM profile_scores_run").SingleAsync(ct);

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.Database.ExecuteSqlAsync($"""
            UPDATE profiles
               SET recency_score = NULL, frequency_score = NULL, monetary_score = NULL, rfm_segment = NULL, value_score = NULL
             WHERE tenant_id = {brandId} AND recency_score IS NOT NULL
               AND (merged_into_id IS NOT NULL OR erased_at IS NOT NULL OR order_count = 0)
            """, ct);
        var changed = await db.Database.ExecuteSqlRawAsync("""
            UPDATE profiles
               SET recency_score = s.r, frequency_score = s.f, monetary_score = s.m, value_score = s.v,
                   rfm_segment = CASE
                       WHEN s.r >= 4 AND s.f >= 4 THEN 'champions'
                       WHEN s.r >= 3 AND s.f >= 3 THEN 'loyal'
                       WHEN s.r >= 4 AND s.f = 1 THEN 'new_customers'
                       WHEN s.r >= 4 THEN 'promising'
                       WHEN s.r = 3 THEN 'need_attention'
                       WHEN s.f >= 3 THEN 'at_risk'
                       ELSE 'hibernating' END
              FROM profile_scores_run AS s
             WHERE profiles.id = s.id
               AND (COALESCE(profiles.recency_score, 0) <> s.r OR COALESCE(profiles.frequency_score, 0) <> s.f
                    OR COALESCE(profiles.monetary_score, 0) <> s.m OR COALESCE(profiles.value_score, -1) <> s.v)
            """, ct);

        // Record the run only while still holding the lease: a node that lost it (paused past its lease) must not commit.
        var recorded = await db.Set<ProfileScoring>().Where(s => s.TenantId == brandId && s.LeaseOwner == node)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.ScoredAt, time.GetUtcNow().UtcDateTime).SetProperty(x => x.Scored, eligible)
                .SetProperty(x => x.LeaseOwner, (string?)null).SetProperty(x => x.LeaseUntil, (DateTime?)null), ct);
        if (recorded == 0)
        {
            await transaction.RollbackAsync(ct);
            return false;
        }
        await transaction.CommitAsync(ct);
        await db.Database.ExecuteSqlRawAsync("DROP TABLE profile_scores_run", ct);
        logger.LogInformation("Scored {Profiles} profiles of brand {Brand} ({Changed} changed) in {Elapsed} ms, {Ranking} ms of it ranking",
            eligible, brandId, changed, clock.ElapsedMilliseconds, ranked);
        return true;
    }

    private async Task<bool> TakeLeaseAsync(MeridianDb db, long brandId, DateTime? dueBefore, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"INSERT INTO profile_scoring (tenant_id, scored) VALUES ({brandId}, 0) ON CONFLICT (tenant_id) DO NOTHING", ct);
        var now = time.GetUtcNow().UtcDateTime;
        var claim = db.Set<ProfileScoring>().Where(s => s.TenantId == brandId && (s.LeaseOwner == node || s.LeaseUntil == null || s.LeaseUntil < now));
        if (dueBefore is { } before) claim = claim.Where(s => s.ScoredAt == null || s.ScoredAt <= before);
        return await claim.ExecuteUpdateAsync(s => s.SetProperty(x => x.LeaseOwner, node).SetProperty(x => x.LeaseUntil, now + opts.Lease), ct) == 1;
    }
}
