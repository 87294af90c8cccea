using System.ComponentModel.DataAnnotations;
using Meridian.Audiences.Data;
using Meridian.Audiences.Segments;
using Meridian.Audiences.Tags;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences;

public sealed record TagGroupDto(long Id, string Name, string? Description, DateTime CreatedAt);

/// <summary>A tag and how many profiles carry it now; <c>segmentId</c> for a rule tag (carried by exactly that segment's members).</summary>
public sealed record TagDto(long Id, string Name, long? GroupId, string? Description, long? SegmentId, long Profiles, DateTime CreatedAt);

/// <summary>A tag on a profile (or on a profile merged into it), set by whom and when.</summary>
public sealed record ProfileTagDto(long TagId, string Name, long? GroupId, DateTime SetAt, string SetBy);

public sealed record TagChangeDto(long Id, long TagId, string Tag, long ProfileId, bool Added, string By, string? Reason, DateTime At);

public sealed record CreateTagGroupRequest(
    [property: Required, StringLength(100, MinimumLength = 1)] string Name,
    [property: StringLength(500)] string? Description);

/// <summary>A manual tag, or with <c>segmentId</c> a rule tag kept by that segment's membership.</summary>
public sealed record CreateTagRequest(
    [property: Required, StringLength(100, MinimumLength = 1)] string Name,
    long? GroupId,
    [property: StringLength(500)] string? Description,
    long? SegmentId = null);

/// <summary>Whom to tag (or untag): profile ids, or identifiers of one type written in any form the brand normalises.</summary>
public sealed record TagProfilesRequest(
    [property: MaxLength(AudiencesEndpoints.MaxListed)] List<long>? ProfileIds,
    [property: StringLength(64)] string? IdentifierType,
    [property: MaxLength(AudiencesEndpoints.MaxListed)] List<string>? Identifiers,
    [property: StringLength(500)] string? Reason);

/// <summary>
/// What a bulk tagging did: <c>changed</c> profiles tagged (or untagged), <c>unchanged</c> ones that already were
/// (or were not), and each value that named nobody, with its reason code.
/// </summary>
public sealed record TagProfilesResult(int Changed, int Unchanged, IReadOnlyList<TagReject> Rejected);

/// <summary><c>reason</c>: <c>invalid_identifier</c> (no valid value of the type), <c>unknown_identifier</c>, <c>unknown_profile</c>.</summary>
public sealed record TagReject(string Value, string Reason);

/// <summary>
/// Tag groups, tags, tagging profiles one by one or in bulk (JSON list or CSV of identifiers), and each profile's tags and
/// their history; segments (rules, estimate, members; handlers in <see cref="SegmentEndpoints"/>).
/// </summary>
public static class AudiencesEndpoints
{
    public const int MaxListed = 10_000;
    private const int CsvChunk = 1_000;

    public static IEndpointRouteBuilder MapAudiencesRoutes(this IEndpointRouteBuilder app)
    {
        var audiences = app.MapGroup("/api/v1").WithTags("Audiences").RequireAuthorization(Permissions.AudiencesRead);
        audiences.MapGet("/tag-groups", TagGroups);
        audiences.MapPost("/tag-groups", CreateTagGroup).RequireAuthorization(Permissions.AudiencesWrite).RequireBrand();
        audiences.MapGet("/tags", Tags);
        audiences.MapPost("/tags", CreateTag).RequireAuthorization(Permissions.AudiencesWrite).RequireBrand();
        audiences.MapGet("/tags/{id}", TagById);
        audiences.MapGet("/tags/{id}/profiles", TaggedProfiles);
        audiences.MapPost("/tags/{id}/profiles", AddToProfiles).RequireAuthorization(Permissions.AudiencesWrite).Accepts<TagProfilesRequest>("application/json", "text/csv");
        audiences.MapPost("/tags/{id}/profiles/remove", RemoveFromProfiles).RequireAuthorization(Permissions.AudiencesWrite);
        audiences.MapPut("/tags/{id}/profiles/{profileId}", AddToProfile).RequireAuthorization(Permissions.AudiencesWrite);
        audiences.MapDelete("/tags/{id}/profiles/{profileId}", RemoveFromProfile).RequireAuthorization(Permissions.AudiencesWrite);
        audiences.MapGet("/profiles/{id}/tags", TagsOfProfile);
        audiences.MapGet("/profiles/{id}/tags/history", TagHistory);
        audiences.MapPost("/segments/estimate", SegmentEndpoints.Estimate).RequireBrand();
        audiences.MapGet("/segments", SegmentEndpoints.List);
        audiences.MapPost("/segments", SegmentEndpoints.Create).RequireAuthorization(Permissions.AudiencesWrite).RequireBrand();
        audiences.MapGet("/segments/overlap", SegmentEndpoints.Overlap);
        audiences.MapGet("/segments/maintenance", SegmentEndpoints.Maintenance);
        audiences.MapGet("/segments/{id}", SegmentEndpoints.Get);
        audiences.MapGet("/segments/{id}/export", SegmentEndpoints.Export).WithMetadata(new SkipAdmissionAttribute());
        audiences.MapPut("/segments/{id}", SegmentEndpoints.Update).RequireAuthorization(Permissions.AudiencesWrite);
        audiences.MapGet("/segments/{id}/members", SegmentEndpoints.Members);
        audiences.MapGet("/segments/{id}/members/{profileId}", SegmentEndpoints.Membership);
        audiences.MapGet("/profiles/{id}/segments", SegmentEndpoints.OfProfile);
        return app;
    }

