using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Batches;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Earning;
using Meridian.Loyalty.Ledger;
using Meridian.Loyalty.Orders;
using Meridian.Loyalty.Members;
using Meridian.Loyalty.Rewards;
using Meridian.Loyalty.Tiers;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty;

/// <summary>A tier: reached by <c>qualifyingPoints</c> or <c>qualifyingSpend</c> (minor units) as the programme's basis says; its multiplier and named benefits.</summary>
public sealed record TierDto(long Id, string Name, int Rank, long QualifyingPoints, long QualifyingSpend, int MultiplierPercent, IReadOnlyList<string> Benefits)
{
    internal static TierDto From(LoyaltyTier t) => new(t.Id, t.Name, t.Rank, t.QualifyingPoints, t.QualifyingSpend, t.MultiplierPercent,
        JsonSerializer.Deserialize<List<string>>(t.Benefits) ?? []);
}

/// <summary>How tiers are qualified and lost.</summary>
public sealed record TieringDto(TierBasis Basis, TierWindow Window, int? WindowDays, TierDowngrade Downgrade, int? ReviewDays);

/// <summary><c>brandId</c> owns the programme; <c>brands</c> are those it is open to (more than the owner when <c>shared</c> by the group).</summary>
public sealed record ProgrammeDto(long Id, long BrandId, bool Shared, IReadOnlyList<long> Brands, string Name, ExpiryPolicy Expiry, int? ExpiryDays, int ExpiringNoticeDays, long PointsPerCurrencyUnit,
    int PendingDays, RefundShortfallPolicy RefundShortfall, long NegativeLimit, TieringDto Tiering, IReadOnlyList<TierDto> Tiers, DateTime CreatedAt);

/// <summary><c>balance</c> is spendable less <c>owed</c> (below zero only by the go-negative refund policy); <c>pending</c> is held for a return window;
/// <c>profiles</c>: the member's profile at each brand of its programme (several for a person of a shared programme).</summary>
public sealed record MemberDto(long Id, long ProgrammeId, long ProfileId, long Balance, long Pending, long Owed, long QualifyingPoints, TierDto? Tier,
    long? TierFloorId, DateTime EnrolledAt, IReadOnlyList<MemberProfileDto> Profiles);

/// <summary>Points an entry took from a lot (negative: put back), and when that lot expires.</summary>
public sealed record DrawDto(long LotId, long Points, DateTime? ExpiresAt);

public sealed record LotDto(long Id, long Granted, long Remaining, DateTime? ExpiresAt, DateTime? HeldUntil);

/// <summary>
/// A ledger entry: <c>points</c> credited to the member (negative: debited) against the counter <c>account</c>
/// (issued, redeemed, adjustments, expired); the lot it granted or the lots it drew from; the balance once it posted.
/// </summary>
public sealed record EntryDto(long Id, long MemberId, long BrandId, string Kind, long Points, long Pending, string Account, long BalanceAfter, long? ReversesEntryId,
    string? Rule, string? Reason, string? Reference, DateTime CreatedAt, LotDto? Lot, IReadOnlyList<DrawDto> Draws);

/// <summary>The spendable balance and when its points expire (soonest first, up to ten dates).</summary>
public sealed record BalanceDto(long MemberId, long Balance, long Pending, long Owed, long QualifyingPoints, TierDto? Tier, IReadOnlyList<ExpiringPointsDto> Expiring);

public sealed record ExpiringPointsDto(DateTime ExpiresAt, long Points);

public sealed record CreateProgrammeRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required] ExpiryPolicy? Expiry,
    [property: Range(1, 3650)] int? ExpiryDays,
    [property: Range(0, 365)] int? ExpiringNoticeDays,
    [property: Range(0, 1_000_000)] long? PointsPerCurrencyUnit,
    [property: Range(0, 365)] int? PendingDays,
    RefundShortfallPolicy? RefundShortfall,
    [property: Range(0, 1_000_000_000_000)] long? NegativeLimit,
    PointsRounding? Rounding = null,
    MultiplierCombination? Combination = null,
    TieringRequest? Tiering = null,
    bool? Shared = null,
    [property: MaxLength(100)] List<long>? Brands = null);

/// <summary>Defaults: qualifying points over the member's lifetime, never downgraded.</summary>
public sealed record TieringRequest(
    TierBasis? Basis,
    TierWindow? Window,
    [property: Range(1, 3650)] int? WindowDays,
    TierDowngrade? Downgrade,
    [property: Range(1, 3650)] int? ReviewDays);

