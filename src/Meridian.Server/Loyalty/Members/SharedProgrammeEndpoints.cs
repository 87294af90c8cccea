using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Members;

public sealed record LinkProfileRequest([property: Required] long? ProfileId, [property: Required, StringLength(500, MinimumLength = 1)] string Reason);

public sealed record UnlinkProfileRequest([property: Required, StringLength(500, MinimumLength = 1)] string Reason);

/// <summary>
/// What happened at one brand over the period, in points: <c>issued</c> (earned there, less refunds there),
/// <c>redeemed</c> (spent there, less spends reversed there), <c>expired</c> (points it issued that expired), <c>adjusted</c>
/// (staff corrections made there). <c>net</c> = issued − redeemed − expired + adjusted: what the brand added to the
/// members' balances; a brand whose members redeem more than it issued (net below zero) honoured points other brands issued.
/// </summary>
public sealed record BrandSettlementDto(long BrandId, long Issued, long Redeemed, long Expired, long Adjusted, long Net);

/// <summary>The programme's points per brand over [<c>from</c>, <c>to</c>); the brands' nets sum to the change of all balances.</summary>
public sealed record SettlementDto(long ProgrammeId, DateTime? From, DateTime To, IReadOnlyList<BrandSettlementDto> Brands, BrandSettlementDto Total);

/// <summary>A programme shared by the group: linking a member's profiles at its brands, and the per-brand settlement view.</summary>
public static class SharedProgrammeEndpoints
{
    /// <summary>Staff link a profile of a brand of the member's programme to the member (with a reason, audited).</summary>
    public static async Task<Results<Ok<MemberDto>, ProblemHttpResult>> Link(long id, LinkProfileRequest request, MeridianDb db, ProfileDirectory profiles,
        MemberLinks links, CancellationToken ct)
    {
        var member = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, ct);
        if (member is null) return Problems.NotFound($"Member {id}");
        if (await profiles.FindLiveAsync(request.ProfileId!.Value, ct) is not { } profile || !(await links.BrandsOfAsync(member.ProgrammeId, ct)).Contains(profile.BrandId))
            return Problems.NotFound($"Profile {request.ProfileId}");
        try
        {
            await links.LinkAsync(member, profile.ProfileId, profile.BrandId, request.Reason, ct);
        }
        catch (DbUpdateException ex) when (LoyaltyEndpoints.IsUniqueViolation(ex))
        {
            return Problems.Conflict($"Profile {profile.ProfileId} or brand {profile.BrandId} was linked to a member meanwhile.");
        }
        return TypedResults.Ok(await LoyaltyEndpoints.ToDtoAsync(db, member, ct));
    }

    /// <summary>Staff unlink a profile from the member (with a reason, audited); the member keeps its points and at least one profile.</summary>
    public static async Task<Results<Ok<MemberDto>, ProblemHttpResult>> Unlink(long id, long profileId, UnlinkProfileRequest request, MeridianDb db,
        MemberLinks links, CancellationToken ct)
    {
        var member = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, ct);
        if (member is null) return Problems.NotFound($"Member {id}");
        if (!await links.UnlinkAsync(member, profileId, request.Reason, ct)) return Problems.NotFound($"Profile {profileId} of member {id}");
        return TypedResults.Ok(await LoyaltyEndpoints.ToDtoAsync(db, member, ct));
    }

    /// <summary>Points issued, redeemed, expired and adjusted per brand over a period (default: from the start until now), for settling between brands.</summary>
    public static async Task<Results<Ok<SettlementDto>, ValidationProblem, ProblemHttpResult>> Settlement(long id, [FromQuery] DateTime? from, [FromQuery] DateTime? to,
        MeridianDb db, TimeProvider time, CancellationToken ct)
    {
        // To the microsecond, as entries keep their instants.
        DateTime? since = from is { } f ? Instants.Micros(f.ToUniversalTime()) : null, before = to is { } t ? Instants.Micros(t.ToUniversalTime()) : null;
        if (since >= before) return Problems.Validation("to", "The period must end after it starts.");
        if (!await db.Set<LoyaltyProgramme>().AnyAsync(p => p.Id == id, ct)) return Problems.NotFound($"Programme {id}");
        // Without an end, everything posted so far (an entry posted this very instant included).
        var until = before ?? Instants.Now(time);
        var entries = db.Set<LedgerEntry>().Where(e => e.ProgrammeId == id);
        if (since is { } start) entries = entries.Where(e => e.CreatedAt >= start);
        if (before is { } end) entries = entries.Where(e => e.CreatedAt < end);
        var sums = await entries.GroupBy(e => new { e.BrandId, e.Account })
            .Select(g => new { g.Key.BrandId, g.Key.Account, Points = g.Sum(e => e.Points + e.Pending) }).ToListAsync(ct);
        var brands = sums.GroupBy(s => s.BrandId).OrderBy(g => g.Key).Select(g =>
        {
            long Of(string account) => g.Where(s => s.Account == account).Sum(s => s.Points);
            return Row(g.Key, Of(LedgerAccounts.Issued), -Of(LedgerAccounts.Redeemed), -Of(LedgerAccounts.Expired), Of(LedgerAccounts.Adjustments));
        }).ToList();
        var total = Row(0, brands.Sum(b => b.Issued), brands.Sum(b => b.Redeemed), brands.Sum(b => b.Expired), brands.Sum(b => b.Adjusted));
        return TypedResults.Ok(new SettlementDto(id, since, until, brands, total));
    }

    private static BrandSettlementDto Row(long brandId, long issued, long redeemed, long expired, long adjusted) =>
        new(brandId, issued, redeemed, expired, adjusted, issued - redeemed - expired + adjusted);
}
