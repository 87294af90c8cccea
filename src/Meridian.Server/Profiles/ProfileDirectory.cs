using Meridian.Data;
using Meridian.Ingestion.Tracking;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Profiles;

/// <summary>What other modules may ask about profiles without reading the Profiles tables.</summary>
public sealed class ProfileDirectory(MeridianDb db, Identity.IdentifierRules rules, Platform.Outbox.EventPublisher events)
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

    /// <summary><see cref="ProfileOfEventAsync"/> for many events in two queries: the events resolved to a live profile, each with that profile.</summary>
    public async Task<Dictionary<long, (long ProfileId, long BrandId)>> ProfilesOfEventsAsync(IReadOnlyCollection<long> eventIds, CancellationToken ct)
    {
        var found = new Dictionary<long, (long, long)>();
        if (eventIds.Count == 0) return found;
        var pairs = await db.Set<ProfileEvent>().AsNoTracking().Where(e => eventIds.Contains(e.EventId)).Select(e => new { e.EventId, e.ProfileId }).ToListAsync(ct);
        var live = await FindLiveManyAsync(pairs.Select(p => p.ProfileId).Distinct().ToList(), ct);
        foreach (var pair in pairs)
            if (live.TryGetValue(pair.ProfileId, out var profile)) found[pair.EventId] = profile;
        return found;
    }

    /// <summary>The live profile an event of the log was resolved to (null: not resolved yet, or the profile is gone).</summary>
    public async Task<(long ProfileId, long BrandId)?> ProfileOfEventAsync(long eventId, CancellationToken ct) =>
        (await ProfilesOfEventsAsync([eventId], ct)).TryGetValue(eventId, out var profile) ? profile : null;

    /// <summary>
    /// The profiles a brand's identifiers of one type belong to, each value normalised as incoming data is (a phone in
    /// any written form finds its customer). Values that are no valid identifier of the type are left out of
    /// <c>Found</c> and listed in <c>Invalid</c>; valid ones nobody holds are simply not found. Null when the brand has
    /// no such identifier type.
    /// </summary>
    public async Task<(Dictionary<string, long> Found, List<string> Invalid)?> FindByIdentifiersAsync(long brandId, string type,
        IReadOnlyCollection<string> values, CancellationToken ct)
    {
        var (types, region) = await rules.ForAsync(db, brandId, ct);
        var rule = types.FirstOrDefault(t => t.Name == type);
        if (rule is null) return null;
        var invalid = new List<string>();
        var normalised = new Dictionary<string, List<string>>();
        foreach (var value in values)
        {
            if (Identity.Normalizers.Normalize(rule.Normalizer, value, region) is not { } n) invalid.Add(value);
            else if (normalised.TryGetValue(n, out var written)) written.Add(value);
            else normalised[n] = [value];
        }
        var found = new Dictionary<string, long>();
        foreach (var chunk in normalised.Keys.Chunk(500))
        {
            var owners = await db.Set<ProfileIdentifier>().AsNoTracking().Where(i => i.TenantId == brandId && i.Type == type && chunk.Contains(i.Value))
                .Select(i => new { i.Value, i.ProfileId }).ToListAsync(ct);
            foreach (var owner in owners)
                foreach (var written in normalised[owner.Value]) found[written] = owner.ProfileId;
        }
        return (found, invalid);
    }

    /// <summary>
    /// The identifiers of the given types each profile holds, as a caller may see them: masked (as everywhere in
    /// Meridian) unless <paramref name="pii"/>, the caller's <c>pii.read</c>.
    /// </summary>
    public async Task<Dictionary<long, Dictionary<string, List<string>>>> IdentifiersOfAsync(IReadOnlyCollection<long> profileIds,
        IReadOnlyCollection<string> types, bool pii, CancellationToken ct)
    {
        var result = profileIds.Distinct().ToDictionary(id => id, _ => new Dictionary<string, List<string>>());
        foreach (var chunk in result.Keys.Chunk(500))
        {
            var rows = await db.Set<ProfileIdentifier>().AsNoTracking().Where(i => chunk.Contains(i.ProfileId) && types.Contains(i.Type))
                .OrderBy(i => i.Id).Select(i => new { i.ProfileId, i.Type, i.Value }).ToListAsync(ct);
            foreach (var row in rows)
            {
                var of = result[row.ProfileId];
                if (!of.TryGetValue(row.Type, out var values)) of[row.Type] = values = [];
                values.Add(pii ? row.Value : ProfilesEndpoints.MaskIdentifier(row.Type, row.Value));
            }
        }
        return result;
    }

    /// <summary>The profile and every profile merged into it (directly or through others): whatever was kept about any of them is the customer's.</summary>
    public Task<List<long>> WithMergedAsync(long profileId, CancellationToken ct) => MergedIntoAsync([profileId], [profileId], ct);

    /// <summary>
    /// <see cref="FindLiveAsync"/> and <see cref="WithMergedAsync"/> of the live profile together: one query for a live
    /// profile nothing was merged into (most customers), a few more for each level of merges or a merged id.
    /// </summary>
    public async Task<(long ProfileId, long BrandId, List<long> WithMerged)?> FindLiveWithMergedAsync(long profileId, CancellationToken ct)
    {
        var rows = await db.Set<Profile>().AsNoTracking().Where(p => p.Id == profileId || p.MergedIntoId == profileId)
            .Select(p => new Link(p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt)).ToListAsync(ct);
        if (rows.FirstOrDefault(r => r.Id == profileId) is not { } self) return null;
        if (self.MergedIntoId is not null || self.ErasedAt is not null)
            return await FindLiveAsync(profileId, ct) is { } live ? (live.ProfileId, live.BrandId, await WithMergedAsync(live.ProfileId, ct)) : null;
        var direct = rows.Where(r => r.Id != profileId).Select(r => r.Id).ToList();
        return (self.Id, self.TenantId, await MergedIntoAsync([profileId, .. direct], direct, ct));
    }

    private async Task<List<long>> MergedIntoAsync(List<long> all, List<long> frontier, CancellationToken ct)
    {
        for (var hops = 0; frontier.Count > 0 && hops < 100; hops++)
        {
            var ids = frontier;
            frontier = await db.Set<Profile>().AsNoTracking().Where(p => p.MergedIntoId != null && ids.Contains(p.MergedIntoId.Value)).Select(p => p.Id).ToListAsync(ct);
            all.AddRange(frontier);
        }
        return all;
    }

    /// <summary>Identifiers that name one person whichever brand saw them; a device or an app's openid does not.</summary>
    public static readonly string[] PersonIdentifiers = ["phone", "email", "unionid"];

    /// <summary>
    /// The live profiles at <paramref name="brandIds"/> of the person <paramref name="profileId"/> is: those holding one of
    /// its person identifiers (<see cref="PersonIdentifiers"/>, stored normalised). The caller names brands it may reach
    /// through something the group shares (a shared loyalty programme's brands, a group coupon's brand), which the
    /// request's own scope may not cover; nothing but profile ids leaves this method.
    /// </summary>
    public async Task<List<long>> SamePersonAsync(long profileId, IReadOnlyCollection<long> brandIds, CancellationToken ct)
    {
        var values = await db.Set<ProfileIdentifier>().AsNoTracking().Where(i => i.ProfileId == profileId && PersonIdentifiers.Contains(i.Type))
            .Select(i => new { i.Type, i.Value }).ToListAsync(ct);
        if (values.Count == 0 || brandIds.Count == 0) return [];
        var texts = values.Select(v => v.Value).Distinct().ToList();
        var holders = await db.Set<ProfileIdentifier>().IgnoreQueryFilters().AsNoTracking()
            .Where(i => brandIds.Contains(i.TenantId) && PersonIdentifiers.Contains(i.Type) && texts.Contains(i.Value) && i.ProfileId != profileId)
            .Select(i => new { i.ProfileId, i.Type, i.Value }).ToListAsync(ct);
        var ids = holders.Where(h => values.Any(v => v.Type == h.Type && v.Value == h.Value)).Select(h => h.ProfileId).Distinct().ToList();
        return await db.Set<Profile>().IgnoreQueryFilters().AsNoTracking()
            .Where(p => ids.Contains(p.Id) && p.MergedIntoId == null && p.ErasedAt == null).Select(p => p.Id).ToListAsync(ct);
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

    /// <summary>The profile's current trait values (name → value, without provenance) as one JSON object; null when there is no such profile.</summary>
    public async Task<System.Text.Json.JsonElement?> TraitValuesAsync(long profileId, CancellationToken ct)
    {
        var traits = await db.Set<Profile>().AsNoTracking().Where(p => p.Id == profileId).Select(p => p.Traits).SingleOrDefaultAsync(ct);
        if (traits is null) return null;
        var values = new System.Text.Json.Nodes.JsonObject();
        foreach (var (name, node) in System.Text.Json.Nodes.JsonNode.Parse(traits)!.AsObject()) values[name] = node?["v"]?.DeepClone();
        return System.Text.Json.JsonSerializer.SerializeToElement(values);
    }

    /// <summary>The profile's current consents: the latest change per channel and purpose.</summary>
    public async Task<IReadOnlyList<ConsentDto>> ConsentsAsync(long profileId, CancellationToken ct)
    {
        var changes = await db.Set<ConsentChange>().AsNoTracking().Where(c => c.ProfileId == profileId).OrderBy(c => c.ChangedAt).ThenBy(c => c.Id).ToListAsync(ct);
        return changes.GroupBy(c => (c.Channel, c.Purpose)).Select(g => g.Last()).Select(c => new ConsentDto(c.Channel, c.Purpose, c.Granted, c.ChangedAt, c.Origin)).ToList();
    }

    /// <summary>
    /// Records a consent change made outside the event log, by the customer or by staff (<paramref name="origin"/> says
    /// through what), with <c>profile.changed</c>; saved by the caller.
    /// </summary>
    public async Task<ConsentDto> ChangeConsentAsync(long brandId, long profileId, string channel, string purpose, bool granted, string origin, DateTime at,
        CancellationToken ct)
    {
        var change = new ConsentChange { TenantId = brandId, ProfileId = profileId, Channel = channel, Purpose = purpose, Granted = granted, ChangedAt = at, Origin = origin };
        db.Add(change);
        await events.PublishAsync(brandId, () => new ProfileChanged(profileId, "consent", null), ct);
        return new ConsentDto(change.Channel, change.Purpose, change.Granted, change.ChangedAt, change.Origin);
    }

    private async Task<Link?> LinkAsync(long id, CancellationToken ct) =>
        await db.Set<Profile>().AsNoTracking().Where(p => p.Id == id).Select(p => new Link(p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt)).SingleOrDefaultAsync(ct);

    private sealed record Link(long Id, long TenantId, long? MergedIntoId, DateTime? ErasedAt);
}
