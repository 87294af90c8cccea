using System.Globalization;
using System.Text.Json;
using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Stopwatch = System.Diagnostics.Stopwatch;

namespace Meridian.Audiences.Segments;

public sealed class SegmentMaintenanceOptions
{
    /// <summary>How often to look for new events, tag changes and lapsing windows when nothing in this process signalled any.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);
    /// <summary>Events read from the log per round; the profiles they touched are evaluated together.</summary>
    public int BatchSize { get; set; } = 1000;
    /// <summary>Profiles per query of a full evaluation (and per transaction writing its result).</summary>
    public int ChunkSize { get; set; } = 5000;
    public bool Enabled { get; set; } = true;
    public string? NodeName { get; set; }
    public string Node => NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";
}

/// <summary>Wakes <see cref="SegmentMaintenance"/> when this process saved a segment or changed tags.</summary>
public sealed class SegmentSignal : Hosting.WorkSignal;

/// <summary>
/// Keeps every saved segment's members current (<see cref="SegmentMembership"/> does the diff for a set of profiles).
/// Each round, under one lease so that one node at a time writes memberships: profiles queued as dirty (their tags
/// changed, or a segment they may be in through another did) are evaluated against all their brand's segments; the
/// event log is followed behind identity resolution, like Loyalty's order earning (a position in <c>audience_jobs</c>,
/// <see cref="ProfileDirectory.ResolvedUpToAsync"/>, <see cref="EventLog.ReadAfterAsync"/>), and the profiles a batch
/// of events touched (and those merged into them, which leave) are evaluated together; profiles whose answer can
/// change by the clock (a window lapsing) are evaluated when their recheck falls due; and segments saved since are
/// evaluated in full, a chunk of profiles at a time, then marked ready.
/// </summary>
public sealed class SegmentMaintenance(IServiceScopeFactory scopes, IOptions<SegmentMaintenanceOptions> options, SegmentSignal signal, ProfilesResolvedSignal resolved, TimeProvider time,
    ILogger<SegmentMaintenance> logger) : BackgroundService
{
    public const string Name = "segment-membership";
    private readonly SegmentMaintenanceOptions opts = options.Value;
    private readonly string node = options.Value.Node;
    private readonly TimeProvider time = time;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        // Events are read once resolved: a batch resolved in this process wakes the round at once instead of at the next poll.
        resolved.Follow(signal);
        while (!stoppingToken.IsCancellationRequested)
        {
            var busy = false;
            try
            {
                busy = await RunOnceAsync(stoppingToken) > 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Segment maintenance round failed");
            }
            if (busy) continue;
            try
            {
                await signal.WaitAsync(opts.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One round if this node holds the lease; returns how much it handled (0: nothing to do, or another node holds it).</summary>
    internal async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        // Without a saved segment there is nothing to keep: no lease taken, no write (the position starts at the present anyway).
        if (!await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<Segment>().AnyAsync(ct)) return 0;
        var round = new Round(scope.ServiceProvider, this);
        if (!await round.TakeLeaseAsync(ct)) return 0;
        var started = Stopwatch.GetTimestamp();
        var dirty = await round.DirtyAsync(ct);
        var events = await round.EventsAsync(ct);
        var handled = dirty + events + await round.DueAsync(ct) + await round.FullAsync(ct);
        // Debug: what a round did and how long it took, to see where the lag from an event to its segment.entered goes.
        if (handled > 0 && logger.IsEnabled(LogLevel.Debug))
            logger.LogDebug("Segment maintenance round: {Dirty} queued profiles, {Events} events, {Handled} items in all, {Ms:0} ms",
                dirty, events, handled, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return handled;
    }

    /// <summary>The work of one round, in one scope.</summary>
    private sealed class Round(IServiceProvider services, SegmentMaintenance job)
    {
        private readonly MeridianDb db = services.GetRequiredService<MeridianDb>();
        private readonly SegmentMembership membership = services.GetRequiredService<SegmentMembership>();
        private readonly Dictionary<long, List<(Segment Segment, SegmentRule Rule)>> segmentsOf = [];

        public async Task<bool> TakeLeaseAsync(CancellationToken ct)
        {
            var now = job.time.GetUtcNow().UtcDateTime;
            var held = await db.Set<AudienceJob>().AsNoTracking().Where(j => j.Name == Name).Select(j => new { j.LeaseOwner, j.LeaseUntil }).SingleOrDefaultAsync(ct);
            // Held with more than half of it left: no write needed (rounds renew it as they write), so an idle round writes nothing.
            if (!Leases.NeedsWrite(held?.LeaseOwner, held?.LeaseUntil, job.node, now, job.opts.Lease)) return true;
            if (held is null)
            {
                // Start at the present: segments saved later are evaluated in full, so older events need no replay.
                var resolved = await services.GetRequiredService<ProfileDirectory>().ResolvedUpToAsync(ct);
                await db.Database.ExecuteSqlAsync(
                    $"INSERT INTO audience_jobs (name, position_tx, position_id) VALUES ({Name}, {resolved.TxId}, {resolved.Id}) ON CONFLICT (name) DO NOTHING", ct);
            }
            return await db.Set<AudienceJob>().Where(j => j.Name == Name && (j.LeaseOwner == job.node || j.LeaseUntil == null || j.LeaseUntil < now))
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseOwner, job.node).SetProperty(j => j.LeaseUntil, now + job.opts.Lease), ct) == 1;
        }

        /// <summary>Renews the lease; false when another node has taken it (then this one must not write).</summary>
        private async Task<bool> HoldsLeaseAsync(CancellationToken ct) =>
            await db.Set<AudienceJob>().Where(j => j.Name == Name && j.LeaseOwner == job.node)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseUntil, job.time.GetUtcNow().UtcDateTime + job.opts.Lease), ct) == 1;

        public async Task<int> DirtyAsync(CancellationToken ct)
        {
            var rows = await db.Set<SegmentDirtyProfile>().AsNoTracking().OrderBy(d => d.Id).Take(job.opts.BatchSize).ToListAsync(ct);
            if (rows.Count == 0) return 0;
            foreach (var brand in rows.GroupBy(r => r.TenantId))
                await EvaluateAsync(brand.Key, await WithMergedAsync(brand.Select(r => r.ProfileId).Distinct().ToList(), ct), ct);
            var ids = rows.Select(r => r.Id).ToList();
            await db.Set<SegmentDirtyProfile>().Where(d => ids.Contains(d.Id)).ExecuteDeleteAsync(ct);
            return rows.Count;
        }

        public async Task<int> EventsAsync(CancellationToken ct)
        {
            var state = await db.Set<AudienceJob>().AsNoTracking().SingleAsync(j => j.Name == Name, ct);
            var resolved = await services.GetRequiredService<ProfileDirectory>().ResolvedUpToAsync(ct);
            var events = (await services.GetRequiredService<EventLog>().ReadAfterAsync(new EventLogPosition(state.PositionTx, state.PositionId), job.opts.BatchSize, ct))
                .TakeWhile(e => e.TxId < resolved.TxId || (e.TxId == resolved.TxId && e.Id <= resolved.Id)).ToList();
            if (events.Count == 0) return 0;
            var brands = events.Select(e => e.TenantId).Distinct().ToList();
            if (await db.Set<Segment>().AnyAsync(s => brands.Contains(s.TenantId), ct))
            {
                var touched = new List<(long Brand, long Profile)>();
                foreach (var chunk in events.Select(e => e.Id).Chunk(500))
                    await ReadAsync($"SELECT p.tenant_id, p.id FROM profile_events pe JOIN profiles p ON p.id = pe.profile_id WHERE pe.event_id IN ({Ids(chunk)})",
                        r => touched.Add((r.GetInt64(0), r.GetInt64(1))), ct);
                foreach (var brand in touched.GroupBy(t => t.Brand))
                    await EvaluateAsync(brand.Key, await WithMergedAsync(brand.Select(t => t.Profile).Distinct().ToList(), ct), ct);
            }
            var last = events[^1];
            return await db.Set<AudienceJob>().Where(j => j.Name == Name && j.LeaseOwner == job.node)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.PositionTx, last.TxId).SetProperty(j => j.PositionId, last.Id), ct) == 1 ? events.Count : 0;
        }

        /// <summary>Profiles whose answer to a segment can have changed by the clock since they were last evaluated.</summary>
        public async Task<int> DueAsync(CancellationToken ct)
        {
            var now = job.time.GetUtcNow().UtcDateTime;
            var due = await db.Set<SegmentRecheck>().AsNoTracking().Where(r => r.DueAt <= now).OrderBy(r => r.DueAt).Take(job.opts.BatchSize)
                .Select(r => new { r.SegmentId, r.ProfileId }).ToListAsync(ct);
            foreach (var segment in due.GroupBy(r => r.SegmentId))
            {
                if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == segment.Key, ct) is not { } found) continue;
                await RefreshAsync(found, SegmentEndpoints.RuleOf(found), new SegmentMembership.Scope(segment.Select(r => r.ProfileId).ToList()), true, ct);
            }
            return due.Count;
        }

        /// <summary>Segments saved (created, or their rule changed) since their last full evaluation: every profile of the brand, a chunk at a time.</summary>
        public async Task<int> FullAsync(CancellationToken ct)
        {
            await RescoredAsync(ct);
            var pending = await db.Set<Segment>().AsNoTracking().Where(s => s.Status == SegmentStatus.Evaluating).OrderBy(s => s.Id).ToListAsync(ct);
            foreach (var segment in pending)
            {
                var rule = SegmentEndpoints.RuleOf(segment);
                for (var after = 0L; ;)
                {
                    var ids = new List<long>();
                    await ReadAsync($"SELECT id FROM profiles WHERE tenant_id = {segment.TenantId.ToString(CultureInfo.InvariantCulture)} AND id > {after.ToString(CultureInfo.InvariantCulture)} ORDER BY id LIMIT {job.opts.ChunkSize}",
                        r => ids.Add(r.GetInt64(0)), ct);
                    var upTo = ids.Count < job.opts.ChunkSize ? long.MaxValue : ids[^1];
                    if (await RefreshAsync(segment, rule, new SegmentMembership.Scope(null, after, upTo), true, ct) is null) return 0;
                    if (upTo == long.MaxValue) break;
                    after = upTo;
                }
                // Ready only while this node still holds the lease, checked in the same statement: a round that lost it
                // meanwhile leaves the segment to the lease's new holder.
                await db.Set<Segment>().Where(s => s.Id == segment.Id && s.RuleVersion == segment.RuleVersion
                        && db.Set<AudienceJob>().Any(j => j.Name == Name && j.LeaseOwner == job.node))
                    .ExecuteUpdateAsync(s => s.SetProperty(x => x.Status, SegmentStatus.Ready).SetProperty(x => x.EvaluatedAt, job.time.GetUtcNow().UtcDateTime), ct);
            }
            return pending.Count;
        }

        /// <summary>
        /// Scores (RFM class, value score) change for a whole brand at once, in the periodic scoring run, outside the event
        /// log: a segment whose rule reads them is evaluated in full again once a run has finished after its last evaluation.
        /// </summary>
        private async Task RescoredAsync(CancellationToken ct)
        {
            var scoredAt = new Dictionary<long, DateTime>();
            await ReadAsync("SELECT tenant_id, scored_at FROM profile_scoring WHERE scored_at IS NOT NULL",
                r => scoredAt[r.GetInt64(0)] = DateTime.SpecifyKind(r.GetDateTime(1), DateTimeKind.Utc), ct);
            if (scoredAt.Count == 0) return;
            var brands = scoredAt.Keys.ToList();
            foreach (var segment in await db.Set<Segment>().AsNoTracking().Where(s => s.Status == SegmentStatus.Ready && brands.Contains(s.TenantId)).ToListAsync(ct))
                if (segment.EvaluatedAt < scoredAt[segment.TenantId] && SegmentRules.ReadsScores(SegmentEndpoints.RuleOf(segment)))
                    await db.Set<Segment>().Where(s => s.Id == segment.Id && s.Status == SegmentStatus.Ready)
                        .ExecuteUpdateAsync(s => s.SetProperty(x => x.Status, SegmentStatus.Evaluating), ct);
        }

        /// <summary>Evaluates the profiles against every segment of the brand, those a segment condition names before those naming them.</summary>
        private async Task EvaluateAsync(long brandId, List<long> profileIds, CancellationToken ct)
        {
            foreach (var (segment, rule) in await SegmentsOfAsync(brandId, ct))
                foreach (var chunk in profileIds.Chunk(500))
                    await RefreshAsync(segment, rule, new SegmentMembership.Scope(chunk), false, ct);
        }

        /// <summary>
        /// Evaluates one segment for the scope; with <paramref name="queueDependents"/>, profiles that entered or left a
        /// segment another segment names are queued to be evaluated again (a round evaluating a brand's segments in
        /// dependency order needs not).
        /// </summary>
        private async Task<SegmentMembership.Change?> RefreshAsync(Segment segment, SegmentRule rule, SegmentMembership.Scope scope, bool queueDependents,
            CancellationToken ct)
        {
            var named = queueDependents && (await SegmentsOfAsync(segment.TenantId, ct)).Any(s => SegmentRules.Names(s.Rule).Contains(segment.Id));
            return await membership.RefreshAsync(segment, rule, await db.GroupOfAsync(segment.TenantId, ct), scope, HoldsLeaseAsync, named, ct);
        }

        private async Task<List<(Segment Segment, SegmentRule Rule)>> SegmentsOfAsync(long brandId, CancellationToken ct)
        {
            if (segmentsOf.TryGetValue(brandId, out var known)) return known;
            var segments = await db.Set<Segment>().AsNoTracking().Where(s => s.TenantId == brandId).OrderBy(s => s.Id).ToListAsync(ct);
            return segmentsOf[brandId] = SegmentRules.InDependencyOrder(segments.Select(s => (s, SegmentEndpoints.RuleOf(s))).ToList());
        }

        /// <summary>The profiles and those merged into them: a profile merged away leaves its segments (it is no longer live).</summary>
        private async Task<List<long>> WithMergedAsync(List<long> profileIds, CancellationToken ct)
        {
            var all = new HashSet<long>(profileIds);
            foreach (var chunk in profileIds.Chunk(500))
                await ReadAsync($"SELECT id FROM profiles WHERE merged_into_id IN ({Ids(chunk)})", r => all.Add(r.GetInt64(0)), ct);
            return [.. all.Order()];
        }

        private static string Ids(IEnumerable<long> ids) => string.Join(",", ids.Select(i => i.ToString(CultureInfo.InvariantCulture)));

        private async Task ReadAsync(string sql, Action<System.Data.Common.DbDataReader> row, CancellationToken ct)
        {
            await using var open = await db.Database.OpenedAsync(ct);
            await using var command = open.Connection.CreateCommand();
            command.CommandText = sql;
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) row(reader);
        }
    }
}
