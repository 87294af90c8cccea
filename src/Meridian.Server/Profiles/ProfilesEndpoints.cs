using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Meridian.Profiles.Identity;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Profiles;

public sealed record IdentifierDto(string Type, string Value, DateTime FirstSeenAt, DateTime LastSeenAt);

public sealed record TraitSourceDto(long SourceId, DateTime At);

public sealed record ProfileDto(long Id, long BrandId, IReadOnlyList<IdentifierDto> Identifiers, IReadOnlyDictionary<string, JsonNode?> Traits,
    IReadOnlyDictionary<string, TraitSourceDto> TraitSources, DateTime? FirstSeenAt, DateTime? LastSeenAt, long EventCount, DateTime CreatedAt,
    DateTime UpdatedAt, ComputedTraitsDto Computed, GroupTotalsDto? Group);

/// <summary>
/// Traits Meridian computes from behaviour: order facts kept current as events arrive, the lifecycle stage as of the
/// request, and the RFM and value scores of the brand's last scoring run (<see cref="ScoredAt"/>; null before a customer's first order).
/// </summary>
public sealed record ComputedTraitsDto(long OrderCount, long TotalSpendMinor, DateTime? FirstOrderAt, DateTime? LastOrderAt, string LifecycleStage,
    RfmDto? Rfm, int? ValueScore, DateTime? ScoredAt);

/// <summary>Quintile scores (1–5) within the brand and the segment they put the customer in; see <see cref="Scoring.ProfileScorer"/>.</summary>
public sealed record RfmDto(int Recency, int Frequency, int Monetary, string Segment);

/// <summary>
/// Shown to a group-level key reading across brands: the same person's orders in each of the group's brands (profiles
/// sharing a phone, email or unionid with this one) and their sum; spend is summed per currency.
/// </summary>
public sealed record GroupTotalsDto(long OrderCount, IReadOnlyDictionary<string, long> TotalSpendMinor, IReadOnlyList<BrandTotalsDto> Profiles);

public sealed record BrandTotalsDto(long BrandId, string Brand, long ProfileId, long OrderCount, long TotalSpendMinor, string Currency);

/// <summary>One identifier rule of a brand; <c>links: false</c> for one several people may share (a family's tablet), true when left out.</summary>
public sealed record IdentifierTypeDto(
    [property: Required, RegularExpression("^[a-z][a-z0-9_]{0,63}$", ErrorMessage = "Use lower-case letters, digits and '_'.")] string Name,
    [property: Range(1, 1000)] int Priority,
    [property: Range(1, 1000)] int MaxPerProfile,
    [property: Required, RegularExpression("^(trim|phone|email)$", ErrorMessage = "Use trim, phone or email.")] string Normalizer,
    [property: Required, MinLength(1)] List<string> Paths,
    List<string>? BlockedValues,
    bool? Links = null);

public sealed record TimelineEventDto(long EventId, string Type, string? Name, DateTime Timestamp, long SourceId, JsonNode? Properties);

/// <summary>How far identity resolution is behind ingestion (all brands: the projector follows one log).</summary>
public sealed record ProjectionStatusDto(long EventsBehind, string? Node, DateTime? LeaseUntil);

public sealed record SharedIdentifierDto(string Type, string Value, int Profiles);

public sealed record CrowdedProfileDto(long ProfileId, int Identifiers);

/// <summary>Signs of identity resolution going wrong: identifiers claimed by many people, profiles gathering too many identifiers.</summary>
public sealed record AnomaliesDto(IReadOnlyList<SharedIdentifierDto> SharedIdentifiers, IReadOnlyList<CrowdedProfileDto> CrowdedProfiles);

public sealed record ConsentDto(string Channel, string Purpose, bool Granted, DateTime ChangedAt, string Origin);

