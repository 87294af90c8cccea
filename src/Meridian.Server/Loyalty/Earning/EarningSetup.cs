using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Audit;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Earning;

public sealed record EarningRuleDto(long Id, long ProgrammeId, string Event, long Points, int? PerDayCap, int? PerMemberCap, bool Active, DateTime CreatedAt)
{
    internal static EarningRuleDto From(EarningRule r) => new(r.Id, r.ProgrammeId, r.Event, r.Points, r.PerDayCap, r.PerMemberCap, r.Active, r.CreatedAt);
}

public sealed record CampaignDto(long Id, long ProgrammeId, string Name, int MultiplierPercent, DateTime StartsAt, DateTime EndsAt, long? TierId, long? SegmentId,
    DateTime CreatedAt)
{
    internal static CampaignDto From(LoyaltyCampaign c) => new(c.Id, c.ProgrammeId, c.Name, c.MultiplierPercent, c.StartsAt, c.EndsAt, c.TierId, c.SegmentId, c.CreatedAt);
}

/// <summary>
/// How a programme's members earn: per order (rate, rounding, exclusions, return window, refund policy) and how
/// multipliers combine; and what points are worth when they pay at checkout (<c>checkoutPointsPerCurrencyUnit</c>, 0: off).
/// </summary>
public sealed record EarningSettingsDto(long ProgrammeId, long PointsPerCurrencyUnit, PointsRounding Rounding, MultiplierCombination Combination,
    IReadOnlyList<string> ExcludedSkus, IReadOnlyList<string> ExcludedCategories, int PendingDays, RefundShortfallPolicy RefundShortfall, long NegativeLimit,
    long CheckoutPointsPerCurrencyUnit)
{
    internal static EarningSettingsDto From(LoyaltyProgramme p) => new(p.Id, p.PointsPerCurrencyUnit, p.Rounding, p.Combination,
        JsonSerializer.Deserialize<List<string>>(p.ExcludedSkus) ?? [], JsonSerializer.Deserialize<List<string>>(p.ExcludedCategories) ?? [],
        p.PendingDays, p.RefundShortfall, p.NegativeLimit, p.CheckoutPointsPerCurrencyUnit);
}

/// <summary>Every field optional: only those sent change.</summary>
public sealed record EarningSettingsRequest(
    [property: Range(0, 1_000_000)] long? PointsPerCurrencyUnit,
    PointsRounding? Rounding,
    MultiplierCombination? Combination,
    [property: MaxLength(1000)] List<string>? ExcludedSkus,
    [property: MaxLength(1000)] List<string>? ExcludedCategories,
    [property: Range(0, 365)] int? PendingDays,
    RefundShortfallPolicy? RefundShortfall,
    [property: Range(0, 1_000_000_000_000)] long? NegativeLimit,
    [property: Range(0, 1_000_000)] long? CheckoutPointsPerCurrencyUnit = null);

public sealed record EarningRuleRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Event,
    [property: Required, Range(1, 1_000_000_000)] long? Points,
    [property: Range(1, 1_000_000)] int? PerDayCap,
    [property: Range(1, 1_000_000)] int? PerMemberCap,
    bool? Active);

public sealed record CampaignRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required, Range(1, 10_000)] int? MultiplierPercent,
    [property: Required] DateTime? StartsAt,
    [property: Required] DateTime? EndsAt,
    long? TierId,
    long? SegmentId = null);

/// <summary>Setting up how members earn: the programme's earning settings, per-event earning rules, campaign multipliers.</summary>
public static class EarningSetup
{
    public static async Task<Results<Ok<EarningSettingsDto>, ProblemHttpResult>> Settings(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct) is { } programme
            ? TypedResults.Ok(EarningSettingsDto.From(programme))
            : Problems.NotFound($"Programme {id}");

    public static async Task<Results<Ok<EarningSettingsDto>, ValidationProblem, ProblemHttpResult>> ChangeSettings(
        long id, EarningSettingsRequest request, MeridianDb db, AuditLog audit, ProgrammeRules rules, CancellationToken ct)
    {
        if (Invalid(request.ExcludedSkus)) return Problems.Validation("excludedSkus", "Each SKU is a non-empty string of at most 200 characters.");
        if (Invalid(request.ExcludedCategories)) return Problems.Validation("excludedCategories", "Each category is a non-empty string of at most 200 characters.");
        var programme = await db.Set<LoyaltyProgramme>().SingleOrDefaultAsync(p => p.Id == id, ct);
        if (programme is null) return Problems.NotFound($"Programme {id}");
        var before = EarningSettingsDto.From(programme);
        if (request.PointsPerCurrencyUnit is { } perUnit) programme.PointsPerCurrencyUnit = perUnit;
        if (request.Rounding is { } rounding) programme.Rounding = rounding;
        if (request.Combination is { } combination) programme.Combination = combination;
        if (request.ExcludedSkus is { } skus) programme.ExcludedSkus = JsonSerializer.Serialize(skus.Select(s => s.Trim()).Where(s => s.Length > 0).Distinct().ToList());
        if (request.ExcludedCategories is { } categories) programme.ExcludedCategories = JsonSerializer.Serialize(categories.Select(s => s.Trim()).Where(s => s.Length > 0).Distinct().ToList());
        if (request.PendingDays is { } pending) programme.PendingDays = pending;
        if (request.RefundShortfall is { } policy) programme.RefundShortfall = policy;
        if (request.NegativeLimit is { } limit) programme.NegativeLimit = limit;
        if (request.CheckoutPointsPerCurrencyUnit is { } checkout) programme.CheckoutPointsPerCurrencyUnit = checkout;
        var after = EarningSettingsDto.From(programme);
        audit.Record(programme.TenantId, () => new AuditChange("loyalty.earning_settings.changed", "loyalty_programme", id, before, after));
        await db.SaveChangesAsync(ct);
        rules.Forget(id);
        return TypedResults.Ok(after);
    }

