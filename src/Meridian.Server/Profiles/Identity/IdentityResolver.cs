using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Data;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.CustomFields;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Meridian.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Profiles.Identity;

/// <summary>
/// ID-Mapping: attributes each event to one profile by its identifiers, creating, extending and merging profiles as
/// the brand's identifier rules allow, and folding the event's traits into the profile. Works on a batch of events:
/// <see cref="ResolveAsync"/> reads and decides, <see cref="WriteAsync"/> writes it all in the caller's transaction,
/// which commits it together with the batch's place in the event log. Nothing is tracked by EF: SaveChanges' change
/// detection, command batching and row sorting cost more than the writes (measured), so the resolver keeps its own
/// lists of what is new and what changed and writes them with <see cref="EntityRows"/>.
/// </summary>
public sealed class IdentityResolver(MeridianDb db, CustomFieldCatalog fields, TimeProvider time)
{
    /// <summary>Traits are stored with their characters as written (张伟, not \u5F20\u4F1F), so that they read and search as text.</summary>
    public static readonly JsonSerializerOptions TraitJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>How stale an identifier's last-seen time may be.</summary>
    public static readonly TimeSpan LastSeenResolution = TimeSpan.FromHours(1);

    private readonly Dictionary<(long Tenant, string Type, string Value), ProfileIdentifier> owners = [];
    private readonly Dictionary<Profile, List<ProfileIdentifier>> identifiersOf = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<Profile, JsonObject> traitsOf = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<long, Profile> profilesById = [];
    private readonly Dictionary<long, (IReadOnlyList<IdentifierType> Types, string Region)> rules = [];
    private readonly Dictionary<long, string> currencies = [];
    private readonly Dictionary<long, IReadOnlyDictionary<string, CustomField>> customFields = [];
    private readonly List<Attribution> attributed = [];
    private readonly List<ConsentChange> consentChanges = [];
    private readonly List<Profile> newProfiles = [];
    private readonly HashSet<Profile> touched = new(ReferenceEqualityComparer.Instance);
    /// <summary>
    /// Each stored profile as read: its update must find the row still at that version, and its indexed columns are
    /// written only when they changed.
    /// </summary>
    private readonly Dictionary<Profile, (long Version, string? SearchName, long? MergedIntoId)> read = new(ReferenceEqualityComparer.Instance);
    private readonly List<ProfileIdentifier> newIdentifiers = [];
    private readonly HashSet<ProfileIdentifier> changedIdentifiers = new(ReferenceEqualityComparer.Instance);
    private readonly List<IdentityMerge> merges = [];
    private readonly List<IdentityConflict> conflicts = [];
    private readonly List<(long TenantId, long SourceId, DateTime ReceivedAt, string Type)> identifierFailures = [];

    public sealed record Extracted(IdentifierType Type, string Value);

    /// <summary>An event and the profile it goes to (moved along when that profile is merged later in the batch).</summary>
    private sealed class Attribution(LoggedEvent e)
    {
        public LoggedEvent Event { get; } = e;
        public required Profile Profile { get; set; }
    }

    public async Task ResolveAsync(IReadOnlyList<LoggedEvent> events, CancellationToken ct)
    {
        // Parsed documents go back to the pool at the end: left to the collector, every parse rented fresh arrays and the
        // garbage collection they caused was the largest cost of resolution (measured).
        var documents = new List<JsonDocument>(events.Count * 2);
        try
        {
            await ResolveParsedAsync(events, documents, ct);
        }
        finally
        {
            foreach (var document in documents) document.Dispose();
        }
    }