public sealed record ConsentRequest(
    [property: Required, RegularExpression("^(sms|email|push|wechat|phone|in_app)$", ErrorMessage = "Use sms, email, push, wechat, phone or in_app.")] string Channel,
    [property: Required, RegularExpression("^(marketing|service|analytics|personalisation)$", ErrorMessage = "Use marketing, service, analytics or personalisation.")] string Purpose,
    [property: Required] bool? Granted);

public sealed record MergeRequest([property: Required] long? ProfileId);

public sealed record ErasureDto(long ProfileId, DateTime ErasedAt);

public sealed record MergeDto(long Id, long KeptProfileId, long MergedProfileId, long? EventId, string IdentifierType, string IdentifierValue, DateTime MergedAt, DateTime? UndoneAt);

public sealed record ConflictDto(long Id, long EventId, long ProfileId, long? OtherProfileId, string IdentifierType, string IdentifierValue, string Reason, DateTime At);

/// <summary>The unified profile: get, look up by any identifier, the identity rules, and the merge and conflict log.</summary>
public static class ProfilesEndpoints
{
    internal static readonly HashSet<string> PiiTraits = ["email", "phone", "mobile", "name", "first_name", "last_name", "firstName", "lastName", "address", "birthday", "id_card"];

    public static IEndpointRouteBuilder MapProfileRoutes(this IEndpointRouteBuilder app)
    {
        var profiles = app.MapGroup("/api/v1/profiles").WithTags("Profiles").RequireAuthorization(Permissions.ProfilesRead);
        profiles.MapGet("/lookup", Lookup);
        profiles.MapGet("/{id}", Get);
        profiles.MapGet("/{id}/timeline", Timeline);
        profiles.MapPost("/{id}/merge", Merge).RequireAuthorization(Permissions.ProfilesWrite);
        profiles.MapPatch("/{id}/traits", SetTraits).RequireAuthorization(Permissions.ProfilesWrite);
        profiles.MapGet("/{id}/consents", ConsentsOf);
        profiles.MapPost("/{id}/consents", ChangeConsent).RequireAuthorization(Permissions.ProfilesWrite);
        profiles.MapGet("/{id}/export", Export).RequireAuthorization(Permissions.PiiRead);
        profiles.MapDelete("/{id}", Erase).RequireAuthorization(Permissions.ProfilesWrite, Permissions.PiiRead);
        var identity = app.MapGroup("/api/v1/identity").WithTags("Identity");
        identity.MapGet("/types", Types).RequireAuthorization(Permissions.ProfilesRead).RequireBrand();
        identity.MapPut("/types", ReplaceTypes).RequireAuthorization(Permissions.PlatformAdmin).RequireBrand();
        identity.MapGet("/merges", Merges).RequireAuthorization(Permissions.ProfilesRead);
        identity.MapPost("/merges/{id}/undo", Split).RequireAuthorization(Permissions.ProfilesWrite);
        identity.MapGet("/conflicts", Conflicts).RequireAuthorization(Permissions.ProfilesRead);
        identity.MapGet("/anomalies", Anomalies).RequireAuthorization(Permissions.ProfilesRead);
        identity.MapGet("/status", Status).RequireAuthorization(Permissions.ProfilesRead);
        profiles.MapGet("/", Search);
        return app;
    }

    public static async Task<Results<Ok<ProfileDto>, ProblemHttpResult>> Get(long id, HttpContext http, MeridianDb db, ProfileViews views, CancellationToken ct)
    {
        var profile = await SurvivorAsync(db, id, ct);
        return profile is null ? Problems.NotFound($"Profile {id}") : TypedResults.Ok(await views.ToDtoAsync(profile, CanReadPii(http), ct));
    }