public sealed record CreateTierRequest(
    [property: Required, StringLength(100, MinimumLength = 1)] string Name,
    [property: Required, Range(0, 1000)] int? Rank,
    [property: Range(0, 1_000_000_000_000)] long? QualifyingPoints,
    [property: Range(0, 1_000_000_000_000_000)] long? QualifyingSpend,
    [property: Range(1, 10_000)] int? MultiplierPercent,
    [property: MaxLength(50)] List<string>? Benefits);

public sealed record EnrolRequest([property: Required] long? ProfileId);

/// <summary>With <c>pendingDays</c>, the points are held (pending) that many days before they can be spent.</summary>
public sealed record EarnRequest(
    [property: Required, Range(1, 1_000_000_000_000)] long? Points,
    [property: StringLength(200)] string? Reference,
    [property: Range(0, 365)] int? PendingDays = null);

public sealed record SpendRequest(
    [property: Required, Range(1, 1_000_000_000_000)] long? Points,
    [property: StringLength(200)] string? Reference);

public sealed record AdjustRequest(
    [property: Required, Range(-1_000_000_000_000, 1_000_000_000_000)] long? Points,
    [property: Required, StringLength(500, MinimumLength = 1)] string Reason);

/// <summary>Without <c>points</c>, all that is left of the entry; an earning may be reversed in parts.</summary>
public sealed record TierFloorRequest(long? TierId, [property: Required, StringLength(500, MinimumLength = 1)] string Reason);

/// <summary>
/// With <c>applyRefundPolicy</c>, an earning whose points the member no longer holds is taken back as the programme's
/// refund policy says (pending points, a negative balance, the rest forgone and explained); otherwise that is a 409.
/// </summary>
public sealed record ReverseRequest(
    [property: StringLength(500)] string? Reason,
    [property: Range(1, 1_000_000_000_000)] long? Points,
    bool? ApplyRefundPolicy = null);

/// <summary>Programmes, tiers and members; the points ledger (earn, spend, adjust, reverse, balance, history).</summary>
public static class LoyaltyEndpoints
{
    public static IEndpointRouteBuilder MapLoyaltyRoutes(this IEndpointRouteBuilder app)
    {
        var loyalty = app.MapGroup("/api/v1/loyalty").WithTags("Loyalty").RequireAuthorization(Permissions.LoyaltyRead);
        loyalty.MapGet("/programmes", Programmes);
        loyalty.MapPost("/programmes", CreateProgramme).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapGet("/programmes/{id}/settlement", SharedProgrammeEndpoints.Settlement);
        loyalty.MapGet("/programmes/{id}", Programme);
        loyalty.MapPost("/programmes/{id}/tiers", CreateTier).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapGet("/programmes/{id}/earning", EarningSetup.Settings);
        loyalty.MapPatch("/programmes/{id}/earning", EarningSetup.ChangeSettings).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapGet("/programmes/{id}/earning-rules", EarningSetup.Rules);
        loyalty.MapPut("/programmes/{id}/earning-rules", EarningSetup.PutRule).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapGet("/programmes/{id}/campaigns", EarningSetup.Campaigns);
        loyalty.MapPost("/programmes/{id}/campaigns", EarningSetup.CreateCampaign).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapPost("/programmes/{id}/members", Enrol).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapGet("/members", MemberOfProfile);
        loyalty.MapGet("/members/{id}", Member);
        loyalty.MapGet("/members/{id}/balance", Balance);
        loyalty.MapGet("/members/{id}/entries", History);
        loyalty.MapGet("/members/{id}/benefits", Benefits);
        loyalty.MapPut("/members/{id}/tier-floor", SetTierFloor).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapPost("/members/{id}/profiles", SharedProgrammeEndpoints.Link).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapPost("/members/{id}/profiles/{profileId}/unlink", SharedProgrammeEndpoints.Unlink).RequireAuthorization(Permissions.LoyaltyWrite);
        var postings = loyalty.MapGroup("/members/{id}").RequireAuthorization(Permissions.LoyaltyWrite).RequireBrand();
        postings.MapPost("/earn", Earn).Produces<EntryDto>();
        postings.MapPost("/spend", Spend).Produces<EntryDto>();
        postings.MapPost("/adjust", Adjust).Produces<EntryDto>();
        postings.MapPost("/entries/{entryId}/reverse", Reverse).Produces<EntryDto>();
        postings.MapPost("/rewards/{rewardId}/redeem", RewardEndpoints.Redeem).Produces<RewardRedemptionDto>();
        OrderEndpoints.MapOrderRoutes(postings);
        loyalty.MapGet("/postings/rejected", RejectedPostings.List);
        // The batch checks its own body (BatchEarning.Invalid, field by field); the framework's validation walked every
        // item's properties by reflection again, a seventh of the server's time in a batch of 500.
        loyalty.MapPost("/postings/earn-batch", BatchEarning.Post).RequireAuthorization(Permissions.LoyaltyWrite).RequireBrand().Produces<EarnBatchResponse>()
            .DisableValidation();
        loyalty.MapGet("/programmes/{id}/rewards", RewardEndpoints.List);
        loyalty.MapPost("/programmes/{id}/rewards", RewardEndpoints.Create).RequireAuthorization(Permissions.LoyaltyWrite);
        loyalty.MapPatch("/programmes/{id}/rewards/{rewardId}", RewardEndpoints.Update).RequireAuthorization(Permissions.LoyaltyWrite);
        return app;
    }

