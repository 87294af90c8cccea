using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Stopwatch = System.Diagnostics.Stopwatch;

namespace Meridian.Profiles.Identity;

public sealed class ProjectorOptions
{
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);
    public int BatchSize { get; set; } = 500;
    public bool Enabled { get; set; } = true;
    public string? NodeName { get; set; }
}

/// <summary>Notified when identity resolution committed a batch: wakes the workers that follow it (segment maintenance).</summary>
public sealed class ProfilesResolvedSignal : FanOutSignal;

/// <summary>
/// Follows the event log and resolves identities, one batch per transaction: the profile changes and the new log
/// position commit together, so a crash neither loses nor repeats an event. One node at a time holds the projector's
/// lease; the others stand by and take over when it lapses.
/// </summary>
public sealed class ProfileProjector(
    IServiceScopeFactory scopes, IOptions<ProjectorOptions> options, EventLogSignal appended, ProfilesResolvedSignal resolvedSignal, TimeProvider time,
    ILogger<ProfileProjector> logger)
    : BackgroundService
{
    public const string Name = "profiles";
    private readonly ProjectorOptions opts = options.Value;
    private readonly string node = options.Value.NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await RunOnceAsync(stoppingToken) > 0) { }
                // Woken at once by ingestion in this process; the poll catches events ingested by other nodes.
                await appended.WaitAsync(opts.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (DbUpdateConcurrencyException)
            {
                // A staff action (merge, split, erase) changed a profile this batch touched: run the batch again on fresh state.
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Profile projection failed; retrying after the poll interval");
                await Task.Delay(opts.PollInterval, time, stoppingToken);
            }
        }
    }

    /// <summary>Projects one batch if this node holds (or can take) the lease. Returns the number of events read.</summary>
    internal async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var now = time.GetUtcNow().UtcDateTime;
        // Holding the lease with more than half of it left, this node needs no write to go on (each batch's commit renews
        // it); otherwise it takes or renews it, then reads the position again, which the last holder may have moved.
        var state = await db.Set<ProjectorState>().AsNoTracking().SingleOrDefaultAsync(s => s.Name == Name, ct);
        if (state is null || Leases.NeedsWrite(state.LeaseOwner, state.LeaseUntil, node, now, opts.Lease))
        {
            if (!await TakeLeaseAsync(db, now, ct)) return 0;
            state = await db.Set<ProjectorState>().AsNoTracking().SingleAsync(s => s.Name == Name, ct);
        }
        var events = await scope.ServiceProvider.GetRequiredService<EventLog>()
            .ReadAfterAsync(new EventLogPosition(state.PositionTx, state.PositionId), opts.BatchSize, ct);
        if (events.Count == 0) return 0;

        // Resolve before the transaction begins: on SQLite a transaction holds the one write lock from its start, and
        // ingestion waits for it. What was read meanwhile is guarded as always: a profile a staff action changed fails
        // the save on its version, and the batch runs again.
        var started = Stopwatch.GetTimestamp();
        var resolver = new IdentityResolver(db, scope.ServiceProvider.GetRequiredService<Platform.CustomFields.CustomFieldCatalog>(), time);
        await resolver.ResolveAsync(events, ct);
        var resolved = Stopwatch.GetTimestamp();
        // In turn with ingestion's group commits (SQLite), see EventStore.StoreAsync.
        using var turn = await db.Database.WriterTurnAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await resolver.WriteAsync(ct);
        var last = events[^1];
        // Advance only while still holding the lease: a node that lost it (paused past its lease) must not commit.
        var advanced = await db.Set<ProjectorState>().Where(s => s.Name == Name && s.LeaseOwner == node)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.PositionTx, last.TxId).SetProperty(x => x.PositionId, last.Id)
                .SetProperty(x => x.LeaseUntil, time.GetUtcNow().UtcDateTime + opts.Lease), ct);
        if (advanced == 0)
        {
            await transaction.RollbackAsync(ct);
            return 0;
        }
        await transaction.CommitAsync(ct);
        resolvedSignal.Notify();
        if (logger.IsEnabled(LogLevel.Debug))
            logger.LogDebug("Resolved {Events} events: {ResolveMs:0} ms resolving, {WriteMs:0} ms writing", events.Count,
                Stopwatch.GetElapsedTime(started, resolved).TotalMilliseconds, Stopwatch.GetElapsedTime(resolved).TotalMilliseconds);
        return events.Count;
    }

    private async Task<bool> TakeLeaseAsync(MeridianDb db, DateTime now, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"INSERT INTO projector_state (name, position_tx, position_id) VALUES ({Name}, 0, 0) ON CONFLICT (name) DO NOTHING", ct);
        var until = now + opts.Lease;
        return await db.Set<ProjectorState>()
            .Where(s => s.Name == Name && (s.LeaseOwner == node || s.LeaseUntil == null || s.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.LeaseOwner, node).SetProperty(x => x.LeaseUntil, until), ct) == 1;
    }
}
