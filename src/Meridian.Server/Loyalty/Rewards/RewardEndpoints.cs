using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Offers.Claims;
using Meridian.Platform.Audit;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Rewards;

public sealed record RewardDto(long Id, long ProgrammeId, string Name, long PointsCost, long CouponTemplateId, bool Active, DateTime CreatedAt)
{
    internal static RewardDto From(LoyaltyReward r) => new(r.Id, r.ProgrammeId, r.Name, r.PointsCost, r.CouponTemplateId, r.Active, r.CreatedAt);
}

public sealed record CreateRewardRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required, Range(1, 1_000_000_000_000)] long? PointsCost,
    [property: Required] long? CouponTemplateId);

public sealed record UpdateRewardRequest([property: Range(1, 1_000_000_000_000)] long? PointsCost, bool? Active);

/// <summary>What a redemption did: the spend entry and the coupon it bought.</summary>
public sealed record RewardRedemptionDto(EntryDto Spend, IssuedCouponDto Coupon);

/// <summary>The rewards catalogue: members burn points for coupons (<see cref="RewardRedemption"/>).</summary>
public static class RewardEndpoints
{
    public static async Task<Results<Ok<List<RewardDto>>, ProblemHttpResult>> List(long id, MeridianDb db, CancellationToken ct)
    {
        if (!await db.Set<LoyaltyProgramme>().AnyAsync(p => p.Id == id, ct)) return Problems.NotFound($"Programme {id}");
        var rewards = await db.Set<LoyaltyReward>().AsNoTracking().Where(r => r.ProgrammeId == id).OrderBy(r => r.PointsCost).ThenBy(r => r.Id).ToListAsync(ct);
        return TypedResults.Ok(rewards.Select(RewardDto.From).ToList());
    }

    public static async Task<Results<Created<RewardDto>, ValidationProblem, ProblemHttpResult>> Create(
        long id, CreateRewardRequest request, MeridianDb db, CouponIssuer issuer, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct);
        if (programme is null) return Problems.NotFound($"Programme {id}");
        var plans = await issuer.PlanAsync([request.CouponTemplateId!.Value], ct);
        if (!plans.TryGetValue(request.CouponTemplateId.Value, out var plan) || !await db.Set<LoyaltyProgrammeBrand>().AnyAsync(b => b.ProgrammeId == id && b.BrandId == plan.Template.TenantId, ct))
            return Problems.Validation("couponTemplateId", $"No brand of the programme has an offer template {request.CouponTemplateId}.");
        var reward = new LoyaltyReward
        {
            TenantId = programme.TenantId, ProgrammeId = id, Name = request.Name, PointsCost = request.PointsCost!.Value,
            CouponTemplateId = plan.Template.Id, Active = true, CreatedAt = Instants.Now(time),
        };
        db.Add(reward);
        audit.Record(reward.TenantId, () => new AuditChange("loyalty.reward.created", "loyalty_reward", reward.Id, null, RewardDto.From(reward)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/loyalty/programmes/{id}/rewards", RewardDto.From(reward));
    }

    public static async Task<Results<Ok<RewardDto>, ProblemHttpResult>> Update(
        long id, long rewardId, UpdateRewardRequest request, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var reward = await db.Set<LoyaltyReward>().SingleOrDefaultAsync(r => r.Id == rewardId && r.ProgrammeId == id, ct);
        if (reward is null) return Problems.NotFound($"Reward {rewardId} of programme {id}");
        var before = RewardDto.From(reward);
        reward.PointsCost = request.PointsCost ?? reward.PointsCost;
        reward.Active = request.Active ?? reward.Active;
        audit.Record(reward.TenantId, () => new AuditChange("loyalty.reward.updated", "loyalty_reward", reward.Id, before, RewardDto.From(reward)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(RewardDto.From(reward));
    }

    /// <summary>The member spends the reward's points and gets its coupon; Idempotency-Key required.</summary>
    public static Task<IResult> Redeem(long id, long rewardId, HttpContext http, RewardRedemption redemption, CancellationToken ct) =>
        redemption.RedeemAsync(id, rewardId, http, ct);
}
