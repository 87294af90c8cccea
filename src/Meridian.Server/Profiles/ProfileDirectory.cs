using Meridian.Data;
using Meridian.Ingestion.Tracking;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Profiles;

/// <summary>What other modules may ask about profiles without reading the Profiles tables.</summary>
public sealed class ProfileDirectory(MeridianDb db)
{
    /// <summary>
    /// The live profile a profile id stands for now, within the caller's brands: the id itself, or the profile it was
    /// merged into; null when no such profile exists or it was erased.
    /// </summary>
    public async Task<(long ProfileId, long BrandId)?> FindLiveAsync(long profileId, CancellationToken ct)
    {
        var profile = await LinkAsync(profileId, ct);
        for (var hops = 0; profile?.MergedIntoId is { } next && hops < 100; hops++) profile = await LinkAsync(next, ct);
        return profile is null || profile.ErasedAt is not null || profile.MergedIntoId is not null ? null : (profile.Id, profile.TenantId);
    }

    /// <summary>
    /// <see cref="FindLiveAsync"/> for many ids in one query (a merged profile costs a lookup of its own): the ids that
    /// stand for a live profile, each with that profile.
    /// </summary>
    public async Task<Dictionary<long, (long ProfileId, long BrandId)>> FindLiveManyAsync(IReadOnlyCollection<long> profileIds, CancellationToken ct)
    {
        var links = await db.Set<Profile>().AsNoTracking().Where(p => profileIds.Contains(p.Id))
            .Select(p => new Link(p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt)).ToListAsync(ct);
        var live = new Dictionary<long, (long, long)>(links.Count);
        foreach (var link in links)
        {
            if (link.MergedIntoId is null && link.ErasedAt is null) live[link.Id] = (link.Id, link.TenantId);
            else if (link.MergedIntoId is not null && await FindLiveAsync(link.Id, ct) is { } survivor) live[link.Id] = survivor;
        }
        return live;
    }

    /// <summary>The live profile an event of the log was resolved to (null: not resolved yet, or the profile is gone).</summary>
    public async Task<(long ProfileId, long BrandId)?> ProfileOfEventAsync(long eventId, CancellationToken ct)
    {
        var profileId = await db.Set<ProfileEvent>().AsNoTracking().Where(e => e.EventId == eventId).Select(e => (long?)e.ProfileId).SingleOrDefaultAsync(ct);
        return profileId is { } id ? await FindLiveAsync(id, ct) : null;
    }

    /// <summary>How far identity resolution has read the event log: every event up to here has its profile.</summary>
    public async Task<EventLogPosition> ResolvedUpToAsync(CancellationToken ct) =>
        await db.Set<ProjectorState>().AsNoTracking().Where(s => s.Name == Identity.ProfileProjector.Name)
            .Select(s => new EventLogPosition(s.PositionTx, s.PositionId)).SingleOrDefaultAsync(ct);

    private async Task<Link?> LinkAsync(long id, CancellationToken ct) =>
        await db.Set<Profile>().AsNoTracking().Where(p => p.Id == id).Select(p => new Link(p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt)).SingleOrDefaultAsync(ct);

    private sealed record Link(long Id, long TenantId, long? MergedIntoId, DateTime? ErasedAt);
}