    public static async Task<Results<Ok<ProfileDto>, ValidationProblem, ProblemHttpResult>> Lookup(
        [FromQuery, Required, StringLength(64)] string type, [FromQuery, Required, StringLength(500)] string value,
        HttpContext http, MeridianDb db, TenantScope tenant, IdentifierRules rules, ProfileViews views, CancellationToken ct)
    {
        if (tenant.ReadableBrandIds is not [var brandId])
            return TypedResults.Problem(statusCode: 400, type: ProblemTypes.BrandRequired, title: "A brand must be named.",
                detail: "Identifiers belong to a brand: a group-level key names it with the 'Meridian-Brand' header.");
        var (types, region) = await rules.ForAsync(db, brandId, ct);
        var rule = types.FirstOrDefault(t => t.Name == type);
        if (rule is null) return Problems.Validation("type", $"'{type}' is not an identifier type of this brand.");
        var normalized = Normalizers.Normalize(rule.Normalizer, value, region);
        if (normalized is null) return Problems.Validation("value", $"The value is not a valid {type}.");

        var profile = await views.ByIdentifierAsync(brandId, type, normalized, CanReadPii(http), ct);
        return profile is null ? Problems.NotFound("A profile with that identifier") : TypedResults.Ok(profile);
    }

    /// <summary>The profile's events, newest first. Traits inside events are personal data: shown only with pii.read.</summary>
    public static async Task<Results<Ok<Page<TimelineEventDto>>, ProblemHttpResult>> Timeline(
        long id, [AsParameters] PageRequest page, HttpContext http, MeridianDb db, Ingestion.Tracking.EventLog log, CancellationToken ct)
    {
        var profile = await SurvivorAsync(db, id, ct);
        if (profile is null) return Problems.NotFound($"Profile {id}");

        // Newest first; the cursor is the last event id seen (ties in time are ordered by id).
        var before = page.Cursor is null ? long.MaxValue : page.After;
        var query = db.Set<ProfileEvent>().AsNoTracking().Where(pe => pe.ProfileId == profile.Id);
        if (page.Cursor is not null)
        {
            var anchor = await query.Where(pe => pe.EventId == before).Select(pe => (DateTime?)pe.Timestamp).SingleOrDefaultAsync(ct);
            if (anchor is { } at) query = query.Where(pe => pe.Timestamp < at || (pe.Timestamp == at && pe.EventId < before));
        }
        var links = await query.OrderByDescending(pe => pe.Timestamp).ThenByDescending(pe => pe.EventId).Take(page.Take + 1).ToListAsync(ct);
        var events = (await log.GetAsync(links.Select(l => l.EventId).ToList(), ct)).ToDictionary(e => e.Id);
        var pii = CanReadPii(http);
        var items = links.Where(l => events.ContainsKey(l.EventId)).Select(l =>
        {
            var e = events[l.EventId];
            var message = JsonNode.Parse(e.Payload)?.AsObject();
            var properties = message?[e.Type == "identify" ? "traits" : "properties"]?.DeepClone();
            if (!pii && e.Type == "identify") properties = null;
            return new TimelineEventDto(e.Id, e.Type, e.Name, e.Timestamp, e.SourceId, properties);
        }).ToList();
        return TypedResults.Ok(page.ToPage(items, i => i.EventId));
    }

    /// <summary>Merges another profile into this one by hand (the same limits as automatic merges do not apply: staff decide).</summary>
    public static async Task<Results<Ok<ProfileDto>, ProblemHttpResult>> Merge(
        long id, MergeRequest request, HttpContext http, MeridianDb db, ProfileSteward steward, ProfileViews views, CancellationToken ct)
    {
        var kept = await db.Set<Profile>().SingleOrDefaultAsync(p => p.Id == id, ct);
        var merged = await db.Set<Profile>().SingleOrDefaultAsync(p => p.Id == request.ProfileId, ct);
        if (kept is null) return Problems.NotFound($"Profile {id}");
        if (merged is null || merged.TenantId != kept.TenantId) return Problems.NotFound($"Profile {request.ProfileId}");
        await steward.MergeAsync(kept, merged, ct);
        return TypedResults.Ok(await views.ToDtoAsync(kept, CanReadPii(http), ct));
    }