    private static bool Invalid(List<string>? values) => values is not null && values.Any(v => string.IsNullOrWhiteSpace(v) || v.Length > 200);

    public static async Task<Results<Ok<List<EarningRuleDto>>, ProblemHttpResult>> Rules(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<LoyaltyProgramme>().AnyAsync(p => p.Id == id, ct)
            ? TypedResults.Ok((await db.Set<EarningRule>().AsNoTracking().Where(r => r.ProgrammeId == id).OrderBy(r => r.Id).ToListAsync(ct)).Select(EarningRuleDto.From).ToList())
            : Problems.NotFound($"Programme {id}");

    /// <summary>Creates the programme's rule for an event, or replaces it (points, caps, active): one rule per event name.</summary>
    public static async Task<Results<Ok<EarningRuleDto>, ProblemHttpResult>> PutRule(
        long id, EarningRuleRequest request, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct);
        if (programme is null) return Problems.NotFound($"Programme {id}");
        var rule = await db.Set<EarningRule>().SingleOrDefaultAsync(r => r.ProgrammeId == id && r.Event == request.Event, ct);
        var before = rule is null ? null : EarningRuleDto.From(rule);
        if (rule is null)
        {
            rule = new EarningRule { TenantId = programme.TenantId, ProgrammeId = id, Event = request.Event, CreatedAt = Instants.Now(time) };
            db.Add(rule);
        }
        rule.Points = request.Points!.Value;
        rule.PerDayCap = request.PerDayCap;
        rule.PerMemberCap = request.PerMemberCap;
        rule.Active = request.Active ?? true;
        audit.Record(programme.TenantId, () => new AuditChange("loyalty.earning_rule.saved", "loyalty_earning_rule", rule.Id, before, EarningRuleDto.From(rule)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(EarningRuleDto.From(rule));
    }

    public static async Task<Results<Ok<List<CampaignDto>>, ProblemHttpResult>> Campaigns(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<LoyaltyProgramme>().AnyAsync(p => p.Id == id, ct)
            ? TypedResults.Ok((await db.Set<LoyaltyCampaign>().AsNoTracking().Where(c => c.ProgrammeId == id).OrderBy(c => c.StartsAt).ThenBy(c => c.Id).ToListAsync(ct))
                .Select(CampaignDto.From).ToList())
            : Problems.NotFound($"Programme {id}");

    public static async Task<Results<Created<CampaignDto>, ValidationProblem, ProblemHttpResult>> CreateCampaign(
        long id, CampaignRequest request, MeridianDb db, AuditLog audit, TimeProvider time, ProgrammeRules rules, Audiences.SegmentMembers segments, CancellationToken ct)
    {
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct);
        if (programme is null) return Problems.NotFound($"Programme {id}");
        var (starts, ends) = (request.StartsAt!.Value.ToUniversalTime(), request.EndsAt!.Value.ToUniversalTime());
        if (ends <= starts) return Problems.Validation("endsAt", "A campaign ends after it starts.");
        if (request.TierId is { } tierId && !await db.Set<LoyaltyTier>().AnyAsync(t => t.Id == tierId && t.ProgrammeId == id, ct))
            return Problems.Validation("tierId", $"Tier {tierId} is not a tier of programme {id}.");
        // A segment of a brand the programme is open to (its own brand; for a shared programme any of the group's brands in it).
        if (request.SegmentId is { } segmentId && (await segments.ExistAsync(await db.Set<LoyaltyProgrammeBrand>().Where(b => b.ProgrammeId == id).Select(b => b.BrandId).ToListAsync(ct),
                [segmentId], ct)).Count == 0)
            return Problems.Validation("segmentId", $"Segment {segmentId} is not a segment of a brand of programme {id}.");
        var campaign = new LoyaltyCampaign
        {
            TenantId = programme.TenantId, ProgrammeId = id, Name = request.Name, MultiplierPercent = request.MultiplierPercent!.Value,
            StartsAt = starts, EndsAt = ends, TierId = request.TierId, SegmentId = request.SegmentId, CreatedAt = Instants.Now(time),
        };
        db.Add(campaign);
        audit.Record(programme.TenantId, () => new AuditChange("loyalty.campaign.created", "loyalty_campaign", campaign.Id, null, CampaignDto.From(campaign)));
        await db.SaveChangesAsync(ct);
        rules.Forget(id);
        return TypedResults.Created($"/api/v1/loyalty/programmes/{id}/campaigns", CampaignDto.From(campaign));
    }
}
