using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Offers.Claims;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Rewards;

/// <summary>
/// A member burns points for a reward's coupon: the staff endpoint and the customer's own (<c>/me</c>) both redeem here.
/// One transaction: the spend (guarded by the balance's conditional update) and the coupon's issue (under the offer's
/// stock lock) commit together or not at all, so an offer out of stock costs no points and a short balance issues no
/// coupon; the Idempotency-Key makes a retry answer as the first request did. The coupon goes to the member's profile at
/// the brand whose offer it is (in a programme shared by the group, perhaps not the brand redeeming).
/// </summary>
public sealed class RewardRedemption(MeridianDb db, IdempotentPosting once, PointsLedger ledger, CouponIssuer issuer, ProfileDirectory profiles, TimeProvider time)
{
    public async Task<IResult> RedeemAsync(long memberId, long rewardId, HttpContext http, CancellationToken ct)
    {
        var member = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == memberId, ct);
        if (member is null) return Problems.NotFound($"Member {memberId}");
        var reward = await db.Set<LoyaltyReward>().AsNoTracking().SingleOrDefaultAsync(r => r.Id == rewardId && r.ProgrammeId == member.ProgrammeId, ct);
        if (reward is null) return Problems.NotFound($"Reward {rewardId} of the member's programme");
        // Read before the transaction: on SQLite a transaction's first statement should be its first write.
        var plan = (await issuer.PlanAsync([reward.CouponTemplateId], ct)).GetValueOrDefault(reward.CouponTemplateId);
        var holder = plan is null ? null : await HolderAsync(member, plan.Template.TenantId, ct);

        return await once.RunAsync(http, new { rewardId }, async () =>
        {
            if (!reward.Active) throw new BusinessRuleException($"The reward '{reward.Name}' is withdrawn.");
            if (plan is null) throw new BusinessRuleException("The reward's coupon is another brand's offer: redeem it at that brand.");
            if (holder is null) throw new BusinessRuleException("The member has no live customer profile at the brand of the reward's offer (erased, or never linked).");
            var spend = await ledger.SpendAsync(memberId, reward.PointsCost, $"reward:{reward.Id} {reward.Name}", ct);
            if (spend is null) return null;
            var issued = await issuer.IssueAsync(new IssueOrder(plan.Template.TenantId, reward.CouponTemplateId, holder.Value, $"reward:{reward.Id}", null, null),
                plan, Instants.Now(time), ct);
            if (issued.Outcome != IssueOutcome.Issued) throw Refusal(issued.Outcome);
            await db.SaveChangesAsync(ct);
            return new RewardRedemptionDto(LoyaltyEndpoints.ToDto(spend)!, issued.Coupon!);
        }, $"Member {memberId}", ct);
    }

    /// <summary>The member's live profile at the brand (its enrolment profile, for a per-brand programme).</summary>
    private async Task<long?> HolderAsync(LoyaltyMember member, long brandId, CancellationToken ct)
    {
        var linked = await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => p.MemberId == member.Id && p.BrandId == brandId)
            .Select(p => (long?)p.ProfileId).SingleOrDefaultAsync(ct) ?? (member.TenantId == brandId ? member.ProfileId : null);
        return linked is { } id && await profiles.FindLiveAsync(id, ct) is { } live ? live.ProfileId : null;
    }

    /// <summary>Why the offer gave no coupon; thrown so that the spend rolls back with it.</summary>
    private static BusinessRuleException Refusal(IssueOutcome outcome) => outcome switch
    {
        IssueOutcome.OutOfStock => new("The reward's offer is out of stock; no points were spent.", StatusCodes.Status409Conflict, ProblemTypes.OutOfStock),
        IssueOutcome.LimitReached or IssueOutcome.DailyLimitReached =>
            new("The customer has reached the offer's limit of coupons; no points were spent.", StatusCodes.Status409Conflict, ProblemTypes.CouponLimitReached),
        _ => new($"The reward's offer cannot issue coupons now ({outcome}); no points were spent."),
    };
}