    public static async Task<Results<Ok<MergeDto>, ProblemHttpResult>> Split(long id, MeridianDb db, ProfileSteward steward, CancellationToken ct)
    {
        var merge = await db.Set<IdentityMerge>().SingleOrDefaultAsync(m => m.Id == id, ct);
        if (merge is null) return Problems.NotFound($"Merge {id}");
        await steward.SplitAsync(merge, ct);
        return TypedResults.Ok(new MergeDto(merge.Id, merge.KeptProfileId, merge.MergedProfileId, merge.EventId, merge.IdentifierType, merge.IdentifierValue, merge.MergedAt, merge.UndoneAt));
    }

    /// <summary>Data-subject export: everything held about the person, as JSON.</summary>
    public static async Task<Results<Ok<JsonObject>, ProblemHttpResult>> Export(long id, MeridianDb db, ProfileSteward steward, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().SingleOrDefaultAsync(p => p.Id == id && p.MergedIntoId == null, ct);
        return profile is null ? Problems.NotFound($"Profile {id}") : TypedResults.Ok(await steward.ExportAsync(profile, ct));
    }

    /// <summary>Data-subject erasure: personal data removed from the profile, its identifiers and its stored events.</summary>
    public static async Task<Results<Ok<ErasureDto>, ProblemHttpResult>> Erase(long id, MeridianDb db, ProfileSteward steward, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().SingleOrDefaultAsync(p => p.Id == id && p.MergedIntoId == null, ct);
        if (profile is null) return Problems.NotFound($"Profile {id}");
        if (profile.ErasedAt is null) await steward.EraseAsync(profile, ct);
        return TypedResults.Ok(new ErasureDto(profile.Id, profile.ErasedAt!.Value));
    }

    public static async Task<Ok<ProjectionStatusDto>> Status(MeridianDb db, Ingestion.Tracking.EventLog log, CancellationToken ct)
    {
        var state = await db.Set<ProjectorState>().AsNoTracking().SingleOrDefaultAsync(s => s.Name == Identity.ProfileProjector.Name, ct);
        var behind = await log.BacklogAsync(new Ingestion.Tracking.EventLogPosition(state?.PositionTx ?? 0, state?.PositionId ?? 0), ct);
        return TypedResults.Ok(new ProjectionStatusDto(behind, state?.LeaseOwner, state?.LeaseUntil));
    }

    public static async Task<Ok<AnomaliesDto>> Anomalies(
        [FromQuery, Range(2, 1000)] int? sharedBy, [FromQuery, Range(2, 100000)] int? identifiersOver, HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var minProfiles = sharedBy ?? 3;
        var maxIdentifiers = identifiersOver ?? 30;
        var shared = await db.Set<IdentityConflict>().Where(c => c.OtherProfileId != null)
            .GroupBy(c => new { c.IdentifierType, c.IdentifierValue })
            .Select(g => new { g.Key.IdentifierType, g.Key.IdentifierValue, Profiles = g.Select(c => c.ProfileId).Distinct().Count() + 1 })
            .Where(x => x.Profiles >= minProfiles).OrderByDescending(x => x.Profiles).Take(100).ToListAsync(ct);
        var crowded = await db.Set<ProfileIdentifier>().GroupBy(i => i.ProfileId)
            .Select(g => new { ProfileId = g.Key, Count = g.Count() }).Where(x => x.Count > maxIdentifiers)
            .OrderByDescending(x => x.Count).Take(100).ToListAsync(ct);
        var pii = CanReadPii(http);
        return TypedResults.Ok(new AnomaliesDto(
            shared.Select(s => new SharedIdentifierDto(s.IdentifierType, pii ? s.IdentifierValue : MaskIdentifier(s.IdentifierType, s.IdentifierValue), s.Profiles)).ToList(),
            crowded.Select(c => new CrowdedProfileDto(c.ProfileId, c.Count)).ToList()));
    }

