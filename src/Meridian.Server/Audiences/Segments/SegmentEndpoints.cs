using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

/// <summary>A saved segment; <c>status</c> is <c>evaluating</c> until its members are materialised, then <c>ready</c>.</summary>
public sealed record SegmentDto(long Id, string Name, string? Description, JsonElement Rule, string Text, SegmentStatus Status, DateTime? EvaluatedAt,
    DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>A segment with its size now.</summary>
public sealed record SegmentSizeDto(long Id, string Name, string? Description, JsonElement Rule, string Text, SegmentStatus Status, DateTime? EvaluatedAt,
    long Size, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>
/// How far membership maintenance is behind: resolved events it has not read yet, profiles queued for evaluation (and
/// input events from other modules about to queue one),
/// rechecks already due (windows lapsed), segments still being evaluated in full. All zero: every table is current.
/// </summary>
public sealed record MaintenanceDto(long EventsBehind, long QueuedProfiles, long DueRechecks, long Evaluating);

public sealed record EstimateRequest([property: Required] JsonElement? Rule);

public sealed record EstimateDto(long Size, string Text);

public sealed record SaveSegmentRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: StringLength(1000)] string? Description,
    [property: Required] JsonElement? Rule);

public sealed record MembershipDto(long SegmentId, long ProfileId, bool Member);

public sealed record ProfileSegmentDto(long Id, string Name);

