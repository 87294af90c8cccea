using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Audit;
using Meridian.Platform.CustomFields;
using Meridian.Profiles.Data;
using Meridian.Profiles.Identity;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Profiles;

/// <summary>
/// <c>profile.changed</c>: a profile changed outside the event log (traits set by hand or by a journey, a manual merge or
/// split, an erasure), so that what follows profiles (segments) looks at it again. <c>change</c> is <c>traits</c>,
/// <c>merged</c> (it took in <c>otherProfileId</c>), <c>merged_into</c> (it went into <c>otherProfileId</c>), <c>split</c>
/// (from <c>otherProfileId</c>) or <c>erased</c>.
/// </summary>
public sealed record ProfileChanged(long ProfileId, string Change, long? OtherProfileId) : Platform.Outbox.IDomainEvent
{
    [System.Text.Json.Serialization.JsonIgnore] public string EventType => "profile.changed";
}

/// <summary>
/// What staff do to profiles by hand: merge two, undo a merge (split), export everything about a person, erase it.
/// Each runs in one transaction, guarded by the profiles' versions against the projector working on them meanwhile.
/// </summary>
public sealed class ProfileSteward(MeridianDb db, EventLog log, AuditLog audit, CustomFieldCatalog fields, Platform.Outbox.EventPublisher events, TimeProvider time)
{
    /// <summary>
    /// Sets (or, with null, clears) traits by hand, each kept with its provenance (<paramref name="by"/>: a key, a journey),
    /// and publishes <c>profile.changed</c>; saved by the caller. Used by staff through the API and by journey steps.
    /// </summary>
    public async Task WriteTraitsAsync(Profile profile, IEnumerable<KeyValuePair<string, JsonElement>> traits, string by, CancellationToken ct)
    {
        WriteTraits(profile, traits, by, time.GetUtcNow().UtcDateTime);
        await events.PublishAsync(profile.TenantId, () => new ProfileChanged(profile.Id, "traits", null), ct);
    }

    private static void WriteTraits(Profile profile, IEnumerable<KeyValuePair<string, JsonElement>> traits, string by, DateTime now)
    {
        var current = JsonNode.Parse(profile.Traits)!.AsObject();
        foreach (var (name, value) in traits)
        {
            if (value.ValueKind == JsonValueKind.Null) current.Remove(name);
            else current[name] = new JsonObject { ["v"] = JsonNode.Parse(value.GetRawText()), ["t"] = now, ["s"] = 0, ["by"] = by };
        }
        profile.Traits = current.ToJsonString(Identity.IdentityResolver.TraitJson);
        profile.UpdatedAt = now;
        profile.Version++;
    }