    /// <summary>
    /// Finds customers by phone, email or any identifier value (normalised like incoming data) or by name (a prefix of
    /// the name as written, folded as <see cref="ProfileNames"/> does; in name order). Name search needs pii.read: the result would otherwise confirm a name masked elsewhere.
    /// </summary>
    public static async Task<Results<Ok<List<ProfileDto>>, ValidationProblem, ProblemHttpResult>> Search(
        [FromQuery, Required, StringLength(200, MinimumLength = 1)] string q, HttpContext http, MeridianDb db, TenantScope tenant, ProfileViews views,
        IdentifierRules rules, CancellationToken ct)
    {
        if (tenant.ReadableBrandIds is not [var brandId])
            return TypedResults.Problem(statusCode: 400, type: ProblemTypes.BrandRequired, title: "A brand must be named.",
                detail: "Customers belong to a brand: a group-level key names it with the 'Meridian-Brand' header.");
        var (brandTypes, region) = await rules.ForAsync(db, brandId, ct);
        var candidates = new[] { Normalizers.PhoneToE164(q, region), Normalizers.EmailAddress(q), q.Trim() }.OfType<string>().Distinct().ToArray();
        // The brand's identifier types name the middle column of the (brand, type, value) index: without them the
        // database reads every identifier of the brand.
        var types = brandTypes.Select(t => t.Name).ToArray();
        var ids = await db.Set<ProfileIdentifier>().Where(i => i.TenantId == brandId && types.Contains(i.Type) && candidates.Contains(i.Value))
            .Select(i => i.ProfileId).Distinct().Take(50).ToListAsync(ct);
        var pii = CanReadPii(http);
        if (ids.Count == 0 && pii && ProfileNames.Fold(q) is { } prefix)
        {
            // Every name that starts with the prefix lies in [prefix, UpperBound(prefix)): one range of the (tenant_id, search_name) index.
            var upper = ProfileNames.UpperBound(prefix);
            ids = await db.Set<Profile>()
                .Where(p => p.TenantId == brandId && string.Compare(p.SearchName, prefix) >= 0 && string.Compare(p.SearchName, upper) < 0 && p.MergedIntoId == null)
                .OrderBy(p => p.SearchName).ThenBy(p => p.Id).Select(p => p.Id).Take(50).ToListAsync(ct);
        }
        var profiles = await db.Set<Profile>().AsNoTracking().Where(p => ids.Contains(p.Id)).ToListAsync(ct);
        var result = new List<ProfileDto>();
        foreach (var profile in profiles.OrderBy(p => ids.IndexOf(p.Id))) result.Add(await views.ToDtoAsync(profile, pii, ct));
        return TypedResults.Ok(result);
    }

    /// <summary>
    /// Staff set or clear (null) traits by hand. Custom fields are checked against their type; the change is kept with
    /// its provenance (the key that made it) like any other trait value.
    /// </summary>
    public static async Task<Results<Ok<ProfileDto>, ValidationProblem, ProblemHttpResult>> SetTraits(
        long id, Dictionary<string, JsonElement> traits, HttpContext http, MeridianDb db, Platform.CustomFields.CustomFieldCatalog fields,
        AuditLog audit, ProfileSteward steward, ProfileViews views, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().SingleOrDefaultAsync(p => p.Id == id && p.MergedIntoId == null, ct);
        if (profile is null) return Problems.NotFound($"Profile {id}");
        var known = await fields.ForAsync(profile.TenantId, "profile", ct);
        var errors = new Dictionary<string, string[]>();
        foreach (var (name, value) in traits)
        {
            if (name.Length is 0 or > 64) errors[name] = ["A trait name has 1 to 64 characters."];
            else if (known.TryGetValue(name, out var field) && field.Check(value) is { } problem) errors[name] = [problem];
        }
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors, type: ProblemTypes.Validation, title: "One or more fields are invalid.");