    private async Task ResolveParsedAsync(IReadOnlyList<LoggedEvent> events, List<JsonDocument> documents, CancellationToken ct)
    {
        var parsed = new List<(LoggedEvent Event, JsonElement Message, JsonElement? BatchContext, List<Extracted> Ids)>(events.Count);
        foreach (var tenant in events.Select(e => e.TenantId).Distinct()) await LoadRulesAsync(tenant, ct);
        foreach (var e in events)
        {
            documents.Add(JsonDocument.Parse(e.Payload));
            var message = documents[^1].RootElement;
            JsonElement? batchContext = null;
            if (e.BatchContext is not null)
            {
                documents.Add(JsonDocument.Parse(e.BatchContext));
                batchContext = documents[^1].RootElement;
            }
            var failed = new List<string>();
            parsed.Add((e, message, batchContext, Extract(rules[e.TenantId], message, batchContext, failed)));
            identifierFailures.AddRange(failed.Select(type => (e.TenantId, e.SourceId, e.ReceivedAt, type)));
        }
        await LoadOwnersAsync(parsed.SelectMany(p => p.Ids.Select(i => (p.Event.TenantId, i.Type.Name, i.Value))).ToList(), ct);

        foreach (var (e, message, batchContext, ids) in parsed)
        {
            if (ids.Count == 0) continue; // nothing to tell whose it is: stays in the log, unattributed
            var profile = Attribute(e, ids);
            attributed.Add(new Attribution(e) { Profile = profile });
            touched.Add(profile);
            profile.EventCount++;
            profile.FirstSeenAt = profile.FirstSeenAt is { } first && first <= e.Timestamp ? first : e.Timestamp;
            profile.LastSeenAt = profile.LastSeenAt is { } last && last >= e.Timestamp ? last : e.Timestamp;
            profile.UpdatedAt = time.GetUtcNow().UtcDateTime;
            ApplyTraits(profile, e, message);
            if (e.Type == "track") OrderFacts.Apply(profile, e.Name, e.Timestamp, message, currencies[e.TenantId]);
            if (e.Type == "track" && e.Name == Consents.EventName) ApplyConsent(profile, e, message);
        }
        foreach (var (profile, traits) in traitsOf) profile.Traits = traits.ToJsonString(TraitJson);
        foreach (var profile in touched) profile.Version++;
    }

    /// <summary>
    /// The profile columns resolution changes; the rest (scores, erasure) belong to other writers. The indexed ones
    /// (<see cref="IndexedColumns"/>) are written only for the profiles whose name or merge changed: SQLite rewrites an
    /// index entry for every indexed column an UPDATE sets, changed or not, and most events change neither.
    /// </summary>
    private static readonly string[] ResolvedColumns =
    [
        nameof(Profile.Traits), nameof(Profile.UpdatedAt), nameof(Profile.FirstSeenAt), nameof(Profile.LastSeenAt),
        nameof(Profile.EventCount), nameof(Profile.OrderCount), nameof(Profile.TotalSpendMinor), nameof(Profile.FirstOrderAt),
        nameof(Profile.LastOrderAt), nameof(Profile.PreviousOrderAt), nameof(Profile.Version),
    ];

    private static readonly string[] IndexedColumns = [.. ResolvedColumns, nameof(Profile.SearchName), nameof(Profile.MergedIntoId)];

