using System.Security.Claims;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty;
using Meridian.Loyalty.Ledger;
using Meridian.Loyalty.Rewards;
using Meridian.Offers;
using Meridian.Offers.Claims;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Meridian.Login.SelfService;

/// <summary>
/// A signed-in customer's points and coupons, through the loyalty and offers modules' public contracts
/// (<see cref="MemberWallet"/>, <see cref="CustomerCoupons"/>): balance and what expires when, history, the rewards on
/// offer and redeeming one (Idempotency-Key required, as for staff), and the coupons held.
/// </summary>
public static class MyWalletEndpoints
{
    public static RouteGroupBuilder MapMyWallet(this RouteGroupBuilder me)
    {
        me.MapGet("/points", MyPoints);
        me.MapGet("/points/entries", MyEntries);
        me.MapGet("/rewards", MyRewards);
        me.MapPost("/rewards/{rewardId}/redeem", RedeemMyReward).Produces<RewardRedemptionDto>();
        me.MapGet("/coupons", MyCoupons);
        return me;
    }

    public static async Task<Results<Ok<BalanceDto>, ProblemHttpResult>> MyPoints(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, MemberWallet wallet, CancellationToken ct) =>
        await MemberAsync(user, db, profiles, wallet, ct) is { } member && await wallet.BalanceAsync(member, ct) is { } balance
            ? TypedResults.Ok(balance)
            : NotAMember();

    public static async Task<Results<Ok<Page<EntryDto>>, ProblemHttpResult>> MyEntries([AsParameters] PageRequest page, ClaimsPrincipal user, MeridianDb db,
        ProfileDirectory profiles, MemberWallet wallet, CancellationToken ct) =>
        await MemberAsync(user, db, profiles, wallet, ct) is { } member && await wallet.EntriesAsync(member, page, ct) is { } entries
            ? TypedResults.Ok(entries)
            : NotAMember();

    public static async Task<Results<Ok<List<RewardDto>>, ProblemHttpResult>> MyRewards(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, MemberWallet wallet, CancellationToken ct) =>
        await MemberAsync(user, db, profiles, wallet, ct) is { } member ? TypedResults.Ok(await wallet.RewardsAsync(member, ct)) : NotAMember();

    public static async Task<IResult> RedeemMyReward(long rewardId, ClaimsPrincipal user, HttpContext http, MeridianDb db, ProfileDirectory profiles,
        MemberWallet wallet, RewardRedemption redemption, CancellationToken ct) =>
        await MemberAsync(user, db, profiles, wallet, ct) is { } member
            ? await redemption.RedeemAsync(member, rewardId, http, ct)
            : NotAMember();

    public static async Task<Results<Ok<Page<CouponDto>>, ValidationProblem, ProblemHttpResult>> MyCoupons([FromQuery(Name = "status")] string? statusText,
        [AsParameters] PageRequest page, ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, CustomerCoupons coupons, CancellationToken ct)
    {
        if (!CustomerCoupons.TryStatus(statusText, out var status)) return CustomerCoupons.BadStatus();
        if (await ProfileAsync(user, db, profiles, ct) is not { } profile) return Problems.NotFound("Your account");
        return TypedResults.Ok(await coupons.OfProfileAsync(profile, status, page, ct));
    }

    /// <summary>The customer's live profile: the account's, or the one it has since been merged into.</summary>
    private static async Task<long?> ProfileAsync(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, CancellationToken ct) =>
        await SelfServiceEndpoints.AccountAsync(user, db, ct) is { } account && await profiles.FindLiveAsync(account.ProfileId, ct) is { } live ? live.ProfileId : null;

    private static async Task<long?> MemberAsync(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, MemberWallet wallet, CancellationToken ct) =>
        await ProfileAsync(user, db, profiles, ct) is { } profile ? await wallet.MemberOfProfileAsync(profile, ct) : null;

    private static ProblemHttpResult NotAMember() => Problems.NotFound("Your membership of the brand's loyalty programme");
}