        await steward.WriteTraitsAsync(profile, traits, $"key:{http.Caller().KeyId}", ct);
        audit.Record(profile.TenantId, () => new AuditChange("profile.traits-set", "profile", profile.Id, null, new { traits = traits.Keys }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(await views.ToDtoAsync(profile, CanReadPii(http), ct));
    }

    /// <summary>The current consent per channel and purpose; <c>?history=true</c> lists every change, the evidence.</summary>
    public static async Task<Results<Ok<List<ConsentDto>>, ProblemHttpResult>> ConsentsOf(long id, [FromQuery] bool? history, MeridianDb db, CancellationToken ct)
    {
        if (!await db.Set<Profile>().AnyAsync(p => p.Id == id, ct)) return Problems.NotFound($"Profile {id}");
        var changes = await db.Set<ConsentChange>().AsNoTracking().Where(c => c.ProfileId == id).OrderBy(c => c.ChangedAt).ThenBy(c => c.Id).ToListAsync(ct);
        var shown = history == true ? changes : changes.GroupBy(c => (c.Channel, c.Purpose)).Select(g => g.Last()).ToList();
        return TypedResults.Ok(shown.Select(c => new ConsentDto(c.Channel, c.Purpose, c.Granted, c.ChangedAt, c.Origin)).ToList());
    }

    public static async Task<Results<Ok<ConsentDto>, ProblemHttpResult>> ChangeConsent(
        long id, ConsentRequest request, HttpContext http, MeridianDb db, ProfileDirectory profiles, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id && p.MergedIntoId == null, ct);
        if (profile is null) return Problems.NotFound($"Profile {id}");
        var change = await profiles.ChangeConsentAsync(profile.TenantId, profile.Id, request.Channel, request.Purpose, request.Granted!.Value,
            $"key:{http.Caller().KeyId}", time.GetUtcNow().UtcDateTime, ct);
        audit.Record(profile.TenantId, () => new AuditChange("profile.consent-changed", "profile", profile.Id, null, new { change.Channel, change.Purpose, change.Granted }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(change);
    }

    /// <summary>A merged profile's id keeps working: it answers with the profile it became part of.</summary>
    private static async Task<Profile?> SurvivorAsync(MeridianDb db, long id, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct);
        for (var hops = 0; profile?.MergedIntoId is { } next && hops < 100; hops++)
            profile = await db.Set<Profile>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == next, ct);
        return profile;
    }

    private static bool CanReadPii(HttpContext http) => http.Caller().Permissions.Contains(Permissions.PiiRead);

    internal static string MaskIdentifier(string type, string value) => type switch
    {
        "email" => Pii.MaskEmail(value),
        "phone" => Pii.MaskPhone(value),
        _ => value,
    };

    internal static string Mask(string trait, JsonNode? value)
    {
        var text = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value?.ToJsonString() ?? "";
        return trait switch
        {
            "email" => Pii.MaskEmail(text),
            "phone" or "mobile" => Pii.MaskPhone(text),
            _ => text.Length == 0 ? "" : text[..1] + "**",
        };
    }

    public static async Task<Ok<List<IdentifierTypeDto>>> Types(MeridianDb db, TenantScope tenant, CancellationToken ct)
    {
        var types = await db.Set<IdentifierType>().Where(t => t.TenantId == tenant.Brand).ToListAsync(ct);
        return TypedResults.Ok(DefaultIdentifierTypes.Effective(types, tenant.Brand)
            .Select(t => new IdentifierTypeDto(t.Name, t.Priority, t.MaxPerProfile, t.Normalizer, t.Paths, t.BlockedValues, t.Links)).ToList());
    }