    public static async Task<Ok<Page<ProgrammeDto>>> Programmes([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<LoyaltyProgramme>().AsNoTracking().Where(p => p.Id > page.After).OrderBy(p => p.Id).Take(page.Take + 1).ToListAsync(ct);
        var ids = rows.Select(p => p.Id).ToList();
        var tiers = await TiersOfAsync(db, ids, ct);
        var brands = await db.Set<LoyaltyProgrammeBrand>().AsNoTracking().Where(b => ids.Contains(b.ProgrammeId)).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(p => ToDto(p, tiers, brands.Where(b => b.ProgrammeId == p.Id).Select(b => b.BrandId))).ToList(), p => p.Id));
    }

    public static async Task<Results<Ok<ProgrammeDto>, ProblemHttpResult>> Programme(long id, MeridianDb db, MemberLinks links, CancellationToken ct) =>
        await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct) is { } programme
            ? TypedResults.Ok(ToDto(programme, await TiersOfAsync(db, [id], ct), await links.BrandsOfAsync(id, ct)))
            : Problems.NotFound($"Programme {id}");

    /// <summary>
    /// A programme of the acting brand, or with <c>shared</c> one shared by the group: open to the listed <c>brands</c> of
    /// the group (all of them when none are listed), owned by the acting brand (which must be one of them) or, for a
    /// group-level caller, by the first listed. A brand takes part in one programme at most.
    /// </summary>
    public static async Task<Results<Created<ProgrammeDto>, ValidationProblem, ProblemHttpResult>> CreateProgramme(
        CreateProgrammeRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (request.Expiry == ExpiryPolicy.AfterDays && request.ExpiryDays is null)
            return Problems.Validation("expiryDays", "The after_days policy needs the number of days.");
        var shared = request.Shared ?? false;
        if (!shared && request.Brands is not null)
            return Problems.Validation("brands", "Only a programme shared by the group (shared: true) lists brands.");
        if (!shared && tenant.ActingBrandId is null)
            return TypedResults.Problem(statusCode: 400, type: ProblemTypes.BrandRequired, title: "A brand must be named.",
                detail: "A per-brand programme belongs to the brand the request acts on: name it, or create a programme shared by the group.");
        var groupBrands = await db.Set<Brand>().AsNoTracking().Where(b => b.GroupId == tenant.GroupId).Select(b => b.Id).ToListAsync(ct);
        var brands = shared ? (request.Brands ?? groupBrands).Distinct().Order().ToList() : [tenant.Brand];
        if (brands.FirstOrDefault(b => !groupBrands.Contains(b)) is var stranger and not 0)
            return Problems.Validation("brands", $"Brand {stranger} is not a brand of the group.");
        if (shared && brands.Count < 2)
            return Problems.Validation("brands", "A shared programme is open to at least two brands of the group.");
        if (tenant.ActingBrandId is { } acting && !brands.Contains(acting))
            return Problems.Validation("brands", $"The brand the request acts on ({acting}) must be one of the programme's brands: it owns it.");
        var owner = tenant.ActingBrandId ?? brands[0];
        if (await db.Set<LoyaltyProgrammeBrand>().AsNoTracking().Where(b => brands.Contains(b.BrandId)).Select(b => b.BrandId).FirstOrDefaultAsync(ct) is var taken and not 0)
            return Problems.Conflict(shared ? $"Brand {taken} already takes part in a loyalty programme." : "The brand already runs a loyalty programme.");
        var programme = new LoyaltyProgramme
        {
            TenantId = owner,
            GroupId = tenant.GroupId,
            Shared = shared,
            Name = request.Name,
            Expiry = request.Expiry!.Value,
            ExpiryDays = request.Expiry == ExpiryPolicy.AfterDays ? request.ExpiryDays!.Value : 0,
            ExpiringNoticeDays = request.ExpiringNoticeDays ?? 0,
            PointsPerCurrencyUnit = request.PointsPerCurrencyUnit ?? 1,
            PendingDays = request.PendingDays ?? 0,
            Rounding = request.Rounding ?? PointsRounding.Down,
            Combination = request.Combination ?? MultiplierCombination.Multiply,
            TierBasis = request.Tiering?.Basis ?? TierBasis.QualifyingPoints,
            TierWindow = request.Tiering?.Window ?? TierWindow.Lifetime,
            TierWindowDays = request.Tiering?.WindowDays ?? 365,
            TierDowngrade = request.Tiering?.Downgrade ?? TierDowngrade.Never,
            TierReviewDays = request.Tiering?.ReviewDays ?? 30,
            RefundShortfall = request.RefundShortfall ?? RefundShortfallPolicy.Refuse,
            NegativeLimit = request.RefundShortfall == RefundShortfallPolicy.GoNegative ? request.NegativeLimit ?? 0 : 0,
            CreatedAt = Instants.Now(time),
        };
        db.Add(programme);
        db.AfterKeysAssigned(() => db.AddRange(brands.Select(b => new LoyaltyProgrammeBrand { ProgrammeId = programme.Id, BrandId = b, OwnerBrandId = owner })));
        audit.Record(programme.TenantId, () => new AuditChange("loyalty.programme.created", "loyalty_programme", programme.Id, null, ToDto(programme, [], brands)));
        if (!await SavedUniqueAsync(db, ct)) return Problems.Conflict("A brand of the programme already takes part in a loyalty programme.");
        return TypedResults.Created($"/api/v1/loyalty/programmes/{programme.Id}", ToDto(programme, [], brands));
    }

    public static async Task<Results<Created<TierDto>, ProblemHttpResult>> CreateTier(
        long id, CreateTierRequest request, MeridianDb db, AuditLog audit, ProgrammeRules rules, CancellationToken ct)
    {
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct);
        if (programme is null) return Problems.NotFound($"Programme {id}");
        if (await db.Set<LoyaltyTier>().AnyAsync(t => t.ProgrammeId == id && t.Rank == request.Rank, ct))
            return Problems.Conflict($"The programme already has a tier of rank {request.Rank}.");
        var tier = new LoyaltyTier
        {
            TenantId = programme.TenantId,
            ProgrammeId = id,
            Name = request.Name,
            Rank = request.Rank!.Value,
            QualifyingPoints = request.QualifyingPoints ?? 0,
            QualifyingSpend = request.QualifyingSpend ?? 0,
            MultiplierPercent = request.MultiplierPercent ?? 100,
            Benefits = JsonSerializer.Serialize(request.Benefits ?? []),
        };
        db.Add(tier);
        audit.Record(programme.TenantId, () => new AuditChange("loyalty.tier.created", "loyalty_tier", tier.Id, null, TierDto.From(tier)));
        if (!await SavedUniqueAsync(db, ct)) return Problems.Conflict($"The programme already has a tier of rank {request.Rank}.");
        rules.Forget(id);
        return TypedResults.Created($"/api/v1/loyalty/programmes/{id}", TierDto.From(tier));
    }

    /// <summary>
    /// Enrols a profile of a brand of the programme (a merged profile's id enrols the profile it was merged into). In a
    /// programme shared by the group, a person already a member through another brand (same phone, email or unionid) is
    /// linked to that member instead (200 with the member) rather than opened a second account (201).
    /// </summary>
    public static async Task<Results<Created<MemberDto>, Ok<MemberDto>, ProblemHttpResult>> Enrol(
        long id, EnrolRequest request, MeridianDb db, ProfileDirectory profiles, MemberLinks links, CancellationToken ct)
    {
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, ct);
        if (programme is null) return Problems.NotFound($"Programme {id}");
        if (await profiles.FindLiveAsync(request.ProfileId!.Value, ct) is not { } profile || !(await links.BrandsOfAsync(id, ct)).Contains(profile.BrandId))
            return Problems.NotFound($"Profile {request.ProfileId}");
        LoyaltyMember member;
        bool linked;
        try
        {
            (member, linked) = await links.EnrolAsync(programme, profile.ProfileId, profile.BrandId, ct);
        }
        catch (DbUpdateException ex) when (IsUniqueViolation(ex))
        {
            return Problems.Conflict($"Profile {profile.ProfileId} is already a member of the programme.");
        }
        var dto = await ToDtoAsync(db, await db.Set<LoyaltyMember>().AsNoTracking().SingleAsync(m => m.Id == member.Id, ct), ct);
        return linked ? TypedResults.Ok(dto) : TypedResults.Created($"/api/v1/loyalty/members/{member.Id}", dto);
    }

    public static async Task<Results<Ok<MemberDto>, ProblemHttpResult>> Member(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, ct) is { } member
            ? TypedResults.Ok(await ToDtoAsync(db, member, ct))
            : Problems.NotFound($"Member {id}");

    /// <summary>The membership of a profile (a front end knows the customer, not the member id), also through a profile merged into it.</summary>
    public static async Task<Results<Ok<MemberDto>, ValidationProblem, ProblemHttpResult>> MemberOfProfile([FromQuery, Required] long? profileId, MeridianDb db,
        MemberLinks links, CancellationToken ct)
    {
        if (profileId is not { } id) return Problems.Validation("profileId", "Name the profile whose membership to find.");
        return await links.OfProfileAsync(id, ct) is { } member
            ? TypedResults.Ok(await ToDtoAsync(db, member, ct))
            : Problems.NotFound($"A member for profile {profileId}");
    }

    public static async Task<Results<Ok<BalanceDto>, ProblemHttpResult>> Balance(long id, MemberWallet wallet, CancellationToken ct) =>
        await wallet.BalanceAsync(id, ct) is { } balance ? TypedResults.Ok(balance) : Problems.NotFound($"Member {id}");

    /// <summary>The member's tier, its earning multiplier and named benefits (free shipping, birthday gift...).</summary>
    public static async Task<Results<Ok<TierBenefits>, ProblemHttpResult>> Benefits(long id, MemberBenefits benefits, CancellationToken ct) =>
        await benefits.OfMemberAsync(id, ct) is { } found ? TypedResults.Ok(found) : Problems.NotFound($"Member {id}");

    /// <summary>Staff grant a tier by hand (null clears it): a floor the member's tier never goes below; with a reason, audited.</summary>
    public static async Task<Results<Ok<MemberDto>, ProblemHttpResult>> SetTierFloor(
        long id, TierFloorRequest request, MeridianDb db, PointsLedger ledger, AuditLog audit, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var before = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, ct);
        if (before is null || await ledger.SetTierFloorAsync(id, request.TierId, ct) is not { } after) return Problems.NotFound($"Member {id}");
        audit.Record(after.TenantId, () => new AuditChange("loyalty.tier_floor.set", "loyalty_member", id,
            new { before.TierId, before.TierFloorId }, new { after.TierId, after.TierFloorId, request.Reason }));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return TypedResults.Ok(await ToDtoAsync(db, after, ct));
    }

    /// <summary>The member's entries, oldest first, with their lots and draws.</summary>
    public static async Task<Results<Ok<Page<EntryDto>>, ProblemHttpResult>> History(long id, [AsParameters] PageRequest page, MemberWallet wallet, CancellationToken ct) =>
        await wallet.EntriesAsync(id, page, ct) is { } entries ? TypedResults.Ok(entries) : Problems.NotFound($"Member {id}");

    public static Task<IResult> Earn(long id, EarnRequest request, HttpContext http, IdempotentPosting once, PointsLedger ledger, CancellationToken ct) =>
        once.RunAsync(http, request, async () => ToDto(await ledger.EarnAsync(id, request.Points!.Value, request.Reference, ct, holdDays: request.PendingDays ?? 0)), $"Member {id}", ct);

    public static Task<IResult> Spend(long id, SpendRequest request, HttpContext http, IdempotentPosting once, PointsLedger ledger, CancellationToken ct) =>
        once.RunAsync(http, request, async () => ToDto(await ledger.SpendAsync(id, request.Points!.Value, request.Reference, ct)), $"Member {id}", ct);

    /// <summary>A staff correction with a reason, recorded in the audit log with the entry it posted.</summary>
    public static async Task<IResult> Adjust(long id, AdjustRequest request, HttpContext http, IdempotentPosting once, PointsLedger ledger, AuditLog audit, CancellationToken ct)
    {
        if (request.Points == 0) return Problems.Validation("points", "An adjustment moves at least one point, up or down.");
        return await once.RunAsync(http, request, async () =>
        {
            var entry = await ledger.AdjustAsync(id, request.Points!.Value, request.Reason, ct);
            if (entry is not null)
                audit.Record(entry.TenantId, () => new AuditChange("loyalty.points.adjusted", "loyalty_member", id, null, ToDto(entry)));
            return ToDto(entry);
        }, $"Member {id}", ct);
    }

    public static Task<IResult> Reverse(long id, long entryId, ReverseRequest request, HttpContext http, IdempotentPosting once, PointsLedger ledger, CancellationToken ct) =>
        once.RunAsync(http, request, async () => ToDto(await ledger.ReverseAsync(id, entryId, request.Reason, ct, request.Points, request.ApplyRefundPolicy ?? false)), $"Entry {entryId} of member {id}", ct);

    internal static EntryDto? ToDto(LedgerEntry? e) => e is null ? null : new EntryDto(e.Id, e.MemberId, e.BrandId, e.Kind, e.Points, e.Pending, e.Account, e.BalanceAfter,
        e.ReversesEntryId, e.Rule, e.Reason, e.Reference, e.CreatedAt, e.Lot is { } lot ? new LotDto(lot.Id, lot.Granted, lot.Remaining, lot.ExpiresAt, lot.HeldUntil) : null,
        e.Draws.Select(d => new DrawDto(d.LotId, d.Points, d.Lot?.ExpiresAt)).ToList());

    private static ProgrammeDto ToDto(LoyaltyProgramme p, IEnumerable<LoyaltyTier> tiers, IEnumerable<long> brands) => new(p.Id, p.TenantId, p.Shared, brands.Order().ToList(), p.Name, p.Expiry,
        p.Expiry == ExpiryPolicy.AfterDays ? p.ExpiryDays : null, p.ExpiringNoticeDays, p.PointsPerCurrencyUnit,
        p.PendingDays, p.RefundShortfall, p.NegativeLimit,
        new TieringDto(p.TierBasis, p.TierWindow, p.TierWindow == TierWindow.RollingDays ? p.TierWindowDays : null, p.TierDowngrade,
            p.TierDowngrade == TierDowngrade.Periodic ? p.TierReviewDays : null), tiers.Where(t => t.ProgrammeId == p.Id).OrderBy(t => t.Rank).Select(TierDto.From).ToList(), p.CreatedAt);

    /// <summary>
    /// Saves, or returns false when a unique index refused the row: two requests that passed the check above at the
    /// same moment (a double-clicked enrol), of which the second gets the same 409 as if it had come later.
    /// </summary>
    private static async Task<bool> SavedUniqueAsync(MeridianDb db, CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
            return true;
        }
        catch (DbUpdateException ex) when (IsUniqueViolation(ex))
        {
            return false;
        }
    }

    internal static bool IsUniqueViolation(DbUpdateException ex) =>
        ex.InnerException is Microsoft.Data.Sqlite.SqliteException { SqliteExtendedErrorCode: 2067 } or Npgsql.PostgresException { SqlState: "23505" };

    internal static async Task<MemberDto> ToDtoAsync(MeridianDb db, LoyaltyMember m, CancellationToken ct) =>
        new(m.Id, m.ProgrammeId, m.ProfileId, m.NetBalance, m.Pending, m.Owed, m.QualifyingPoints, await TierAsync(db, m, ct), m.TierFloorId, m.EnrolledAt,
            await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => p.MemberId == m.Id).OrderBy(p => p.BrandId)
                .Select(p => new MemberProfileDto(p.BrandId, p.ProfileId, p.LinkedAt)).ToListAsync(ct));

    private static Task<List<LoyaltyTier>> TiersOfAsync(MeridianDb db, List<long> programmeIds, CancellationToken ct) =>
        db.Set<LoyaltyTier>().AsNoTracking().Where(t => programmeIds.Contains(t.ProgrammeId)).ToListAsync(ct);

    internal static async Task<TierDto?> TierAsync(MeridianDb db, LoyaltyMember member, CancellationToken ct) =>
        member.TierId is { } tierId && await db.Set<LoyaltyTier>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == tierId, ct) is { } tier ? TierDto.From(tier) : null;
}
