using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Tags;

public sealed record TagAdded(long TagId, string Tag, long ProfileId, string By) : IDomainEvent
{
    public string EventType => "tag.added";
}

public sealed record TagRemoved(long TagId, string Tag, long ProfileId, string By) : IDomainEvent
{
    public string EventType => "tag.removed";
}

/// <summary>
/// Sets and removes a tag on profiles, keeping the history and publishing <c>tag.added</c> / <c>tag.removed</c>; shared
/// by the API and, later, rules and journey steps. Profiles are live profile ids of the tag's brand.
/// </summary>
public sealed class Tagging(MeridianDb db, EventPublisher events, TimeProvider time, Segments.SegmentSignal signal)
{
    /// <summary>Tags the profiles that do not carry the tag yet; returns how many it tagged.</summary>
    public async Task<int> AddAsync(Tag tag, long groupId, IReadOnlyCollection<long> profileIds, string by, string? reason, CancellationToken ct)
    {
        var ids = profileIds.Distinct().ToList();
        var carrying = await db.Set<ProfileTag>().Where(t => t.TagId == tag.Id && ids.Contains(t.ProfileId)).Select(t => t.ProfileId).ToListAsync(ct);
        var now = time.GetUtcNow().UtcDateTime;
        var added = ids.Except(carrying).ToList();
        foreach (var profileId in added)
        {
            db.Add(new ProfileTag { TagId = tag.Id, ProfileId = profileId, TenantId = tag.TenantId, SetAt = now, SetBy = by });
            db.Add(new TagChange { TenantId = tag.TenantId, ProfileId = profileId, TagId = tag.Id, Added = true, By = by, Reason = reason, At = now });
            events.Publish(groupId, tag.TenantId, () => new TagAdded(tag.Id, tag.Name, profileId, by));
        }
        await QueueForSegmentsAsync(tag.TenantId, added, ct);
        return added.Count;
    }

    /// <summary>Removes the tag from the profiles that carry it; returns how many it removed.</summary>
    public async Task<int> RemoveAsync(Tag tag, long groupId, IReadOnlyCollection<long> profileIds, string by, string? reason, CancellationToken ct)
    {
        var ids = profileIds.Distinct().ToList();
        var carrying = await db.Set<ProfileTag>().Where(t => t.TagId == tag.Id && ids.Contains(t.ProfileId)).ToListAsync(ct);
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var row in carrying)
        {
            db.Remove(row);
            db.Add(new TagChange { TenantId = tag.TenantId, ProfileId = row.ProfileId, TagId = tag.Id, Added = false, By = by, Reason = reason, At = now });
            events.Publish(groupId, tag.TenantId, () => new TagRemoved(tag.Id, tag.Name, row.ProfileId, by));
        }
        await QueueForSegmentsAsync(tag.TenantId, carrying.Select(r => r.ProfileId).ToList(), ct);
        return carrying.Count;
    }

    /// <summary>Saves the change with the profiles queued for segment evaluation (in the same transaction), when the brand has segments.</summary>
    private async Task QueueForSegmentsAsync(long brandId, List<long> profileIds, CancellationToken ct)
    {
        var queued = profileIds.Count > 0 && await db.Set<Segment>().AnyAsync(s => s.TenantId == brandId, ct);
        if (queued)
            foreach (var profileId in profileIds) db.Add(new SegmentDirtyProfile { TenantId = brandId, ProfileId = profileId });
        await db.SaveChangesAsync(ct);
        if (queued) signal.Notify();
    }
}