    /// <summary>Replaces the brand's identifier rules as a whole; they apply to events processed from now on.</summary>
    public static async Task<Results<Ok<List<IdentifierTypeDto>>, ValidationProblem>> ReplaceTypes(
        List<IdentifierTypeDto> types, MeridianDb db, TenantScope tenant, AuditLog audit, IdentifierRules rules, CancellationToken ct)
    {
        if (types.Count == 0) return Problems.Validation("$", "Give at least one identifier type.");
        if (types.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) return Problems.Validation("name", $"'{twice.Key}' is listed twice.");
        var before = (await Types(db, tenant, ct)).Value;
        await db.Set<IdentifierType>().Where(t => t.TenantId == tenant.Brand).ExecuteDeleteAsync(ct);
        db.AddRange(types.Select(t => new IdentifierType
        {
            TenantId = tenant.Brand, Name = t.Name, Priority = t.Priority, MaxPerProfile = t.MaxPerProfile, Normalizer = t.Normalizer,
            Paths = t.Paths, BlockedValues = t.BlockedValues ?? [.. DefaultIdentifierTypes.Blocked], Links = t.Links ?? true,
        }));
        audit.Record(tenant.Brand, () => new AuditChange("identity.types-replaced", "identifier-types", tenant.Brand, before, types));
        await db.SaveChangesAsync(ct);
        rules.Forget(tenant.Brand);
        return await Types(db, tenant, ct) is var ok ? ok : throw new InvalidOperationException();
    }

    public static async Task<Ok<Page<MergeDto>>> Merges([AsParameters] PageRequest page, [FromQuery] long? profileId, MeridianDb db, CancellationToken ct)
    {
        var query = db.Set<IdentityMerge>().Where(m => m.Id > page.After);
        if (profileId is { } pid) query = query.Where(m => m.KeptProfileId == pid || m.MergedProfileId == pid);
        var rows = await query.OrderBy(m => m.Id).Take(page.Take + 1)
            .Select(m => new MergeDto(m.Id, m.KeptProfileId, m.MergedProfileId, m.EventId, m.IdentifierType, m.IdentifierValue, m.MergedAt, m.UndoneAt)).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows, m => m.Id));
    }

    public static async Task<Ok<Page<ConflictDto>>> Conflicts([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<IdentityConflict>().Where(c => c.Id > page.After).OrderBy(c => c.Id).Take(page.Take + 1)
            .Select(c => new ConflictDto(c.Id, c.EventId, c.ProfileId, c.OtherProfileId, c.IdentifierType, c.IdentifierValue, c.Reason, c.At)).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows, c => c.Id));
    }
}

/// <summary>How a profile is shown: masked for staff without pii.read, with its computed traits as of now.</summary>
public sealed class ProfileViews(MeridianDb db, TenantScope tenant, TimeProvider time, Microsoft.Extensions.Options.IOptions<LifecycleThresholds> lifecycle)
{
    public async Task<ProfileDto> ToDtoAsync(Profile profile, bool pii, CancellationToken ct)
    {
        var identifiers = await db.Set<ProfileIdentifier>().AsNoTracking().Where(i => i.ProfileId == profile.Id).OrderBy(i => i.Type).ThenBy(i => i.Id).ToListAsync(ct);
        var scoredAt = await db.Set<ProfileScoring>().Where(s => s.TenantId == profile.TenantId).Select(s => s.ScoredAt).SingleOrDefaultAsync(ct);
        return await ToDtoAsync(profile, identifiers, scoredAt, pii, ct);
    }

    /// <summary>
    /// The profile holding a (normalised) identifier of the brand, with its identifiers and the brand's last scoring
    /// read in the same query: a front end's lookup is one round trip to the database, not three.
    /// </summary>
    public async Task<ProfileDto?> ByIdentifierAsync(long brandId, string type, string value, bool pii, CancellationToken ct)
    {
        var found = await (from i in db.Set<ProfileIdentifier>()
                           where i.TenantId == brandId && i.Type == type && i.Value == value
                           join p in db.Set<Profile>() on i.ProfileId equals p.Id
                           select new
                           {
                               Profile = p,
                               Identifiers = db.Set<ProfileIdentifier>().Where(x => x.ProfileId == p.Id).OrderBy(x => x.Type).ThenBy(x => x.Id).ToList(),
                               ScoredAt = db.Set<ProfileScoring>().Where(s => s.TenantId == p.TenantId).Select(s => s.ScoredAt).FirstOrDefault(),
                           }).AsNoTracking().SingleOrDefaultAsync(ct);
        return found is null ? null : await ToDtoAsync(found.Profile, found.Identifiers, found.ScoredAt, pii, ct);
    }