public sealed record OverlapDto(long A, long SizeA, long B, long SizeB, long Both);

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
        var size = segment.Status == SegmentStatus.Ready
            ? await db.Set<SegmentMember>().LongCountAsync(m => m.SegmentId == id, ct)
            : await evaluator.CountAsync(segment.TenantId, RuleOf(segment), ct);
        return TypedResults.Ok(new SegmentSizeDto(dto.Id, dto.Name, dto.Description, dto.Rule, dto.Text, dto.Status, dto.EvaluatedAt, size, dto.CreatedAt, dto.UpdatedAt));
    }

    public static async Task<Results<Created<SegmentDto>, ValidationProblem, ProblemHttpResult>> Create(
        SaveSegmentRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, SegmentSignal signal, CancellationToken ct)
    {
        if (Parse(request.Rule) is not { } rule) return Invalid(request.Rule);
        if (await NamedSegmentsProblemAsync(db, tenant.Brand, 0, rule, ct) is { } refused) return refused;
        if (await db.Set<Segment>().AnyAsync(s => s.TenantId == tenant.Brand && s.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a segment named '{request.Name}'.");
        var now = time.GetUtcNow().UtcDateTime;
        var segment = new Segment
        {
            TenantId = tenant.Brand, Name = request.Name, Description = request.Description, Rule = request.Rule!.Value.GetRawText(), CreatedAt = now, UpdatedAt = now,
            Status = SegmentStatus.Evaluating,
        };
        db.Add(segment);
        audit.Record(segment.TenantId, () => new AuditChange("segment.created", "segment", segment.Id, null, ToDto(segment)));
        await db.SaveChangesAsync(ct);
        signal.Notify();
        return TypedResults.Created($"/api/v1/segments/{segment.Id}", ToDto(segment));
    }

    public static async Task<Results<Ok<SegmentDto>, ValidationProblem, ProblemHttpResult>> Update(
        long id, SaveSegmentRequest request, MeridianDb db, AuditLog audit, TimeProvider time, SegmentSignal signal, CancellationToken ct)
    {
        if (await db.Set<Segment>().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        if (Parse(request.Rule) is not { } rule) return Invalid(request.Rule);
        if (await NamedSegmentsProblemAsync(db, segment.TenantId, segment.Id, rule, ct) is { } refused) return refused;
        if (request.Name != segment.Name && await db.Set<Segment>().AnyAsync(s => s.TenantId == segment.TenantId && s.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a segment named '{request.Name}'.");
        var before = ToDto(segment);
        var text = request.Rule!.Value.GetRawText();
        if (text != segment.Rule)
        {
            // Evaluated in full again; meanwhile reads evaluate the new rule live.
            segment.Status = SegmentStatus.Evaluating;
            segment.RuleVersion++;
        }
        (segment.Name, segment.Description, segment.Rule, segment.UpdatedAt) = (request.Name, request.Description, text, time.GetUtcNow().UtcDateTime);
        audit.Record(segment.TenantId, () => new AuditChange("segment.updated", "segment", segment.Id, before, ToDto(segment)));
        await db.SaveChangesAsync(ct);
        signal.Notify();
        return TypedResults.Ok(ToDto(segment));
    }

    /// <summary>The live profiles the rule matches now, by profile id.</summary>
    public static async Task<Results<Ok<Page<long>>, ProblemHttpResult>> Members(
        long id, [AsParameters] PageRequest page, MeridianDb db, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        var ids = await MembersAsync(db, evaluator, segment, page.After, page.Take, ct);
        return TypedResults.Ok(page.ToPage(ids, p => p));
    }

    /// <summary>Is this customer in the segment now? A merged-away id answers for the profile it was merged into.</summary>
    public static async Task<Results<Ok<MembershipDto>, ProblemHttpResult>> Membership(
        long id, long profileId, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, SegmentEvaluator evaluator, CancellationToken ct)
    {
        // The common case (a ready segment, a live profile of its brand) in one query; anything else takes the path below, which tells the cases apart.
        if (await evaluator.ReadyMemberAsync(id, profileId, tenant.Unrestricted ? null : tenant.ReadableBrandIds, ct) is { } inTable)
            return TypedResults.Ok(new MembershipDto(id, profileId, inTable));
        if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        if (await profiles.FindLiveAsync(profileId, ct) is not { } live || live.BrandId != segment.TenantId) return Problems.NotFound($"Profile {profileId}");
        var member = segment.Status == SegmentStatus.Ready
            ? await db.Set<SegmentMember>().AnyAsync(m => m.SegmentId == id && m.ProfileId == live.ProfileId, ct)
            : await evaluator.ContainsAsync(segment.TenantId, RuleOf(segment), live.ProfileId, ct);
        return TypedResults.Ok(new MembershipDto(id, live.ProfileId, member));
    }

    /// <summary>How many customers are in each of two segments of one brand now, and in both.</summary>
    public static async Task<Results<Ok<OverlapDto>, ProblemHttpResult>> Overlap(
        [Microsoft.AspNetCore.Mvc.FromQuery] long a, [Microsoft.AspNetCore.Mvc.FromQuery] long b, MeridianDb db, SegmentEvaluator evaluator, CancellationToken ct)
    {
        var segments = await db.Set<Segment>().AsNoTracking().Where(s => s.Id == a || s.Id == b).ToListAsync(ct);
        if (segments.FirstOrDefault(s => s.Id == a) is not { } first) return Problems.NotFound($"Segment {a}");
        if (segments.FirstOrDefault(s => s.Id == b) is not { } second || second.TenantId != first.TenantId) return Problems.NotFound($"Segment {b} of the same brand");
        var (ruleA, ruleB) = (RuleOf(first), RuleOf(second));
        return TypedResults.Ok(new OverlapDto(a, await evaluator.CountAsync(first.TenantId, ruleA, ct), b, await evaluator.CountAsync(first.TenantId, ruleB, ct),
            await evaluator.CountAsync(first.TenantId, new AllOf([ruleA, ruleB]), ct)));
    }

    /// <summary>
    /// The members now as CSV, streamed a thousand at a time: <c>profile_id</c> and a column per identifier type asked for
    /// (<c>?identifiers=phone,email</c>; several values of one type separated by <c>;</c>), masked without <c>pii.read</c>.
    /// </summary>
    public static async Task<Results<EmptyHttpResult, ValidationProblem, ProblemHttpResult>> Export(
        long id, [Microsoft.AspNetCore.Mvc.FromQuery] string? identifiers, HttpContext http, MeridianDb db, SegmentEvaluator evaluator, ProfileDirectory profiles,
        AuditLog audit, CancellationToken ct)
    {
        if (await db.Set<Segment>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct) is not { } segment) return Problems.NotFound($"Segment {id}");
        var types = (identifiers ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
        if (types.Count > 20 || types.Any(t => t.Length > 64 || t.Any(ch => !char.IsAsciiLetterOrDigit(ch) && ch != '_')))
            return Problems.Validation("identifiers", "Up to 20 identifier types, comma-separated (e.g. phone,email).");
        var pii = http.Caller().Permissions.Contains(Platform.Access.Permissions.PiiRead);
        audit.Record(segment.TenantId, () => new AuditChange("segment.exported", "segment", segment.Id, null, new { identifiers = types, pii }));
        await db.SaveChangesAsync(ct);

        http.Response.ContentType = "text/csv; charset=utf-8";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"segment-{id}.csv\"";
        await using var writer = new StreamWriter(http.Response.Body, new System.Text.UTF8Encoding(false));
        await writer.WriteLineAsync(string.Join(',', new[] { "profile_id" }.Concat(types)));
        for (var after = 0L; ;)
        {
            var page = await MembersAsync(db, evaluator, segment, after, 1000, ct);
            var ids = page.Take(1000).ToList();
            var held = await profiles.IdentifiersOfAsync(ids, types, pii, ct);
            foreach (var profileId in ids)
                await writer.WriteLineAsync(string.Join(',', new[] { profileId.ToString(System.Globalization.CultureInfo.InvariantCulture) }
                    .Concat(types.Select(t => Csv(string.Join(';', held[profileId].GetValueOrDefault(t, [])))))));
            if (page.Count <= 1000) break;
            after = ids[^1];
        }
        await writer.FlushAsync(ct);
        return TypedResults.Empty;
    }

    private static string Csv(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>The brand's segments the customer is in now.</summary>
    public static async Task<Results<Ok<List<ProfileSegmentDto>>, ProblemHttpResult>> OfProfile(
        long id, MeridianDb db, ProfileDirectory profiles, SegmentEvaluator evaluator, CancellationToken ct)
    {
        if (await profiles.FindLiveAsync(id, ct) is not { } live) return Problems.NotFound($"Profile {id}");
        // Each segment answers by its status as read here: from the table once materialised, else live (a status read
        // apart from the table could miss a segment turning ready in between).
        var segments = await db.Set<Segment>().AsNoTracking().Where(s => s.TenantId == live.BrandId).OrderBy(s => s.Id).ToListAsync(ct);
        var ready = segments.Where(s => s.Status == SegmentStatus.Ready).Select(s => s.Id).ToList();
        var inTable = (await db.Set<SegmentMember>().Where(m => m.ProfileId == live.ProfileId && ready.Contains(m.SegmentId)).Select(m => m.SegmentId).ToListAsync(ct)).ToHashSet();
        var result = new List<ProfileSegmentDto>();
        foreach (var segment in segments)
            if (segment.Status == SegmentStatus.Ready ? inTable.Contains(segment.Id) : await evaluator.ContainsAsync(segment.TenantId, RuleOf(segment), live.ProfileId, ct))
                result.Add(new ProfileSegmentDto(segment.Id, segment.Name));
        return TypedResults.Ok(result);
    }

    /// <summary>How far membership maintenance is behind (see <see cref="MaintenanceDto"/>); across the caller's brands.</summary>
    public static async Task<Ok<MaintenanceDto>> Maintenance(MeridianDb db, ProfileDirectory profiles, Ingestion.Tracking.EventLog log, TimeProvider time,
        CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var ids = await db.Set<Segment>().Select(s => s.Id).ToListAsync(ct);
        var job = await db.Set<AudienceJob>().AsNoTracking().SingleOrDefaultAsync(j => j.Name == SegmentMaintenance.Name, ct);
        var resolved = await profiles.ResolvedUpToAsync(ct);
        var behind = job is null ? 0 : await log.BacklogAsync(new Ingestion.Tracking.EventLogPosition(job.PositionTx, job.PositionId), ct)
            - await log.BacklogAsync(resolved, ct);
        // Upstream first (input events not yet delivered, then the profiles they queued): a profile moving downstream
        // between the two counts is then counted in the second; counted the other way round it could be in neither.
        var inputs = await SegmentInputs.PendingAsync(db, ct);
        return TypedResults.Ok(new MaintenanceDto(Math.Max(0, behind) + (ids.Count > 0 && job is null ? 1 : 0),
            inputs + await db.Set<SegmentDirtyProfile>().LongCountAsync(ct),
            await db.Set<SegmentRecheck>().LongCountAsync(r => ids.Contains(r.SegmentId) && r.DueAt <= now, ct),
            await db.Set<Segment>().LongCountAsync(s => s.Status == SegmentStatus.Evaluating, ct)));
    }

    /// <summary>Members above <paramref name="after"/>: from the table once materialised, else by evaluating the rule.</summary>
    private static async Task<List<long>> MembersAsync(MeridianDb db, SegmentEvaluator evaluator, Segment segment, long after, int take, CancellationToken ct) =>
        segment.Status == SegmentStatus.Ready
            ? await db.Set<SegmentMember>().AsNoTracking().Where(m => m.SegmentId == segment.Id && m.ProfileId > after).OrderBy(m => m.ProfileId)
                .Take(take + 1).Select(m => m.ProfileId).ToListAsync(ct)
            : await evaluator.MembersAsync(segment.TenantId, RuleOf(segment), after, take, ct);

    /// <summary>A 400 when the rule names a segment the brand does not have, or one that names this segment back.</summary>
    private static async Task<ValidationProblem?> NamedSegmentsProblemAsync(MeridianDb db, long brandId, long segmentId, SegmentRule rule, CancellationToken ct)
    {
        var named = SegmentRules.Names(rule);
        if (named.Count == 0) return null;
        var others = (await db.Set<Segment>().AsNoTracking().Where(s => s.TenantId == brandId && s.Id != segmentId).ToListAsync(ct)).ToDictionary(s => s.Id, RuleOf);
        if (named.FirstOrDefault(n => !others.ContainsKey(n)) is var missing and > 0)
            return Problems.Validation("rule", missing == segmentId ? "A segment cannot name itself." : $"The brand has no segment {missing}.");
        return SegmentRules.Cycle(segmentId, rule, others) is { } cycle
            ? Problems.Validation("rule", $"Segment {cycle} would depend on itself: segment conditions may not form a cycle.")
            : null;
    }

    private static SegmentRule? Parse(JsonElement? json) => json is { } j ? SegmentRuleParser.Parse(j, out _) : null;

    private static ValidationProblem Invalid(JsonElement? json)
    {
        if (json is not { } j) return Problems.Validation("rule", "A rule is required.");
        SegmentRuleParser.Parse(j, out var errors);
        return Problems.Validation(errors.ToDictionary(e => "rule" + e.Key[1..], e => e.Value));
    }

    internal static SegmentRule RuleOf(Segment segment)
    {
        using var json = JsonDocument.Parse(segment.Rule);
        return SegmentRuleParser.Parse(json.RootElement, out _) ?? throw new InvalidOperationException($"Segment {segment.Id} holds a rule that no longer parses.");
    }

    private static SegmentDto ToDto(Segment s)
    {
        using var json = JsonDocument.Parse(s.Rule);
        return new SegmentDto(s.Id, s.Name, s.Description, json.RootElement.Clone(), SegmentRuleParser.Parse(json.RootElement, out _)?.ToText() ?? "", s.Status, s.EvaluatedAt,
            s.CreatedAt, s.UpdatedAt);
    }
}
