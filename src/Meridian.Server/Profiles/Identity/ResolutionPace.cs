using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Profiles.Identity;

/// <summary>
/// Identity resolution as the follower ingestion keeps pace with (<see cref="IngestOptions.MaxUnresolvedEvents"/>):
/// its backlog counts while a node holds the projector's lease. With no live lease (resolution switched off, or every node
/// down) there is nothing to wait for.
/// </summary>
public sealed class ResolutionPace : IPacedFollower
{
    private readonly IServiceScopeFactory scopes;
    private readonly TimeProvider time;
    private readonly WorkSignal progressed = new();

    public ResolutionPace(IServiceScopeFactory scopes, ProfilesResolvedSignal resolved, TimeProvider time)
    {
        this.scopes = scopes;
        this.time = time;
        resolved.Follow(progressed);
    }

    public async Task<long> BacklogAsync(long limit, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var state = await db.Set<ProjectorState>().AsNoTracking().SingleOrDefaultAsync(s => s.Name == ProfileProjector.Name, ct);
        if (state?.LeaseUntil is not { } until || until < time.GetUtcNow().UtcDateTime) return 0;
        var log = scope.ServiceProvider.GetRequiredService<EventLog>();
        return await log.BacklogAsync(new EventLogPosition(state.PositionTx, state.PositionId), ct, limit: limit);
    }

    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) => progressed.WaitAsync(timeout, ct);
}