    private async Task<ProfileDto> ToDtoAsync(Profile profile, List<ProfileIdentifier> identifiers, DateTime? scoredAt, bool pii, CancellationToken ct)
    {
        var traits = new Dictionary<string, JsonNode?>();
        var sources = new Dictionary<string, TraitSourceDto>();
        foreach (var (name, node) in JsonNode.Parse(profile.Traits)!.AsObject())
        {
            if (node is null) continue;
            traits[name] = pii || !ProfilesEndpoints.PiiTraits.Contains(name) ? node["v"]?.DeepClone() : JsonValue.Create(ProfilesEndpoints.Mask(name, node["v"]));
            sources[name] = new TraitSourceDto(node["s"]!.GetValue<long>(), node["t"]!.GetValue<DateTime>());
        }
        var rfm = profile is { RecencyScore: { } r, FrequencyScore: { } f, MonetaryScore: { } m, RfmSegment: { } segment } ? new RfmDto(r, f, m, segment) : null;
        return new ProfileDto(profile.Id, profile.TenantId,
            identifiers.Select(i => new IdentifierDto(i.Type, pii ? i.Value : ProfilesEndpoints.MaskIdentifier(i.Type, i.Value), i.FirstSeenAt, i.LastSeenAt)).ToList(),
            traits, sources, profile.FirstSeenAt, profile.LastSeenAt, profile.EventCount, profile.CreatedAt, profile.UpdatedAt,
            new ComputedTraitsDto(profile.OrderCount, profile.TotalSpendMinor, profile.FirstOrderAt, profile.LastOrderAt,
                OrderFacts.LifecycleStage(profile, time.GetUtcNow().UtcDateTime, lifecycle.Value), rfm, profile.ValueScore, scoredAt),
            await GroupTotalsAsync(profile, identifiers, ct));
    }

    /// <summary>
    /// Only for a caller reading across brands (a group-level key that named no brand). The tenant filter still
    /// applies, so the profiles summed are those of brands the caller may read.
    /// </summary>
    private async Task<GroupTotalsDto?> GroupTotalsAsync(Profile profile, List<ProfileIdentifier> identifiers, CancellationToken ct)
    {
        var otherBrands = tenant.ReadableBrandIds.Where(b => b != profile.TenantId).ToArray();
        if (tenant.Unrestricted || otherBrands.Length == 0) return null;
        var values = identifiers.Where(i => ProfileDirectory.PersonIdentifiers.Contains(i.Type)).Select(i => i.Value).ToArray();
        var ids = await db.Set<ProfileIdentifier>()
            .Where(i => otherBrands.Contains(i.TenantId) && ProfileDirectory.PersonIdentifiers.Contains(i.Type) && values.Contains(i.Value))
            .Select(i => i.ProfileId).Distinct().ToListAsync(ct);
        ids.Add(profile.Id);
        var rows = await (from p in db.Set<Profile>()
                          join b in db.Set<Brand>() on p.TenantId equals b.Id
                          where ids.Contains(p.Id) && p.MergedIntoId == null
                          orderby p.Id == profile.Id descending, b.Id, p.Id
                          select new BrandTotalsDto(b.Id, b.Slug, p.Id, p.OrderCount, p.TotalSpendMinor, b.Currency)).ToListAsync(ct);
        return new GroupTotalsDto(rows.Sum(r => r.OrderCount),
            rows.GroupBy(r => r.Currency).ToDictionary(g => g.Key, g => g.Sum(r => r.TotalSpendMinor)), rows);
    }
}
