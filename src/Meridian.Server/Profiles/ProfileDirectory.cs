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

    /// <summary>The live profile of the brand that holds an identifier (already normalised: E.164 phone, lower-cased email).</summary>
    public async Task<long?> FindByIdentifierAsync(long brandId, string type, string normalizedValue, CancellationToken ct)
    {
        var profileId = await db.Set<ProfileIdentifier>().AsNoTracking()
            .Where(i => i.TenantId == brandId && i.Type == type && i.Value == normalizedValue).Select(i => (long?)i.ProfileId).SingleOrDefaultAsync(ct);
        return profileId is { } id && await FindLiveAsync(id, ct) is { } live ? live.ProfileId : null;
    }

    /// <summary>The current value of a profile's text trait (null: the profile has none).</summary>
    public async Task<string?> TraitAsync(long profileId, string name, CancellationToken ct)
    {
        var traits = await db.Set<Profile>().AsNoTracking().Where(p => p.Id == profileId).Select(p => p.Traits).SingleOrDefaultAsync(ct);
        if (traits is null) return null;
        using var document = System.Text.Json.JsonDocument.Parse(traits);
        return document.RootElement.TryGetProperty(name, out var trait) && trait.TryGetProperty("v", out var value)
            && value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString() : null;
    }

    /// <summary>The profile's current consents: the latest change per channel and purpose.</summary>
    public async Task<IReadOnlyList<ConsentDto>> ConsentsAsync(long profileId, CancellationToken ct)
    {
        var changes = await db.Set<ConsentChange>().AsNoTracking().Where(c => c.ProfileId == profileId).OrderBy(c => c.ChangedAt).ThenBy(c => c.Id).ToListAsync(ct);
        return changes.GroupBy(c => (c.Channel, c.Purpose)).Select(g => g.Last()).Select(c => new ConsentDto(c.Channel, c.Purpose, c.Granted, c.ChangedAt, c.Origin)).ToList();
    }

    /// <summary>Records a consent change made by the customer (<paramref name="origin"/> says through what); saved by the caller.</summary>
    public ConsentDto ChangeConsent(long brandId, long profileId, string channel, string purpose, bool granted, string origin, DateTime at)
    {
        var change = new ConsentChange { TenantId = brandId, ProfileId = profileId, Channel = channel, Purpose = purpose, Granted = granted, ChangedAt = at, Origin = origin };
        db.Add(change);
        return new ConsentDto(change.Channel, change.Purpose, change.Granted, change.ChangedAt, change.Origin);
    }

    private async Task<Link?> LinkAsync(long id, CancellationToken ct) =>
        await db.Set<Profile>().AsNoTracking().Where(p => p.Id == id).Select(p => new Link(p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt)).SingleOrDefaultAsync(ct);

    private sealed record Link(long Id, long TenantId, long? MergedIntoId, DateTime? ErasedAt);
}