    /// <summary>
    /// Writes what <see cref="ResolveAsync"/> decided, in the current transaction: new profiles first (everything else
    /// refers to their ids), then the changed ones, each only if still at the version read (else
    /// <see cref="DbUpdateConcurrencyException"/>: a staff action changed it, and the batch must run again); identifiers,
    /// merges, conflicts and consent changes; the link of each event to its profile, which it also keeps as its first
    /// attribution for a later split; the identifiers that could not be normalised, for the source's data quality; and
    /// the stored timelines of profiles merged away.
    /// </summary>
    public async Task WriteAsync(CancellationToken ct)
    {
        await EntityRows.InsertAsync(db, newProfiles, returnKeys: true, ct);
        foreach (var profile in touched) profile.MergedIntoId = profile.MergedInto?.Id ?? profile.MergedIntoId;
        // A new profile merged away in its own batch got its row before the one it points to had an id.
        var changed = touched.Where(p => read.ContainsKey(p) || p.MergedIntoId is not null).ToLookup(p =>
            !read.TryGetValue(p, out var was) || was.SearchName != p.SearchName || was.MergedIntoId != p.MergedIntoId);
        object VersionRead(Profile p) => read.TryGetValue(p, out var was) ? was.Version : p.Version;
        await EntityRows.UpdateAsync(db, changed[false].ToList(), ResolvedColumns, VersionRead, ct);
        await EntityRows.UpdateAsync(db, changed[true].ToList(), IndexedColumns, VersionRead, ct);

        foreach (var identifier in newIdentifiers.Concat(changedIdentifiers)) identifier.ProfileId = identifier.Profile!.Id;
        await EntityRows.InsertAsync(db, newIdentifiers, returnKeys: false, ct);
        await EntityRows.UpdateAsync(db, changedIdentifiers, [nameof(ProfileIdentifier.ProfileId), nameof(ProfileIdentifier.LastSeenAt)], null, ct);
        foreach (var merge in merges) (merge.KeptProfileId, merge.MergedProfileId) = (merge.KeptProfile!.Id, merge.MergedProfile!.Id);
        await EntityRows.InsertAsync(db, merges, returnKeys: false, ct);
        foreach (var conflict in conflicts) (conflict.ProfileId, conflict.OtherProfileId) = (conflict.Profile!.Id, conflict.OtherProfile?.Id);
        await EntityRows.InsertAsync(db, conflicts, returnKeys: false, ct);
        foreach (var consent in consentChanges) consent.ProfileId = consent.Profile!.Id;
        await EntityRows.InsertAsync(db, consentChanges, returnKeys: false, ct);

        var tx = db.Database.CurrentTransaction!.GetDbTransaction();
        await BulkInsert.InsertAsync(tx, "profile_events", ["event_id", "tenant_id", "profile_id", "attributed_profile_id", "timestamp", "name"],
            attributed.Select(a => new object?[] { a.Event.Id, a.Event.TenantId, a.Profile.Id, a.Profile.Id, a.Event.Timestamp, a.Event.Name }), "", ct);
        await EventStore.CountIdentifierFailuresAsync(tx, identifierFailures, ct);
        foreach (var (from, to) in pendingMoves)
        {
            var fromId = from.Id;
            var toId = to.Id;
            await db.Set<ProfileEvent>().Where(pe => pe.ProfileId == fromId).ExecuteUpdateAsync(s => s.SetProperty(pe => pe.ProfileId, toId), ct);
            await db.Set<ConsentChange>().Where(c => c.ProfileId == fromId).ExecuteUpdateAsync(s => s.SetProperty(c => c.ProfileId, toId), ct);
        }
    }

    private async Task LoadRulesAsync(long tenantId, CancellationToken ct)
    {
        if (rules.ContainsKey(tenantId)) return;
        var configured = await db.Set<IdentifierType>().AsNoTracking().Where(t => t.TenantId == tenantId).ToListAsync(ct);
        var brand = await db.Set<Brand>().Where(b => b.Id == tenantId).Select(b => new { b.DefaultPhoneRegion, b.Currency }).SingleOrDefaultAsync(ct);
        var region = brand?.DefaultPhoneRegion ?? "CN";
        currencies[tenantId] = brand?.Currency ?? "CNY";
        rules[tenantId] = (DefaultIdentifierTypes.Effective(configured, tenantId), region);
        customFields[tenantId] = await fields.ForAsync(tenantId, "profile", ct);
    }

