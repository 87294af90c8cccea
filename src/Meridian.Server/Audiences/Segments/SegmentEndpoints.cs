using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

public sealed record SegmentDto(long Id, string Name, string? Description, JsonElement Rule, string Text, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>A segment with its size now.</summary>
public sealed record SegmentSizeDto(long Id, string Name, string? Description, JsonElement Rule, string Text, long Size, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record EstimateRequest([property: Required] JsonElement? Rule);

public sealed record EstimateDto(long Size, string Text);

public sealed record SaveSegmentRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: StringLength(1000)] string? Description,
    [property: Required] JsonElement? Rule);

public sealed record MembershipDto(long SegmentId, long ProfileId, bool Member);

public sealed record ProfileSegmentDto(long Id, string Name);

/// <summary>The handlers of <c>/api/v1/segments</c> (routes in <see cref="AudiencesEndpoints"/>).</summary>
public static class SegmentEndpoints
{
    public static async Task<Results<Ok<EstimateDto>, ValidationProblem>> Estimate(
        EstimateRequest request, TenantScope tenant, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (Parse(request.Rule) is not { } rule) return Invalid(request.Rule);
        return TypedResults.Ok(new EstimateDto(await evaluator.CountAsync(tenant.Brand, rule, ct), rule.ToText()));
    }

    public static async Task<Ok<Page<SegmentDto>>> List([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<Segment>().AsNoTracking().Where(s => s.Id > page.After).OrderBy(s => s.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(ToDto).ToList(), s => s.Id));
    }

    public static async Task<Results<Ok<SegmentSizeDto>, ProblemHttpResult>> Get(long id, MeridianDb db, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        var dto = ToDto(segment);
        var size = await evaluator.CountAsync(segment.TenantId, RuleOf(segment), ct);
        return TypedResults.Ok(new SegmentSizeDto(dto.Id, dto.Name, dto.Description, dto.Rule, dto.Text, size, dto.CreatedAt, dto.UpdatedAt));
    }

    public static async Task<Results<Created<SegmentDto>, ValidationProblem, ProblemHttpResult>> Create(
        SaveSegmentRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (Parse(request.Rule) is null) return Invalid(request.Rule);
        if (await db.Set<Segment>().AnyAsync(s => s.TenantId == tenant.Brand && s.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a segment named '{request.Name}'.");
        var now = time.GetUtcNow().UtcDateTime;
        var segment = new Segment { TenantId = tenant.Brand, Name = request.Name, Description = request.Description, Rule = request.Rule!.Value.GetRawText(), CreatedAt = now, UpdatedAt = now };
        db.Add(segment);
        audit.Record(segment.TenantId, () => new AuditChange("segment.created", "segment", segment.Id, null, ToDto(segment)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/segments/{segment.Id}", ToDto(segment));
    }

    public static async Task<Results<Ok<SegmentDto>, ValidationProblem, ProblemHttpResult>> Update(
        long id, SaveSegmentRequest request, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<Segment>().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        if (Parse(request.Rule) is null) return Invalid(request.Rule);
        if (request.Name != segment.Name && await db.Set<Segment>().AnyAsync(s => s.TenantId == segment.TenantId && s.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a segment named '{request.Name}'.");
        var before = ToDto(segment);
        (segment.Name, segment.Description, segment.Rule, segment.UpdatedAt) = (request.Name, request.Description, request.Rule!.Value.GetRawText(), time.GetUtcNow().UtcDateTime);
        audit.Record(segment.TenantId, () => new AuditChange("segment.updated", "segment", segment.Id, before, ToDto(segment)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToDto(segment));
    }

    /// <summary>The live profiles the rule matches now, by profile id.</summary>
    public static async Task<Results<Ok<Page<long>>, ProblemHttpResult>> Members(
        long id, [AsParameters] PageRequest page, MeridianDb db, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        var ids = await evaluator.MembersAsync(segment.TenantId, RuleOf(segment), page.After, page.Take, ct);
        return TypedResults.Ok(page.ToPage(ids, p => p));
    }

    /// <summary>Is this customer in the segment now? A merged-away id answers for the profile it was merged into.</summary>
    public static async Task<Results<Ok<MembershipDto>, ProblemHttpResult>> Membership(
        long id, long profileId, MeridianDb db, ProfileDirectory profiles, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        if (await profiles.FindLiveAsync(profileId, ct) is not { } live || live.BrandId != segment.TenantId) return Problems.NotFound($"Profile {profileId}");
        return TypedResults.Ok(new MembershipDto(id, live.ProfileId, await evaluator.ContainsAsync(segment.TenantId, RuleOf(segment), live.ProfileId, ct)));
    }

    /// <summary>The brand's segments the customer is in now.</summary>
    public static async Task<Results<Ok<List<ProfileSegmentDto>>, ProblemHttpResult>> OfProfile(
        long id, MeridianDb db, ProfileDirectory profiles, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (await profiles.FindLiveAsync(id, ct) is not { } live) return Problems.NotFound($"Profile {id}");
        var segments = await db.Set<Segment>().AsNoTracking().Where(s => s.TenantId == live.BrandId).OrderBy(s => s.Id).ToListAsync(ct);
        var result = new List<ProfileSegmentDto>();
        foreach (var segment in segments)
            if (await evaluator.ContainsAsync(segment.TenantId, RuleOf(segment), live.ProfileId, ct)) result.Add(new ProfileSegmentDto(segment.Id, segment.Name));
        return TypedResults.Ok(result);
    }

    private static SegmentRule? Parse(JsonElement? json) => json is { } j ? SegmentRuleParser.Parse(j, out _) : null;

    private static ValidationProblem Invalid(JsonElement? json)
    {
        if (json is not { } j) return Problems.Validation("rule", "A rule is required.");
        SegmentRuleParser.Parse(j, out var errors);
        return Problems.Validation(errors.ToDictionary(e => "rule" + e.Key[1..], e => e.Value));
    }

    private static SegmentRule RuleOf(Segment segment)
    {
        using var json = JsonDocument.Parse(segment.Rule);
        return SegmentRuleParser.Parse(json.RootElement, out _) ?? throw new InvalidOperationException($"Segment {segment.Id} holds a rule that no longer parses.");
    }

    private static SegmentDto ToDto(Segment s)
    {
        using var json = JsonDocument.Parse(s.Rule);
        return new SegmentDto(s.Id, s.Name, s.Description, json.RootElement.Clone(), SegmentRuleParser.Parse(json.RootElement, out _)?.ToText() ?? "", s.CreatedAt, s.UpdatedAt);
    }
}