    public async Task<IdentityMerge> MergeAsync(Profile kept, Profile merged, CancellationToken ct)
    {
        if (kept.Id == merged.Id) throw new BusinessRuleException("A profile cannot be merged with itself.", 422);
        if (merged.MergedIntoId is not null || kept.MergedIntoId is not null || kept.ErasedAt is not null || merged.ErasedAt is not null)
            throw new BusinessRuleException("Only live profiles can be merged.", 409);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var keptIds = await IdentifiersAsync(kept.Id, ct);
        var mergedIds = await IdentifiersAsync(merged.Id, ct);
        var merge = new IdentityMerge
        {
            TenantId = kept.TenantId, KeptProfileId = kept.Id, MergedProfileId = merged.Id, IdentifierType = "manual", IdentifierValue = "",
            KeptSnapshot = Snapshot(kept, keptIds), MergedSnapshot = Snapshot(merged, mergedIds), MergedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(merge);
        await db.Set<ProfileIdentifier>().Where(i => i.ProfileId == merged.Id).ExecuteUpdateAsync(s => s.SetProperty(i => i.ProfileId, kept.Id), ct);
        await db.Set<ProfileEvent>().Where(e => e.ProfileId == merged.Id).ExecuteUpdateAsync(s => s.SetProperty(e => e.ProfileId, kept.Id), ct);
        await db.Set<ConsentChange>().Where(c => c.ProfileId == merged.Id).ExecuteUpdateAsync(s => s.SetProperty(c => c.ProfileId, kept.Id), ct);
        var traits = JsonNode.Parse(kept.Traits)!.AsObject();
        var strategies = await fields.ForAsync(kept.TenantId, "profile", ct);
        foreach (var (name, value) in JsonNode.Parse(merged.Traits)!.AsObject())
            if (value is not null) traits[name] = TraitValues.Combine(traits[name], value, TraitValues.StrategyOf(strategies, name));
        kept.Traits = traits.ToJsonString(Identity.IdentityResolver.TraitJson);
        merged.MergedIntoId = kept.Id;
        Touch(kept, merged);
        await RecountAsync(kept, ct);
        await RecountAsync(merged, ct);
        audit.Record(kept.TenantId, () => new AuditChange("profile.merged", "profile", kept.Id, new { mergedProfileId = merged.Id }, new { mergeId = merge.Id }));
        await events.PublishAsync(kept.TenantId, () => new ProfileChanged(kept.Id, "merged", merged.Id), ct);
        await events.PublishAsync(kept.TenantId, () => new ProfileChanged(merged.Id, "merged_into", kept.Id), ct);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return merge;
    }

    /// <summary>
    /// Undoes a merge: the merged profile gets back the identifiers and the events it held, and its traits as they were;
    /// what the kept profile learnt since the merge stays with it.
    /// </summary>
    public async Task SplitAsync(IdentityMerge merge, CancellationToken ct)
    {
        if (merge.UndoneAt is not null) throw new BusinessRuleException("The merge was already undone.", 409);
        var kept = await db.Set<Profile>().SingleAsync(p => p.Id == merge.KeptProfileId, ct);
        var merged = await db.Set<Profile>().SingleAsync(p => p.Id == merge.MergedProfileId, ct);
        if (merged.MergedIntoId != kept.Id) throw new BusinessRuleException("The merged profile has moved on since (merged again or erased); undo the later change first.", 409);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var snapshot = JsonNode.Parse(merge.MergedSnapshot)!.AsObject();
        foreach (var identifier in snapshot["identifiers"]!.AsArray())
        {
            var type = identifier!["type"]!.GetValue<string>();
            var value = identifier["value"]!.GetValue<string>();
            await db.Set<ProfileIdentifier>().Where(i => i.ProfileId == kept.Id && i.Type == type && i.Value == value)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.ProfileId, merged.Id), ct);
        }
        await db.Set<ProfileEvent>().Where(e => e.ProfileId == kept.Id && e.AttributedProfileId == merged.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.ProfileId, merged.Id), ct);

        merged.Traits = snapshot["traits"]!.ToJsonString(Identity.IdentityResolver.TraitJson);
        var keptTraits = JsonNode.Parse(JsonNode.Parse(merge.KeptSnapshot)!["traits"]!.ToJsonString())!.AsObject();
        var strategies = await fields.ForAsync(kept.TenantId, "profile", ct);
        foreach (var (name, value) in JsonNode.Parse(kept.Traits)!.AsObject())
            if (value is not null && value["t"]!.GetValue<DateTime>() > merge.MergedAt)
                keptTraits[name] = TraitValues.StrategyOf(strategies, name) == TraitMerge.Sum && snapshot["traits"]![name] is { } given
                    ? TraitValues.Subtract(value, given) // a sum learnt since the merge gives back what the merged profile brought
                    : value.DeepClone();
        kept.Traits = keptTraits.ToJsonString(Identity.IdentityResolver.TraitJson);
        merged.MergedIntoId = null;
        merge.UndoneAt = time.GetUtcNow().UtcDateTime;
        Touch(kept, merged);
        await RecountAsync(kept, ct);
        await RecountAsync(merged, ct);
        audit.Record(kept.TenantId, () => new AuditChange("profile.split", "profile", merged.Id, new { keptProfileId = kept.Id, mergeId = merge.Id }, null));
        await events.PublishAsync(kept.TenantId, () => new ProfileChanged(kept.Id, "split", merged.Id), ct);
        await events.PublishAsync(kept.TenantId, () => new ProfileChanged(merged.Id, "split", kept.Id), ct);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
    }

    /// <summary>Everything held about the person: profile, identifiers, every event as received, merges and conflicts.</summary>
    public async Task<JsonObject> ExportAsync(Profile profile, CancellationToken ct)
    {
        var identifiers = await IdentifiersAsync(profile.Id, ct);
        var eventIds = await db.Set<ProfileEvent>().Where(e => e.ProfileId == profile.Id).OrderBy(e => e.Timestamp).Select(e => e.EventId).ToListAsync(ct);
        var events = new JsonArray();
        foreach (var chunk in eventIds.Chunk(500))
            foreach (var e in (await log.GetAsync(chunk, ct)).OrderBy(e => e.Timestamp))
                events.Add(new JsonObject { ["id"] = e.Id, ["type"] = e.Type, ["timestamp"] = e.Timestamp, ["sourceId"] = e.SourceId, ["message"] = JsonNode.Parse(e.Payload) });
        var merges = await db.Set<IdentityMerge>().Where(m => m.KeptProfileId == profile.Id || m.MergedProfileId == profile.Id).ToListAsync(ct);
        var consents = await db.Set<ConsentChange>().Where(c => c.ProfileId == profile.Id).OrderBy(c => c.ChangedAt).ToListAsync(ct);
        audit.Record(profile.TenantId, () => new AuditChange("profile.exported", "profile", profile.Id, null, null));
        await db.SaveChangesAsync(ct);
        return new JsonObject
        {
            ["exportedAt"] = time.GetUtcNow().UtcDateTime,
            ["profile"] = new JsonObject
            {
                ["id"] = profile.Id, ["brandId"] = profile.TenantId, ["createdAt"] = profile.CreatedAt, ["firstSeenAt"] = profile.FirstSeenAt,
                ["lastSeenAt"] = profile.LastSeenAt, ["traits"] = JsonNode.Parse(profile.Traits),
            },
            ["identifiers"] = new JsonArray([.. identifiers.Select(i => (JsonNode)new JsonObject
                { ["type"] = i.Type, ["value"] = i.Value, ["firstSeenAt"] = i.FirstSeenAt, ["lastSeenAt"] = i.LastSeenAt, ["sourceId"] = i.SourceId })]),
            ["events"] = events,
            ["consents"] = new JsonArray([.. consents.Select(c => (JsonNode)new JsonObject
                { ["channel"] = c.Channel, ["purpose"] = c.Purpose, ["granted"] = c.Granted, ["changedAt"] = c.ChangedAt, ["origin"] = c.Origin })]),
            ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)new JsonObject
                { ["id"] = m.Id, ["keptProfileId"] = m.KeptProfileId, ["mergedProfileId"] = m.MergedProfileId, ["mergedAt"] = m.MergedAt, ["undoneAt"] = m.UndoneAt })]),
        };
    }

    /// <summary>
    /// Removes the person's personal data: traits, identifiers, and the content of their stored events. The profile
    /// row and the events' places stay, pseudonymous, so counts and what accounting must keep still add up.
    /// </summary>
    public async Task EraseAsync(Profile profile, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var eventIds = await db.Set<ProfileEvent>().Where(e => e.ProfileId == profile.Id).Select(e => e.EventId).ToListAsync(ct);
        await log.EraseAsync(eventIds, ct);
        await db.Set<ProfileIdentifier>().Where(i => i.ProfileId == profile.Id).ExecuteDeleteAsync(ct);
        // Profiles merged into this one held the same person's data.
        foreach (var old in await db.Set<Profile>().Where(p => p.MergedIntoId == profile.Id).ToListAsync(ct))
        {
            old.Traits = "{}";
            old.ErasedAt = time.GetUtcNow().UtcDateTime;
        }
        await db.Set<IdentityMerge>().Where(m => m.KeptProfileId == profile.Id || m.MergedProfileId == profile.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.KeptSnapshot, "{}").SetProperty(m => m.MergedSnapshot, "{}").SetProperty(m => m.IdentifierValue, "erased"), ct);
        await db.Set<IdentityConflict>().Where(c => c.ProfileId == profile.Id || c.OtherProfileId == profile.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.IdentifierValue, "erased"), ct);
        profile.Traits = "{}";
        profile.ErasedAt = time.GetUtcNow().UtcDateTime;
        Touch(profile);
        audit.Record(profile.TenantId, () => new AuditChange("profile.erased", "profile", profile.Id, null, new { events = eventIds.Count }));
        await events.PublishAsync(profile.TenantId, () => new ProfileChanged(profile.Id, "erased", null), ct);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
    }

    private Task<List<ProfileIdentifier>> IdentifiersAsync(long profileId, CancellationToken ct) =>
        db.Set<ProfileIdentifier>().AsNoTracking().Where(i => i.ProfileId == profileId).OrderBy(i => i.Id).ToListAsync(ct);

    private static string Snapshot(Profile profile, List<ProfileIdentifier> ids) => new JsonObject
    {
        ["identifiers"] = new JsonArray([.. ids.Select(i => (JsonNode)new JsonObject { ["type"] = i.Type, ["value"] = i.Value })]),
        ["traits"] = JsonNode.Parse(profile.Traits),
        ["eventCount"] = profile.EventCount,
    }.ToJsonString();

    private void Touch(params Profile[] profiles)
    {
        foreach (var p in profiles)
        {
            p.UpdatedAt = time.GetUtcNow().UtcDateTime;
            p.Version++;
        }
    }

    private async Task RecountAsync(Profile profile, CancellationToken ct)
    {
        var stats = await db.Set<ProfileEvent>().Where(e => e.ProfileId == profile.Id).GroupBy(_ => 1)
            .Select(g => new { Count = g.LongCount(), First = g.Min(e => e.Timestamp), Last = g.Max(e => e.Timestamp) }).SingleOrDefaultAsync(ct);
        profile.EventCount = stats?.Count ?? 0;
        profile.FirstSeenAt = stats?.First;
        profile.LastSeenAt = stats?.Last;

        // Order facts are replayed from the profile's own order events, in time order.
        (profile.OrderCount, profile.TotalSpendMinor, profile.FirstOrderAt, profile.LastOrderAt, profile.PreviousOrderAt) = (0, 0, null, null, null);
        var currency = await db.Set<Platform.Tenancy.Brand>().Where(b => b.Id == profile.TenantId).Select(b => b.Currency).SingleAsync(ct);
        var ids = await db.Set<ProfileEvent>().Where(e => e.ProfileId == profile.Id).Select(e => e.EventId).ToListAsync(ct);
        var orders = new List<LoggedEvent>();
        foreach (var chunk in ids.Chunk(500))
            orders.AddRange((await log.GetAsync(chunk, ct)).Where(e => e.Type == "track" && e.Name is Identity.OrderFacts.Completed or Identity.OrderFacts.Refunded));
        foreach (var order in orders.OrderBy(e => e.Timestamp))
            Identity.OrderFacts.Apply(profile, order.Name, order.Timestamp, System.Text.Json.JsonDocument.Parse(order.Payload).RootElement, currency);
    }
}