    public static async Task<Ok<Page<TagGroupDto>>> TagGroups([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<TagGroup>().AsNoTracking().Where(g => g.Id > page.After).OrderBy(g => g.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(ToDto).ToList(), g => g.Id));
    }

    public static async Task<Results<Created<TagGroupDto>, ProblemHttpResult>> CreateTagGroup(
        CreateTagGroupRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<TagGroup>().AnyAsync(g => g.TenantId == tenant.Brand && g.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a tag group named '{request.Name}'.");
        var group = new TagGroup { TenantId = tenant.Brand, Name = request.Name, Description = request.Description, CreatedAt = time.GetUtcNow().UtcDateTime };
        db.Add(group);
        audit.Record(group.TenantId, () => new AuditChange("tag_group.created", "tag_group", group.Id, null, ToDto(group)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/tag-groups/{group.Id}", ToDto(group));
    }

    public static async Task<Ok<Page<TagDto>>> Tags([AsParameters] PageRequest page, [FromQuery] long? groupId, MeridianDb db, CancellationToken ct)
    {
        var query = db.Set<Tag>().AsNoTracking().Where(t => t.Id > page.After);
        if (groupId is { } g) query = query.Where(t => t.GroupId == g);
        var rows = await query.OrderBy(t => t.Id).Take(page.Take + 1).ToListAsync(ct);
        var ids = rows.Select(t => t.Id).ToList();
        var counts = await db.Set<ProfileTag>().Where(pt => ids.Contains(pt.TagId)).GroupBy(pt => pt.TagId)
            .Select(x => new { x.Key, Count = x.LongCount() }).ToDictionaryAsync(x => x.Key, x => x.Count, ct);
        return TypedResults.Ok(page.ToPage(rows.Select(t => ToDto(t, counts.GetValueOrDefault(t.Id))).ToList(), t => t.Id));
    }

    public static async Task<Results<Ok<TagDto>, ProblemHttpResult>> TagById(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<Tag>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is { } tag
            ? TypedResults.Ok(ToDto(tag, await db.Set<ProfileTag>().LongCountAsync(pt => pt.TagId == id, ct)))
            : Problems.NotFound($"Tag {id}");

    public static async Task<Results<Created<TagDto>, ValidationProblem, ProblemHttpResult>> CreateTag(
        CreateTagRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, SegmentSignal signal, CancellationToken ct)
    {
        var segment = request.SegmentId is { } segmentId ? await db.Set<Segment>().SingleOrDefaultAsync(s => s.Id == segmentId && s.TenantId == tenant.Brand, ct) : null;
        if (request.SegmentId is { } wanted && segment is null) return Problems.Validation("segmentId", $"The brand has no segment {wanted}.");
        if (request.GroupId is { } groupId && !await db.Set<TagGroup>().AnyAsync(g => g.Id == groupId && g.TenantId == tenant.Brand, ct))
            return Problems.Validation("groupId", $"The brand has no tag group {groupId}.");
        if (await db.Set<Tag>().AnyAsync(t => t.TenantId == tenant.Brand && t.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a tag named '{request.Name}'.");
        var tag = new Tag
        {
            TenantId = tenant.Brand, Name = request.Name, GroupId = request.GroupId, Description = request.Description, SegmentId = segment?.Id,
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(tag);
        // Evaluated in full again, so that every member gets the new tag.
        if (segment is not null) segment.Status = SegmentStatus.Evaluating;
        audit.Record(tag.TenantId, () => new AuditChange("tag.created", "tag", tag.Id, null, ToDto(tag, 0)));
        await db.SaveChangesAsync(ct);
        if (segment is not null) signal.Notify();
        return TypedResults.Created($"/api/v1/tags/{tag.Id}", ToDto(tag, 0));
    }

    /// <summary>The live profiles carrying the tag (a profile merged away is listed as the one it was merged into), by profile id.</summary>
    public static async Task<Results<Ok<Page<long>>, ProblemHttpResult>> TaggedProfiles(
        long id, [AsParameters] PageRequest page, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        if (!await db.Set<Tag>().AnyAsync(t => t.Id == id, ct)) return Problems.NotFound($"Tag {id}");
        var rows = await db.Set<ProfileTag>().AsNoTracking().Where(pt => pt.TagId == id && pt.ProfileId > page.After).OrderBy(pt => pt.ProfileId)
            .Take(page.Take + 1).Select(pt => pt.ProfileId).ToListAsync(ct);
        var next = rows.Count > page.Take ? rows[page.Take - 1].ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        var live = new List<long>();
        foreach (var profileId in rows.Take(page.Take))
            if (await profiles.FindLiveAsync(profileId, ct) is { } found && !live.Contains(found.ProfileId)) live.Add(found.ProfileId);
        return TypedResults.Ok(new Page<long>(live, next));
    }

    /// <summary>
    /// Tags profiles in bulk: a JSON body (<see cref="TagProfilesRequest"/>), or a CSV file (<c>text/csv</c>, the
    /// identifier in the first column, an optional header line) with <c>?identifierType=</c>. A CSV is read as it
    /// arrives and tagged a thousand rows at a time, so a long list never sits in memory.
    /// </summary>
    public static async Task<Results<Ok<TagProfilesResult>, ValidationProblem, ProblemHttpResult>> AddToProfiles(
        long id, [FromQuery] string? identifierType, HttpContext http, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, Tagging tagging,
        AuditLog audit, CancellationToken ct) =>
        await BulkAsync(id, identifierType, http, db, tenant, profiles, audit, "tag.applied",
            (tag, ids, reason) => tagging.AddAsync(tag, tenant.GroupId, ids, By(http), reason, ct), ct);

    public static async Task<Results<Ok<TagProfilesResult>, ValidationProblem, ProblemHttpResult>> RemoveFromProfiles(
        long id, [FromQuery] string? identifierType, HttpContext http, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, Tagging tagging,
        AuditLog audit, CancellationToken ct) =>
        await BulkAsync(id, identifierType, http, db, tenant, profiles, audit, "tag.unapplied",
            async (tag, ids, reason) =>
            {
                var withMerged = new List<long>();
                foreach (var profileId in ids) withMerged.AddRange(await profiles.WithMergedAsync(profileId, ct));
                return await tagging.RemoveAsync(tag, tenant.GroupId, withMerged, By(http), reason, ct);
            }, ct);

    public static async Task<Results<Ok<ProfileTagDto>, ProblemHttpResult>> AddToProfile(
        long id, long profileId, HttpContext http, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, Tagging tagging, CancellationToken ct)
    {
        if (await db.Set<Tag>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is not { } tag) return Problems.NotFound($"Tag {id}");
        if (tag.SegmentId is not null) return KeptByRule(tag);
        if (await profiles.FindLiveAsync(profileId, ct) is not { } live || live.BrandId != tag.TenantId) return Problems.NotFound($"Profile {profileId}");
        await tagging.AddAsync(tag, tenant.GroupId, [live.ProfileId], By(http), null, ct);
        var set = await db.Set<ProfileTag>().AsNoTracking().SingleAsync(pt => pt.TagId == id && pt.ProfileId == live.ProfileId, ct);
        return TypedResults.Ok(new ProfileTagDto(tag.Id, tag.Name, tag.GroupId, set.SetAt, set.SetBy));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RemoveFromProfile(
        long id, long profileId, [FromQuery] string? reason, HttpContext http, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, Tagging tagging,
        CancellationToken ct)
    {
        if (await db.Set<Tag>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is not { } tag) return Problems.NotFound($"Tag {id}");
        if (tag.SegmentId is not null) return KeptByRule(tag);
        if (await profiles.FindLiveAsync(profileId, ct) is not { } live || live.BrandId != tag.TenantId) return Problems.NotFound($"Profile {profileId}");
        var removed = await tagging.RemoveAsync(tag, tenant.GroupId, await profiles.WithMergedAsync(live.ProfileId, ct), By(http), reason, ct);
        return removed > 0 ? TypedResults.NoContent() : Problems.NotFound($"Tag {id} on profile {profileId}");
    }

    /// <summary>The tags a customer carries, including those set on profiles since merged into theirs.</summary>
    public static async Task<Results<Ok<List<ProfileTagDto>>, ProblemHttpResult>> TagsOfProfile(long id, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        if (await profiles.FindLiveAsync(id, ct) is not { } live) return Problems.NotFound($"Profile {id}");
        var ids = await profiles.WithMergedAsync(live.ProfileId, ct);
        var rows = await (from pt in db.Set<ProfileTag>().AsNoTracking()
                          where ids.Contains(pt.ProfileId)
                          join t in db.Set<Tag>() on pt.TagId equals t.Id
                          select new ProfileTagDto(t.Id, t.Name, t.GroupId, pt.SetAt, pt.SetBy)).ToListAsync(ct);
        return TypedResults.Ok(rows.GroupBy(r => r.TagId).Select(g => g.MinBy(r => r.SetAt)!).OrderBy(r => r.Name, StringComparer.Ordinal).ToList());
    }

    /// <summary>Every tag set on or removed from the customer (and the profiles merged into theirs), newest first.</summary>
    public static async Task<Results<Ok<Page<TagChangeDto>>, ProblemHttpResult>> TagHistory(
        long id, [AsParameters] PageRequest page, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        if (await profiles.FindLiveAsync(id, ct) is not { } live) return Problems.NotFound($"Profile {id}");
        var ids = await profiles.WithMergedAsync(live.ProfileId, ct);
        var before = page.Cursor is null ? long.MaxValue : page.After;
        var rows = await (from c in db.Set<TagChange>().AsNoTracking()
                          where ids.Contains(c.ProfileId) && c.Id < before
                          join t in db.Set<Tag>() on c.TagId equals t.Id
                          orderby c.Id descending
                          select new TagChangeDto(c.Id, t.Id, t.Name, c.ProfileId, c.Added, c.By, c.Reason, c.At)).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows, c => c.Id));
    }

    private static async Task<Results<Ok<TagProfilesResult>, ValidationProblem, ProblemHttpResult>> BulkAsync(
        long id, string? identifierType, HttpContext http, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, AuditLog audit, string action,
        Func<Tag, IReadOnlyCollection<long>, string?, Task<int>> change, CancellationToken ct)
    {
        if (await db.Set<Tag>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is not { } tag) return Problems.NotFound($"Tag {id}");
        if (tag.SegmentId is not null) return KeptByRule(tag);
        var rejected = new List<TagReject>();
        var (changed, named) = (0, 0);
        string? reason = null;

        async Task<ValidationProblem?> IdentifiersAsync(string type, IReadOnlyCollection<string> values)
        {
            if (await profiles.FindByIdentifiersAsync(tag.TenantId, type, values, ct) is not { } found)
                return Problems.Validation("identifierType", $"'{type}' is not an identifier type of this brand.");
            rejected.AddRange(found.Invalid.Select(v => new TagReject(v, "invalid_identifier")));
            rejected.AddRange(values.Where(v => !found.Found.ContainsKey(v) && !found.Invalid.Contains(v)).Select(v => new TagReject(v, "unknown_identifier")));
            var ids = found.Found.Values.Distinct().ToList();
            named += ids.Count;
            changed += await change(tag, ids, reason);
            return null;
        }

        if (http.Request.ContentType?.StartsWith("text/csv", StringComparison.OrdinalIgnoreCase) == true)
        {
            if (string.IsNullOrWhiteSpace(identifierType)) return Problems.Validation("identifierType", "A CSV of identifiers needs ?identifierType= (e.g. phone).");
            using var reader = new StreamReader(http.Request.Body);
            var chunk = new List<string>();
            var first = true;
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                var value = FirstColumn(line);
                if (first && (value.Equals(identifierType, StringComparison.OrdinalIgnoreCase) || value.Equals("identifier", StringComparison.OrdinalIgnoreCase))) { first = false; continue; }
                first = false;
                if (value.Length == 0) continue;
                chunk.Add(value);
                if (chunk.Count < CsvChunk) continue;
                if (await IdentifiersAsync(identifierType, chunk) is { } problem) return problem;
                chunk = [];
            }
            if (chunk.Count > 0 && await IdentifiersAsync(identifierType, chunk) is { } last) return last;
        }
        else
        {
            if (!http.Request.HasJsonContentType())
                return Problems.Validation("body", "Send JSON (application/json), or a CSV of identifiers (text/csv) with ?identifierType=.");
            TagProfilesRequest? request;
            try
            {
                request = await http.Request.ReadFromJsonAsync<TagProfilesRequest>(MeridianJson.Options, ct);
            }
            catch (System.Text.Json.JsonException ex)
            {
                return Problems.Validation("body", $"The body is not a valid request: {ex.Message}");
            }
            if (request is null || (request.ProfileIds is null) == (request.Identifiers is null))
                return Problems.Validation("profileIds", "Give either profileIds or identifierType with identifiers.");
            if (!MiniValidation(request, out var problem)) return problem!;
            reason = request.Reason;
            if (request.Identifiers is { } values)
            {
                if (string.IsNullOrWhiteSpace(request.IdentifierType)) return Problems.Validation("identifierType", "Identifiers need their type (e.g. phone).");
                if (await IdentifiersAsync(request.IdentifierType, values) is { } invalidType) return invalidType;
            }
            else
            {
                var live = new List<long>();
                foreach (var profileId in request.ProfileIds!.Distinct())
                {
                    if (await profiles.FindLiveAsync(profileId, ct) is { } found && found.BrandId == tag.TenantId) live.Add(found.ProfileId);
                    else rejected.Add(new TagReject(profileId.ToString(System.Globalization.CultureInfo.InvariantCulture), "unknown_profile"));
                }
                named += live.Distinct().Count();
                changed += await change(tag, live.Distinct().ToList(), reason);
            }
        }

        audit.Record(tag.TenantId, () => new AuditChange(action, "tag", tag.Id, null, new { changed, unchanged = named - changed, rejected = rejected.Count }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new TagProfilesResult(changed, named - changed, rejected));
    }

    private static bool MiniValidation(TagProfilesRequest request, out ValidationProblem? problem)
    {
        problem = null;
        if (request.ProfileIds?.Count > MaxListed) problem = Problems.Validation("profileIds", $"At most {MaxListed:N0} at a time; send a CSV for more.");
        else if (request.Identifiers?.Count > MaxListed) problem = Problems.Validation("identifiers", $"At most {MaxListed:N0} at a time; send a CSV for more.");
        else if (request.Identifiers?.Any(v => v is null || v.Length > 500) == true) problem = Problems.Validation("identifiers", "Each identifier is text of at most 500 characters.");
        return problem is null;
    }

    private static string FirstColumn(string line)
    {
        var value = line.Split(',', 2)[0].Trim();
        return value.Length >= 2 && value[0] == '"' && value[^1] == '"' ? value[1..^1].Replace("\"\"", "\"").Trim() : value;
    }

    private static string By(HttpContext http) => $"key:{http.Caller().KeyId}";

    private static TagGroupDto ToDto(TagGroup g) => new(g.Id, g.Name, g.Description, g.CreatedAt);

    private static TagDto ToDto(Tag t, long profiles) => new(t.Id, t.Name, t.GroupId, t.Description, t.SegmentId, profiles, t.CreatedAt);

    private static ProblemHttpResult KeptByRule(Tag tag) => Problems.Conflict($"Tag '{tag.Name}' is kept by segment {tag.SegmentId}: its members carry it, nobody else.");
}