    /// <summary>The event's identifiers, normalised, blocked values dropped, strongest first.</summary>
    /// <param name="failed">Gets the type of each identifier present but not normalisable (a phone that is no number).</param>
    public static List<Extracted> Extract((IReadOnlyList<IdentifierType> Types, string Region) rules, JsonElement message, JsonElement? batchContext,
        List<string>? failed = null)
    {
        var found = new List<Extracted>();
        foreach (var type in rules.Types)
        {
            foreach (var rule in type.Paths)
            {
                var (path, condition) = rule.Split('?', 2) is [var p, var c] ? (p, c) : (rule, null);
                if (condition is not null && !Holds(condition, message, batchContext)) continue;
                var raw = ReadWithBatchContext(message, batchContext, path);
                if (raw is null || type.BlockedValues.Contains(raw.Trim(), StringComparer.OrdinalIgnoreCase)) continue;
                var value = Normalizers.Normalize(type.Normalizer, raw, rules.Region);
                if (value is null && !string.IsNullOrWhiteSpace(raw)) failed?.Add(type.Name);
                if (value is not null && !found.Any(f => f.Type.Name == type.Name && f.Value == value)) found.Add(new Extracted(type, value));
            }
        }
        return found;
    }

    private static string? ReadWithBatchContext(JsonElement message, JsonElement? batchContext, string path) =>
        Read(message, path) ?? (path.StartsWith("context.", StringComparison.Ordinal) && batchContext is { } bc ? Read(bc, path["context.".Length..]) : null);

    /// <summary>
    /// A path may apply only to some messages: <c>userId?context.channel=pos</c> reads userId from store events only,
    /// <c>userId?context.channel!=pos</c> from all others (a till's user id is a member number, an app's an account id).
    /// </summary>
    private static bool Holds(string condition, JsonElement message, JsonElement? batchContext)
    {
        var negated = condition.Contains("!=", StringComparison.Ordinal);
        var parts = condition.Split(negated ? "!=" : "=", 2);
        if (parts.Length != 2) return false;
        var equal = string.Equals(ReadWithBatchContext(message, batchContext, parts[0]), parts[1], StringComparison.Ordinal);
        return negated ? !equal : equal;
    }

    private static string? Read(JsonElement element, string path)
    {
        foreach (var part in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(part, out element)) return null;
        }
        return element.ValueKind switch
        {
            JsonValueKind.String => element.GetString(),
            JsonValueKind.Number => element.GetRawText(),
            _ => null,
        };
    }

    /// <summary>
    /// The identifiers that hold the keys (distinct keys), through all three columns of the unique (tenant, type, value)
    /// index: without the type the database read every identifier of the brand (45 ms at 200,000 profiles on
    /// PostgreSQL, for one key as for 100; 300 ms a batch at 1,000,000). SQLite: the keys' brands, types and values as
    /// IN lists (a superset of the keys; its probes are in-process and cheap).
    /// </summary>
    internal static IQueryable<ProfileIdentifier> Holders(MeridianDb db, IReadOnlyCollection<(long Tenant, string Type, string Value)> keys)
    {
        if (db.Database.IsNpgsql())
        {
            // PostgreSQL probes "= ANY" lists on the columns of one index as their cross product (brands x types x values:
            // ~8,000 probes for 500 identifiers, 25-100 ms a chunk at 150,000 identifiers, and a sequential scan once the
            // planner prefers it): the resolver's largest cost at 100,000 customers. Joined with the exact keys, each
            // key is one probe of the unique index.
            long[] brands = [.. keys.Select(k => k.Tenant)];
            string[] names = [.. keys.Select(k => k.Type)], given = [.. keys.Select(k => k.Value)];
            return db.Set<ProfileIdentifier>().FromSql($"""
                SELECT p.* FROM unnest({brands}, {names}, {given}) AS k(tenant_id, type, value)
                JOIN profile_identifiers p ON p.tenant_id = k.tenant_id AND p.type = k.type AND p.value = k.value
                """).AsNoTracking();
        }
        var tenants = keys.Select(k => k.Tenant).Distinct().ToArray();
        var types = keys.Select(k => k.Type).Distinct().ToArray();
        var values = keys.Select(k => k.Value).Distinct().ToArray();
        return db.Set<ProfileIdentifier>().AsNoTracking().Where(i => tenants.Contains(i.TenantId) && types.Contains(i.Type) && values.Contains(i.Value));
    }

    private async Task LoadOwnersAsync(List<(long Tenant, string Type, string Value)> keys, CancellationToken ct)
    {
        foreach (var chunk in keys.Where(k => !owners.ContainsKey(k)).Distinct().Chunk(500))
        {
            var rows = await Holders(db, chunk).ToListAsync(ct);
            foreach (var row in rows) owners.TryAdd((row.TenantId, row.Type, row.Value), row);
        }
        var profileIds = owners.Values.Select(o => o.ProfileId).Where(id => !profilesById.ContainsKey(id)).Distinct().ToArray();
        foreach (var chunk in profileIds.Chunk(500))
        {
            foreach (var profile in await db.Set<Profile>().AsNoTracking().Where(p => chunk.Contains(p.Id)).ToListAsync(ct))
            {
                profilesById[profile.Id] = profile;
                read[profile] = (profile.Version, profile.SearchName, profile.MergedIntoId);
            }
            // Untracked, a row read twice is two objects: keep the one already known, so that a change reaches every list.
            var all = (await db.Set<ProfileIdentifier>().AsNoTracking().Where(i => chunk.Contains(i.ProfileId)).ToListAsync(ct))
                .Select(i => owners.TryAdd((i.TenantId, i.Type, i.Value), i) ? i : owners[(i.TenantId, i.Type, i.Value)]).ToList();
            foreach (var identifier in all) identifier.Profile = profilesById[identifier.ProfileId];
            foreach (var group in all.GroupBy(i => i.ProfileId)) identifiersOf[profilesById[group.Key]] = group.ToList();
        }
        foreach (var owner in owners.Values) owner.Profile ??= profilesById.GetValueOrDefault(owner.ProfileId);
    }

    private Profile Attribute(LoggedEvent e, List<Extracted> ids)
    {
        Profile? OwnerOf(Extracted id) => owners.GetValueOrDefault((e.TenantId, id.Type.Name, id.Value))?.Profile;

        // The strongest identifier decides. If nobody owns it yet, it may join the profile the other identifiers point
        // to, unless that profile already has its fill of that type (a second user id on a shared device is a second person).
        // Identifiers that do not link (a family's tablet) follow the others, and decide only when the event has nothing else.
        var deciding = ids.Where(i => i.Type.Links).ToList() is { Count: > 0 } linking ? linking : ids;
        var strongest = deciding[0];
        var primary = OwnerOf(strongest);
        if (primary is null)
        {
            primary = deciding.Skip(1).Select(OwnerOf).FirstOrDefault(p => p is not null);
            if (primary is null || Count(primary, strongest.Type.Name) >= strongest.Type.MaxPerProfile) primary = NewProfile(e);
        }

        foreach (var id in ids)
        {
            var owner = OwnerOf(id);
            if (owner is null)
            {
                if (Count(primary, id.Type.Name) < id.Type.MaxPerProfile) Attach(primary, id, e);
                else Conflict(e, primary, null, id, "limit_reached");
            }
            else if (!ReferenceEquals(owner, primary))
            {
                if (id.Type.Links && CanMerge(primary, owner, e.TenantId)) primary = Merge(primary, owner, e, id);
                else Conflict(e, primary, owner, id, "merge_not_allowed");
            }
            else
            {
                var known = owners[(e.TenantId, id.Type.Name, id.Value)];
                // To the hour, as API keys' last use is to the minute: a session's every event would otherwise rewrite
                // each of its identifiers.
                if (e.Timestamp > known.LastSeenAt + LastSeenResolution)
                {
                    known.LastSeenAt = e.Timestamp;
                    if (known.Id != 0) changedIdentifiers.Add(known);
                }
            }
        }
        return primary;
    }

    private int Count(Profile profile, string type) => identifiersOf.TryGetValue(profile, out var list) ? list.Count(i => i.Type == type) : 0;

    private bool CanMerge(Profile a, Profile b, long tenantId) =>
        rules[tenantId].Types.All(type =>
            identifiersOf.GetValueOrDefault(a, []).Concat(identifiersOf.GetValueOrDefault(b, []))
                .Where(i => i.Type == type.Name).Select(i => i.Value).Distinct().Count() <= type.MaxPerProfile);

    private Profile NewProfile(LoggedEvent e)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var profile = new Profile { TenantId = e.TenantId, CreatedAt = now, UpdatedAt = now };
        newProfiles.Add(profile);
        identifiersOf[profile] = [];
        return profile;
    }

    private void Attach(Profile profile, Extracted id, LoggedEvent e)
    {
        var identifier = new ProfileIdentifier
        {
            TenantId = e.TenantId, Profile = profile, Type = id.Type.Name, Value = id.Value, SourceId = e.SourceId,
            FirstSeenAt = e.Timestamp, LastSeenAt = e.Timestamp,
        };
        newIdentifiers.Add(identifier);
        owners[(e.TenantId, id.Type.Name, id.Value)] = identifier;
        identifiersOf.TryAdd(profile, []);
        identifiersOf[profile].Add(identifier);
    }

    /// <summary>Merges two profiles into the older one (so ids already handed to front ends keep working) and records it.</summary>
    private Profile Merge(Profile a, Profile b, LoggedEvent e, Extracted cause)
    {
        var (kept, merged) = Older(a, b) ? (a, b) : (b, a);
        var keptIds = identifiersOf.GetValueOrDefault(kept, []);
        var mergedIds = identifiersOf.GetValueOrDefault(merged, []);
        merges.Add(new IdentityMerge
        {
            TenantId = e.TenantId, KeptProfile = kept, MergedProfile = merged, EventId = e.Id, IdentifierType = cause.Type.Name, IdentifierValue = cause.Value,
            KeptSnapshot = Snapshot(kept, keptIds), MergedSnapshot = Snapshot(merged, mergedIds), MergedAt = time.GetUtcNow().UtcDateTime,
        });
        foreach (var identifier in mergedIds.Where(i => i.Id != 0)) changedIdentifiers.Add(identifier);
        foreach (var identifier in mergedIds) identifier.Profile = kept;
        touched.Add(kept);
        touched.Add(merged);
        keptIds.AddRange(mergedIds);
        identifiersOf[kept] = keptIds;
        identifiersOf[merged] = [];
        foreach (var link in attributed.Where(l => ReferenceEquals(l.Profile, merged))) link.Profile = kept;
        // The batch's own list, not the change tracker: asking the tracker detects changes in every entity, once per merge.
        foreach (var consent in consentChanges.Where(c => ReferenceEquals(c.Profile, merged))) consent.Profile = kept;
        if (merged.Id != 0) pendingMoves.Add((merged, kept));

        var keptTraits = TraitsOf(kept);
        foreach (var (name, value) in TraitsOf(merged))
            if (value is not null) keptTraits[name] = TraitValues.Combine(keptTraits[name], value, TraitValues.StrategyOf(customFields[e.TenantId], name));
        traitsOf[merged] = [];
        kept.EventCount += merged.EventCount;
        kept.OrderCount += merged.OrderCount;
        kept.TotalSpendMinor += merged.TotalSpendMinor;
        var orderDates = new[] { kept.LastOrderAt, kept.PreviousOrderAt, merged.LastOrderAt, merged.PreviousOrderAt }.OfType<DateTime>().OrderDescending().ToList();
        kept.LastOrderAt = orderDates.ElementAtOrDefault(0) is var lastOrder && lastOrder != default ? lastOrder : null;
        kept.PreviousOrderAt = orderDates.ElementAtOrDefault(1) is var previousOrder && previousOrder != default ? previousOrder : null;
        kept.FirstOrderAt = Min(kept.FirstOrderAt, merged.FirstOrderAt);
        merged.OrderCount = 0;
        merged.TotalSpendMinor = 0;
        kept.FirstSeenAt = Min(kept.FirstSeenAt, merged.FirstSeenAt);
        kept.LastSeenAt = Max(kept.LastSeenAt, merged.LastSeenAt);
        merged.EventCount = 0;
        merged.MergedInto = kept;
        return kept;
    }

    /// <summary>Stored profiles merged away in this batch, whose stored timelines move to the survivor.</summary>
    private readonly List<(Profile From, Profile To)> pendingMoves = [];

    private static bool Older(Profile a, Profile b) => a.Id != 0 && (b.Id == 0 || a.Id < b.Id) || (a.Id == 0 && b.Id == 0 && a.CreatedAt <= b.CreatedAt);

    private static DateTime? Min(DateTime? a, DateTime? b) => a is null ? b : b is null ? a : a < b ? a : b;

    private static DateTime? Max(DateTime? a, DateTime? b) => a is null ? b : b is null ? a : a > b ? a : b;

    private string Snapshot(Profile profile, List<ProfileIdentifier> ids) => new JsonObject
    {
        ["identifiers"] = new JsonArray([.. ids.Select(i => (JsonNode)new JsonObject { ["type"] = i.Type, ["value"] = i.Value })]),
        ["traits"] = TraitsOf(profile).DeepClone(),
        ["eventCount"] = profile.EventCount,
    }.ToJsonString();

    private void Conflict(LoggedEvent e, Profile attachedTo, Profile? other, Extracted id, string reason) =>
        conflicts.Add(new IdentityConflict
        {
            TenantId = e.TenantId, EventId = e.Id, Profile = attachedTo, OtherProfile = other, IdentifierType = id.Type.Name,
            IdentifierValue = id.Value, Reason = reason, At = time.GetUtcNow().UtcDateTime,
        });

    private JsonObject TraitsOf(Profile profile)
    {
        if (!traitsOf.TryGetValue(profile, out var traits))
            traitsOf[profile] = traits = JsonNode.Parse(profile.Traits)?.AsObject() ?? [];
        return traits;
    }

    /// <summary>Latest by event time wins, per trait; each keeps its value, time and source.</summary>
    private void ApplyTraits(Profile profile, LoggedEvent e, JsonElement message)
    {
        JsonElement traits;
        if (e.Type == "identify" ? !message.TryGetProperty("traits", out traits)
            : !(message.TryGetProperty("context", out var context) && context.ValueKind == JsonValueKind.Object && context.TryGetProperty("traits", out traits)))
            return;
        if (traits.ValueKind != JsonValueKind.Object) return;
        var current = TraitsOf(profile);
        var known = customFields[e.TenantId];
        foreach (var trait in traits.EnumerateObject())
        {
            // A custom field's value must fit its type; one that does not is left out rather than stored wrong.
            if (known.TryGetValue(trait.Name, out var field) && field.Check(trait.Value) is not null) continue;
            var incoming = new JsonObject { ["v"] = JsonNode.Parse(trait.Value.GetRawText()), ["t"] = e.Timestamp, ["s"] = e.SourceId };
            current[trait.Name] = TraitValues.Combine(current[trait.Name], incoming, TraitValues.StrategyOf(known, trait.Name));
        }
    }

    /// <summary>A front end reports a consent change as <c>track "Consent Updated"</c> {channel, purpose, granted}.</summary>
    private void ApplyConsent(Profile profile, LoggedEvent e, JsonElement message)
    {
        if (!message.TryGetProperty("properties", out var p) || p.ValueKind != JsonValueKind.Object) return;
        var channel = p.TryGetProperty("channel", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        var purpose = p.TryGetProperty("purpose", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : "marketing";
        if (!p.TryGetProperty("granted", out var g) || g.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return;
        if (channel is null || !Consents.Channels.Contains(channel) || purpose is null || !Consents.Purposes.Contains(purpose)) return;
        var change = new ConsentChange
        {
            TenantId = e.TenantId, Profile = profile, Channel = channel, Purpose = purpose, Granted = g.GetBoolean(), ChangedAt = e.Timestamp,
            Origin = $"source:{e.SourceId}", EventId = e.Id,
        };
        consentChanges.Add(change);
    }
}
