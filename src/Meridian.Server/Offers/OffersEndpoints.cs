using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty;
using Meridian.Offers.Cart;
using Meridian.Offers.Claims;
using Meridian.Offers.Codes;
using Meridian.Offers.Data;
using Meridian.Offers.Groups;
using Meridian.Offers.Redemption;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Offers;

public sealed record TemplateDto(long Id, long BrandId, string Name, CouponKind Kind, long Value, long? Cap, string? FreeSku, long MinSpend,
    CouponConditions Conditions, DateTime? ValidFrom, DateTime? ValidUntil, int? ValidDays, long? Stock, long Remaining, long Issued,
    int? PerCustomerLimit, int? PerDayLimit, long? Budget, long BudgetUsed, StackingMode Stacking, IReadOnlyList<long> StackWith, int Priority,
    bool ReturnOnRefund, int ExpiringNoticeDays, TemplateStatus Status, DateTime CreatedAt)
{
    internal static TemplateDto From(OfferTemplate t) => new(t.Id, t.TenantId, t.Name, t.Kind, t.Value, t.Cap, t.FreeSku, t.MinSpend,
        JsonSerializer.Deserialize<CouponConditions>(t.Conditions, MeridianJson.Options)!, t.ValidFrom, t.ValidUntil, t.ValidDays, t.Stock, t.Remaining, t.Issued,
        t.PerCustomerLimit, t.PerDayLimit, t.Budget, t.BudgetUsed, t.Stacking, JsonSerializer.Deserialize<List<long>>(t.StackWith)!, t.Priority,
        t.ReturnOnRefund, t.ExpiringNoticeDays, t.Status, t.CreatedAt);
}

public sealed record CouponDto(long Id, string Code, long TemplateId, long? ProfileId, CouponStatus Status, string Source, DateTime? IssuedAt,
    DateTime? ValidFrom, DateTime? ValidUntil, long? RedemptionId, long Discount, DateTime? RedeemedAt)
{
    internal static CouponDto From(OfferCoupon c) => new(c.Id, CouponCodes.Display(c.Code), c.TemplateId, c.ProfileId, c.Status, c.Source, c.IssuedAt,
        c.ValidFrom, c.ValidUntil, c.RedemptionId, c.Discount, c.RedeemedAt);
}

public sealed record CreateTemplateRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required] CouponKind? Kind,
    [property: Range(0, 1_000_000_000_000)] long? Value,
    [property: Range(1, 1_000_000_000_000)] long? Cap,
    [property: StringLength(100, MinimumLength = 1)] string? FreeSku,
    [property: Range(0, 1_000_000_000_000)] long? MinSpend,
    CouponConditions? Conditions,
    DateTime? ValidFrom,
    DateTime? ValidUntil,
    [property: Range(1, 3650)] int? ValidDays,
    [property: Range(0, 100_000_000)] long? Stock,
    [property: Range(1, 1_000_000)] int? PerCustomerLimit,
    [property: Range(1, 100_000_000)] int? PerDayLimit,
    [property: Range(0, 1_000_000_000_000_000)] long? Budget,
    StackingMode? Stacking,
    [property: MaxLength(100)] List<long>? StackWith,
    [property: Range(-1000, 1000)] int? Priority,
    bool? ReturnOnRefund,
    [property: Range(0, 365)] int? ExpiringNoticeDays);

public sealed record TemplateStatusRequest([property: Required] TemplateStatus? Status, [property: StringLength(500)] string? Reason);

public sealed record AddStockRequest([property: Required, Range(1, 100_000_000)] long? Add, [property: StringLength(500)] string? Reason);

public sealed record ClaimRequest([property: Required] long? ProfileId);

public sealed record IssueRequest([property: Required] long? ProfileId, [property: StringLength(500)] string? Reason);

public sealed record GenerateCodesRequest([property: Required, Range(1, 10_000_000)] long? Count);

public sealed record ImportCodesRequest([property: Required, MinLength(1), MaxLength(10_000)] List<string>? Codes);

public sealed record ImportCodesResponse(int Imported, IReadOnlyList<string> AlreadyExisting);

public sealed record GenerateCodesResponse(long Generated, long? Remaining);

public sealed record ClaimCodeRequest([property: Required] long? ProfileId);

public sealed record CartLineRequest(
    [property: Required, StringLength(100, MinimumLength = 1)] string Sku,
    [property: StringLength(100)] string? Category,
    [property: Required, Range(1, 10_000)] int? Quantity,
    [property: Required, Range(0, 10_000_000_000)] long? UnitPrice);

public sealed record ValidateRequest(
    [property: Required, StringLength(50, MinimumLength = 1)] string Channel,
    [property: Required, MinLength(1), MaxLength(500)] List<CartLineRequest> Lines,
    [property: Range(0, 1_000_000_000_000)] long? Shipping,
    [property: MaxLength(20)] List<string>? Codes);

public sealed record RedeemRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string OrderReference,
    [property: Required, StringLength(50, MinimumLength = 1)] string Channel,
    [property: Required, MinLength(1), MaxLength(500)] List<CartLineRequest> Lines,
    [property: Range(0, 1_000_000_000_000)] long? Shipping,
    [property: Required, MinLength(1), MaxLength(20)] List<string> Codes);

public sealed record ReverseRedemptionRequest([property: StringLength(500)] string? Reason);

public sealed record CouponVerdictDto(long CouponId, string Code, long TemplateId, string Template, bool Applies, long Discount, bool InBest, IReadOnlyList<Reason> Reasons);

public sealed record BestDto(IReadOnlyList<RedeemedCouponDto> Coupons, long TotalDiscount, bool Exhaustive);

public sealed record ValidationDto(long Subtotal, long Shipping, IReadOnlyList<CouponVerdictDto> Coupons, BestDto Best, IReadOnlyList<CodeRefusal> UnknownCodes);

/// <summary>Coupon templates, codes, issuing and claiming, cart validation, redemption and its reversal.</summary>
public static class OffersEndpoints
{
    public static IEndpointRouteBuilder MapOffersRoutes(this IEndpointRouteBuilder app)
    {
        var offers = app.MapGroup("/api/v1/offers").WithTags("Offers").RequireAuthorization(Permissions.OffersRead);
        offers.MapGet("/templates", Templates);
        offers.MapPost("/templates", CreateTemplate).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapGet("/templates/{id}", Template);
        offers.MapPut("/templates/{id}/status", SetStatus).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapPost("/templates/{id}/stock", AddStock).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapPost("/templates/{id}/codes", GenerateCodes).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapPost("/templates/{id}/codes/import", ImportCodes).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapGet("/templates/{id}/coupons", CouponsOfTemplate);
        // Not counted by admission control: claims wait in the group commit's queue, and a group is one transaction.
        offers.MapPost("/templates/{id}/claim", Claim).RequireAuthorization(Permissions.OffersWrite).RequireBrand().WithMetadata(new SkipAdmissionAttribute());
        offers.MapPost("/templates/{id}/issue", Issue).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapPost("/codes/{code}/claim", ClaimCode).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapGet("/coupons/{id}", Coupon);
        var customers = offers.MapGroup("/customers/{profileId}");
        customers.MapGet("/coupons", CouponsOfProfile);
        customers.MapPost("/validate", Validate).RequireBrand();
        customers.MapPost("/redemptions", Redeem).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        offers.MapGet("/redemptions/{id}", RedemptionOf);
        offers.MapPost("/redemptions/{id}/reverse", Reverse).RequireAuthorization(Permissions.OffersWrite).RequireBrand();
        return app;
    }

    public static async Task<Ok<Page<TemplateDto>>> Templates([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<OfferTemplate>().AsNoTracking().Where(t => t.Id > page.After).OrderBy(t => t.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(TemplateDto.From).ToList(), t => t.Id));
    }

    public static async Task<Results<Ok<TemplateDto>, ProblemHttpResult>> Template(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<OfferTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is { } t ? TypedResults.Ok(TemplateDto.From(t)) : Problems.NotFound($"Template {id}");

    public static async Task<Results<Created<TemplateDto>, ValidationProblem>> CreateTemplate(
        CreateTemplateRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, SegmentConditions segments, TimeProvider time, CancellationToken ct)
    {
        var conditions = request.Conditions ?? new CouponConditions();
        if (Invalid(request, conditions) is { } invalid) return invalid;
        if (await segments.InvalidAsync(tenant.Brand, conditions.SegmentIds, ct) is { } strangers) return strangers;
        conditions = conditions with { SegmentIds = conditions.SegmentIds.Distinct().ToList() };
        var stackWith = (request.StackWith ?? []).Distinct().ToList();
        if (stackWith.Count > 0)
        {
            var known = await db.Set<OfferTemplate>().Where(t => t.TenantId == tenant.Brand && stackWith.Contains(t.Id)).Select(t => t.Id).ToListAsync(ct);
            if (stackWith.Except(known).FirstOrDefault() is var unknown and not 0)
                return Problems.Validation("stackWith", $"Template {unknown} is not a template of the brand.");
        }
        var brands = conditions.Brands.Distinct().ToList();
        if (brands.Count > 0)
        {
            var sisters = await db.Set<Brand>().Where(b => b.GroupId == tenant.GroupId && b.Id != tenant.Brand && brands.Contains(b.Id)).Select(b => b.Id).ToListAsync(ct);
            if (brands.Except(sisters).FirstOrDefault() is var stranger and not 0)
                return Problems.Validation("conditions.brands", $"Brand {stranger} is not another brand of the group.");
            conditions = conditions with { Brands = brands };
        }
        var template = new OfferTemplate
        {
            TenantId = tenant.Brand, GroupId = tenant.GroupId, Name = request.Name, Kind = request.Kind!.Value, Value = request.Value ?? 0, Cap = request.Cap,
            FreeSku = request.FreeSku, MinSpend = request.MinSpend ?? 0, Conditions = JsonSerializer.Serialize(conditions, MeridianJson.Options),
            ValidFrom = Utc(request.ValidFrom), ValidUntil = Utc(request.ValidUntil), ValidDays = request.ValidDays, Stock = request.Stock,
            PerCustomerLimit = request.PerCustomerLimit, PerDayLimit = request.PerDayLimit, Budget = request.Budget,
            Stacking = request.Stacking ?? StackingMode.Exclusive, StackWith = JsonSerializer.Serialize(stackWith), Priority = request.Priority ?? 0,
            ReturnOnRefund = request.ReturnOnRefund ?? false, ExpiringNoticeDays = request.ExpiringNoticeDays ?? 0, Status = TemplateStatus.Active,
            CreatedAt = Instants.Now(time),
        };
        template.StartStock(request.Stock);
        db.Add(template);
        db.AfterKeysAssigned(() => db.AddRange(brands.Select(b => new OfferTemplateBrand { TemplateId = template.Id, BrandId = b, TenantId = template.TenantId })));
        audit.Record(template.TenantId, () => new AuditChange("offers.template.created", "offer_template", template.Id, null, TemplateDto.From(template)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/offers/templates/{template.Id}", TemplateDto.From(template));
    }

    private static ValidationProblem? Invalid(CreateTemplateRequest r, CouponConditions c)
    {
        switch (r.Kind)
        {
            case CouponKind.AmountOff or CouponKind.FixedPrice when r.Value is null:
                return Problems.Validation("value", "An amount-off or fixed-price coupon needs its amount (minor units).");
            case CouponKind.PercentOff when r.Value is not (>= 1 and <= 100):
                return Problems.Validation("value", "A percent-off coupon needs a percent from 1 to 100.");
            case CouponKind.FreeItem when r.FreeSku is null:
                return Problems.Validation("freeSku", "A free-item coupon names the product it gives.");
        }
        if (r.Cap is not null && r.Kind != CouponKind.PercentOff) return Problems.Validation("cap", "Only a percent-off coupon has a cap.");
        if (r.ValidFrom is { } from && r.ValidUntil is { } until && until <= from) return Problems.Validation("validUntil", "The window must end after it starts.");
        if (r.ValidDays is not null && r.ValidFrom is not null) return Problems.Validation("validFrom", "A coupon valid N days from issue starts when it is issued; leave validFrom out.");
        if (r.Stacking != StackingMode.Named && r.StackWith is { Count: > 0 }) return Problems.Validation("stackWith", "Name templates to stack with only with stacking 'named'.");
        // A list sent as null reads as null despite its default: refused here, not a 500 further on.
        var lists = new (string Name, int? Count)[] { ("includedProducts", c.IncludedProducts?.Count), ("excludedProducts", c.ExcludedProducts?.Count),
            ("includedCategories", c.IncludedCategories?.Count), ("excludedCategories", c.ExcludedCategories?.Count), ("channels", c.Channels?.Count),
            ("tierIds", c.TierIds?.Count), ("segmentIds", c.SegmentIds?.Count), ("brands", c.Brands?.Count) };
        if (lists.FirstOrDefault(l => l.Count is null) is { Name: not null } absent) return Problems.Validation("conditions." + absent.Name, "A list of values, or leave it out.");
        if (lists.FirstOrDefault(l => l.Count > 1000) is { Name: not null } big) return Problems.Validation("conditions." + big.Name, "At most 1,000 values.");
        return null;
    }

    private static DateTime? Utc(DateTime? at) => at is { } a ? Instants.Micros(a.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(a, DateTimeKind.Utc) : a.ToUniversalTime()) : null;

    public static async Task<Results<Ok<TemplateDto>, ProblemHttpResult>> SetStatus(long id, TemplateStatusRequest request, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var template = await db.Set<OfferTemplate>().SingleOrDefaultAsync(t => t.Id == id, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        var before = template.Status;
        template.Status = request.Status!.Value;
        audit.Record(template.TenantId, () => new AuditChange("offers.template.status", "offer_template", id, new { status = before }, new { status = template.Status, request.Reason }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(TemplateDto.From(template));
    }

    /// <summary>Adds stock to a template with a stock limit (in place, so claims running meanwhile stay exact).</summary>
    public static async Task<Results<Ok<TemplateDto>, ProblemHttpResult>> AddStock(long id, AddStockRequest request, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var add = request.Add!.Value;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var updated = await db.Set<OfferTemplate>().Where(t => t.Id == id && t.Stock != null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.Stock, t => t.Stock + add).SetProperty(t => t.Remaining, t => t.Remaining + add), ct);
        var template = await db.Set<OfferTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        if (updated == 0) return TypedResults.Problem(statusCode: 409, type: ProblemTypes.BusinessRule, title: "A business rule prevents this change.", detail: "The template has no stock limit.");
        audit.Record(template.TenantId, () => new AuditChange("offers.template.stock_added", "offer_template", id, null, new { add, template.Stock, template.Remaining, request.Reason }));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return TypedResults.Ok(TemplateDto.From(template));
    }

    public static async Task<Results<Ok<GenerateCodesResponse>, ProblemHttpResult>> GenerateCodes(
        long id, GenerateCodesRequest request, MeridianDb db, CodeBatches batches, AuditLog audit, CancellationToken ct)
    {
        var template = await db.Set<OfferTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        if (template.Stock is not null && template.Remaining < request.Count)
            return OutOfStock($"The template has {template.Remaining} coupons of stock left; {request.Count} codes were asked for.");
        var made = await batches.GenerateAsync(template, request.Count!.Value, ct);
        audit.Record(template.TenantId, () => new AuditChange("offers.codes.generated", "offer_template", id, null, new { requested = request.Count, generated = made }));
        await db.SaveChangesAsync(ct);
        var remaining = await db.Set<OfferTemplate>().Where(t => t.Id == id).Select(t => t.Remaining).SingleAsync(ct);
        return TypedResults.Ok(new GenerateCodesResponse(made, template.Stock is null ? null : remaining));
    }

    public static async Task<Results<Ok<ImportCodesResponse>, ValidationProblem, ProblemHttpResult>> ImportCodes(
        long id, ImportCodesRequest request, MeridianDb db, CodeBatches batches, AuditLog audit, CancellationToken ct)
    {
        var template = await db.Set<OfferTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        var codes = new List<string>(request.Codes!.Count);
        for (var i = 0; i < request.Codes.Count; i++)
        {
            if (CouponCodes.Normalize(request.Codes[i]) is not { } code)
                return Problems.Validation($"codes[{i}]", "A code is 4 to 64 letters and digits (spaces and dashes are ignored).");
            codes.Add(code);
        }
        var (imported, existing) = await batches.ImportAsync(template, codes.Distinct().ToList(), ct);
        audit.Record(template.TenantId, () => new AuditChange("offers.codes.imported", "offer_template", id, null, new { imported, alreadyExisting = existing.Count }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new ImportCodesResponse(imported, existing.Select(CouponCodes.Display).ToList()));
    }

    public static async Task<Results<Ok<Page<CouponDto>>, ValidationProblem, ProblemHttpResult>> CouponsOfTemplate(long id, [FromQuery(Name = "status")] string? statusText,
        [AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        if (!TryStatus(statusText, out var status)) return BadStatus();
        if (!await db.Set<OfferTemplate>().AnyAsync(t => t.Id == id, ct)) return Problems.NotFound($"Template {id}");
        var rows = await db.Set<OfferCoupon>().AsNoTracking().Where(c => c.TemplateId == id && c.Id > page.After && (status == null || c.Status == status))
            .OrderBy(c => c.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(CouponDto.From).ToList(), c => c.Id));
    }

    /// <summary>The customer's coupons, those of the profiles merged into it included.</summary>
    public static async Task<Results<Ok<Page<CouponDto>>, ValidationProblem>> CouponsOfProfile(long profileId, [FromQuery(Name = "status")] string? statusText,
        [AsParameters] PageRequest page, CustomerCoupons coupons, CancellationToken ct) =>
        TryStatus(statusText, out var status) ? TypedResults.Ok(await coupons.OfProfileAsync(profileId, status, page, ct)) : BadStatus();

    private static bool TryStatus(string? text, out CouponStatus? status) => CustomerCoupons.TryStatus(text, out status);

    private static ValidationProblem BadStatus() => CustomerCoupons.BadStatus();

    public static async Task<Results<Ok<CouponDto>, ProblemHttpResult>> Coupon(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<OfferCoupon>().AsNoTracking().SingleOrDefaultAsync(c => c.Id == id, ct) is { } c ? TypedResults.Ok(CouponDto.From(c)) : Problems.NotFound($"Coupon {id}");

    /// <summary>
    /// The customer claims a coupon (the flash-sale path): 200 with the coupon, or 409 <c>out-of-stock</c> /
    /// <c>coupon-limit-reached</c>. Claims are committed in groups by <see cref="ClaimWriter"/>. An optional
    /// Idempotency-Key makes a retry return the same coupon.
    /// </summary>
    public static async Task<IResult> Claim(long id, ClaimRequest request, HttpContext http, TenantScope tenant, ClaimWriter writer, MeridianDb db, CancellationToken ct)
    {
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        if (key.Length > 200) return Problems.Validation(IdempotencyHeader, "An Idempotency-Key has at most 200 characters.");
        var hash = key.Length == 0 ? null : IdempotencyKeys.RequestHash(http.Request.Method, http.Request.Path, request);
        if (hash is not null && await ReplayIssueAsync(db, tenant.Brand, key, hash, ct) is { } replay) return replay;
        var order = new IssueOrder(tenant.Brand, id, request.ProfileId!.Value, "claim", key.Length == 0 ? null : key, hash);
        try
        {
            return Answer(await writer.ClaimAsync(order), id, request.ProfileId.Value);
        }
        catch (Exception ex) when (hash is not null && IsUniqueViolation(ex))
        {
            // A retry with the same key raced this one and committed first.
            if (await ReplayIssueAsync(db, tenant.Brand, key, hash, ct) is { } raced) return raced;
            throw;
        }
    }

    /// <summary>Staff or a system issue a coupon to a customer (same limits as a claim); Idempotency-Key required; audited.</summary>
    public static async Task<IResult> Issue(long id, IssueRequest request, HttpContext http, TenantScope tenant, ProfileDirectory profiles,
        CouponIssuer issuer, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        if (string.IsNullOrWhiteSpace(key) || key.Length > 200)
            return Problems.Validation(IdempotencyHeader, "Send an Idempotency-Key header (at most 200 characters) with every request that issues a coupon.");
        var hash = IdempotencyKeys.RequestHash(http.Request.Method, http.Request.Path, request);
        if (await ReplayIssueAsync(db, tenant.Brand, key, hash, ct) is { } replay) return replay;
        if (await LiveProfileAsync(profiles, request.ProfileId!.Value, tenant.Brand, ct) is not { } profileId) return Problems.NotFound($"Profile {request.ProfileId}");
        var source = http.Caller().StaffUserId is null ? "api" : "staff";
        var plans = await issuer.PlanAsync([id], ct);
        try
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var result = await issuer.IssueAsync(new IssueOrder(tenant.Brand, id, profileId, source, key, hash), plans.GetValueOrDefault(id), Instants.Now(time), ct);
            if (result.Coupon is { } coupon)
            {
                audit.Record(tenant.Brand, () => new AuditChange("offers.coupon.issued", "offer_coupon", coupon.Id, null, new { coupon.TemplateId, coupon.ProfileId, request.Reason }));
                await db.SaveChangesAsync(ct);
                await transaction.CommitAsync(ct);
            }
            return Answer(result, id, profileId);
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            db.ChangeTracker.Clear();
            if (await ReplayIssueAsync(db, tenant.Brand, key, hash, ct) is { } raced) return raced;
            throw;
        }
    }

    /// <summary>A customer claims a generated or imported code (typed from a card): it becomes theirs, within the per-customer limit.</summary>
    public static async Task<IResult> ClaimCode(string code, ClaimCodeRequest request, HttpContext http, TenantScope tenant, ProfileDirectory profiles, MeridianDb db,
        CodeGuard guard, AuditLog audit, CouponIssuer issuer, SegmentConditions segments, ParsedTemplates parsed, Meridian.Platform.Outbox.EventPublisher events,
        TimeProvider time, CancellationToken ct)
    {
        var who = CodeGuard.Subject(request.ProfileId, http);
        if (guard.RetryAfter(tenant.Brand, who) is { } wait) return CodeGuard.Blocked(wait, http);
        if (await LiveProfileAsync(profiles, request.ProfileId!.Value, tenant.Brand, ct) is not { } profileId) return Problems.NotFound($"Profile {request.ProfileId}");
        var normalized = CouponCodes.Normalize(code);
        var coupon = normalized is null ? null : await db.Set<OfferCoupon>().AsNoTracking().SingleOrDefaultAsync(c => c.TenantId == tenant.Brand && c.Code == normalized, ct);
        if (coupon is null)
        {
            guard.Miss(tenant.Brand, who, normalized ?? "", audit);
            await db.SaveChangesAsync(ct);
            return Problems.NotFound("The coupon code");
        }
        if (coupon.ProfileId == profileId && coupon.Status != CouponStatus.Unassigned) return TypedResults.Ok(IssuedCouponDto.From(coupon));
        if (coupon.Status != CouponStatus.Unassigned) return Problems.Conflict("The code was already claimed.");
        var plan = (await issuer.PlanAsync([coupon.TemplateId], ct))[coupon.TemplateId];
        var now = Instants.Now(time);
        if (plan.Template.Status != TemplateStatus.Active) return Problems.Conflict("The offer is paused.");
        var conditions = parsed.Rules(plan.Template).Conditions;
        var memberships = await segments.ReadAsync([(plan.Template.TenantId, conditions)], [profileId], ct);
        if (conditions.SegmentIds.Count > 0 && !memberships.AnyIn(conditions.SegmentIds)) return NotEligible(CartEngine.SegmentNotMet(conditions, memberships).Message);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var tx = Microsoft.EntityFrameworkCore.Storage.DbContextTransactionExtensions.GetDbTransaction(transaction);
        // The customer counts of a template are written under its stock row's lock (see CouponIssuer), so a claim racing
        // with this one on another node sees this count.
        await CouponIssuer.LockStockAsync(tx, coupon.TemplateId, ct);
        if (plan.Template.PerCustomerLimit is { } limit && await CouponIssuer.ExecAsync(tx, """
            INSERT INTO offer_customer_counts (template_id, profile_id, tenant_id, count) VALUES (@t, @p, @tenant, 1)
            ON CONFLICT (template_id, profile_id) DO UPDATE SET count = offer_customer_counts.count + 1 WHERE offer_customer_counts.count < @limit
            """, ct, ("t", coupon.TemplateId), ("p", profileId), ("tenant", coupon.TenantId), ("limit", limit)) == 0)
            return LimitReached("per_customer", "The customer holds as many coupons of this offer as it allows.");
        var (from, until) = plan.Template.ValidDays is null ? (coupon.ValidFrom, coupon.ValidUntil) : CouponIssuer.Validity(plan.Template, now, plan.Zone);
        if (await db.Set<OfferCoupon>().Where(c => c.Id == coupon.Id && c.Status == CouponStatus.Unassigned).ExecuteUpdateAsync(s => s
                .SetProperty(c => c.Status, CouponStatus.Issued).SetProperty(c => c.ProfileId, profileId).SetProperty(c => c.IssuedAt, now)
                .SetProperty(c => c.ValidFrom, from).SetProperty(c => c.ValidUntil, until), ct) == 0)
            return Problems.Conflict("The code was already claimed.");
        events.Publish(plan.GroupId, coupon.TenantId, () => new CouponIssued(coupon.Id, coupon.TemplateId, profileId, CouponCodes.Display(coupon.Code), coupon.Source, until));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return TypedResults.Ok(new IssuedCouponDto(coupon.Id, CouponCodes.Display(coupon.Code), coupon.TemplateId, profileId, coupon.Source, now, from, until));
    }

    /// <summary>The customer's coupons against a cart: which apply, what each takes off, the best combination, and why.</summary>
    public static async Task<IResult> Validate(long profileId, ValidateRequest request, HttpContext http, TenantScope tenant, ProfileDirectory profiles, MeridianDb db,
        MemberTiers tiers, SegmentConditions segments, CodeGuard guard, AuditLog audit, GroupCoupons group, ParsedTemplates parsed, TimeProvider time, CancellationToken ct)
    {
        if (await CustomerAsync(profiles, profileId, tenant.Brand, ct) is not { } customer) return Problems.NotFound($"Profile {profileId}");
        (profileId, var owners) = customer;
        var cart = ToCart(request.Channel, request.Lines, request.Shipping);
        var (held, templates, listed) = await HeldWithTemplatesAsync(db, tenant.Brand, owners, ct);
        if (listed) held.AddRange((await group.HeldElsewhereAsync(tenant.Brand, profileId, null, ct)).Coupons);
        var unknown = new List<CodeRefusal>();
        foreach (var text in request.Codes ?? [])
        {
            var code = CouponCodes.Normalize(text);
            if (code is not null && held.Any(c => c.Code == code)) continue;
            var who = CodeGuard.Subject(profileId, http);
            if (guard.RetryAfter(tenant.Brand, who) is { } wait) return CodeGuard.Blocked(wait, http);
            guard.Miss(tenant.Brand, who, code ?? "", audit);
            unknown.Add(new CodeRefusal(text, [new Reason("not_held", "The customer holds no usable coupon with this code.")]));
        }
        if (unknown.Count > 0) await db.SaveChangesAsync(ct);

        var verdicts = await JudgeAsync(db, tiers, segments, parsed, held, templates, profileId, cart, time, ct);
        var (best, leftOut, exhaustive) = CartEngine.Best(verdicts, cart);
        var inBest = best.Coupons.ToDictionary(c => c.Coupon.CouponId, c => c.Discount);
        var coupons = verdicts.Select(v => new CouponVerdictDto(v.Coupon.CouponId, CouponCodes.Display(v.Coupon.Code), v.Coupon.Template.Id, v.Coupon.Template.Name,
            v.Applies, v.Discount, inBest.ContainsKey(v.Coupon.CouponId),
            leftOut.TryGetValue(v.Coupon.CouponId, out var why) ? [.. v.Reasons, why] : v.Reasons)).ToList();
        return TypedResults.Ok(new ValidationDto(cart.Subtotal, cart.Shipping, coupons,
            new BestDto(best.Coupons.Select(c => new RedeemedCouponDto(c.Coupon.CouponId, CouponCodes.Display(c.Coupon.Code), c.Coupon.Template.Id, c.Discount)).ToList(),
                best.Total, exhaustive), unknown));
    }

    /// <summary>
    /// Redeems the named coupons against an order (all of them, together, or none); Idempotency-Key required: a retry
    /// gets the first answer byte for byte, the same key with another body 422.
    /// </summary>
    public static async Task<IResult> Redeem(long profileId, RedeemRequest request, HttpContext http, TenantScope tenant, ProfileDirectory profiles, MeridianDb db,
        MemberTiers tiers, SegmentConditions segments, CodeGuard guard, AuditLog audit, Redemptions redemptions, GroupCoupons group, ParsedTemplates parsed, TimeProvider time,
        CancellationToken ct)
    {
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        if (string.IsNullOrWhiteSpace(key) || key.Length > 200)
            return Problems.Validation(IdempotencyHeader, "Send an Idempotency-Key header (at most 200 characters) with every redemption.");
        var hash = IdempotencyKeys.RequestHash(http.Request.Method, http.Request.Path, request);
        if (await redemptions.FindByKeyAsync(tenant.Brand, key, ct) is { } earlier) return ReplayRedemption(earlier, hash);
        if (await CustomerAsync(profiles, profileId, tenant.Brand, ct) is not { } customer) return Problems.NotFound($"Profile {profileId}");
        (profileId, var owners) = customer;

        var who = CodeGuard.Subject(profileId, http);
        var codes = request.Codes.Select(c => (Text: c, Code: CouponCodes.Normalize(c))).ToList();
        var wanted = codes.Select(c => c.Code).OfType<string>().Distinct().ToList();
        var coupons = await db.Set<OfferCoupon>().AsNoTracking().Where(c => c.TenantId == tenant.Brand && wanted.Contains(c.Code)).ToListAsync(ct);
        // Group coupons of sister brands held by the same person are theirs here too (codes are unique per brand only).
        var (elsewhere, holders) = await group.HeldElsewhereAsync(tenant.Brand, profileId, wanted, ct);
        coupons.AddRange(elsewhere);
        owners.AddRange(holders);
        var refusals = new List<CodeRefusal>();
        foreach (var (text, code) in codes)
        {
            var coupon = coupons.Where(c => c.Code == code).OrderBy(c => c.ProfileId is { } h && owners.Contains(h) ? 0 : 1).FirstOrDefault();
            if (coupon is null || coupon.ProfileId is not { } holder || !owners.Contains(holder))
            {
                if (guard.RetryAfter(tenant.Brand, who) is { } wait) return CodeGuard.Blocked(wait, http);
                guard.Miss(tenant.Brand, who, code ?? "", audit);
                refusals.Add(new CodeRefusal(text, [new Reason("not_held", "The customer holds no coupon with this code.")]));
            }
            else if (coupon.Status == CouponStatus.Redeemed)
            {
                return TypedResults.Problem(statusCode: 409, type: ProblemTypes.CouponAlreadyRedeemed, title: "The coupon was already used.",
                    detail: $"Coupon {CouponCodes.Display(coupon.Code)} was already used.", extensions: new Dictionary<string, object?> { ["code"] = CouponCodes.Display(coupon.Code) });
            }
            else if (coupon.Status != CouponStatus.Issued)
                refusals.Add(new CodeRefusal(text, [new Reason(coupon.Status.ToString().ToLowerInvariant(), $"The coupon is {coupon.Status.ToString().ToLowerInvariant()}.")]));
        }
        if (refusals.Count == 0 && codes.Count != wanted.Count) refusals.Add(new CodeRefusal("", [new Reason("duplicate_code", "A code is named twice.")]));
        var cart = ToCart(request.Channel, request.Lines, request.Shipping);
        if (refusals.Count == 0)
        {
            var verdicts = await JudgeAsync(db, tiers, segments, parsed, coupons.Where(c => c.ProfileId is { } h && owners.Contains(h)).ToList(), [], profileId, cart, time, ct);
            refusals.AddRange(verdicts.Where(v => !v.Applies).Select(v => new CodeRefusal(CouponCodes.Display(v.Coupon.Code), v.Reasons)));
            var ordered = CartEngine.InApplyOrder(verdicts);
            for (var i = 0; i < ordered.Count && refusals.Count == 0; i++)
                for (var j = i + 1; j < ordered.Count; j++)
                    if (!ordered[i].Coupon.Template.StacksWith(ordered[j].Coupon.Template) || ordered[i].Coupon.Template.Id == ordered[j].Coupon.Template.Id)
                        refusals.Add(new CodeRefusal(CouponCodes.Display(ordered[j].Coupon.Code), [new Reason("does_not_stack",
                            $"Cannot be used together with {CouponCodes.Display(ordered[i].Coupon.Code)} ('{ordered[i].Coupon.Template.Name}').")]));
            if (refusals.Count == 0)
            {
                var together = CartEngine.Together(ordered, cart);
                refusals.AddRange(together.Coupons.Where(c => c.Discount == 0).Select(c => new CodeRefusal(CouponCodes.Display(c.Coupon.Code),
                    [new Reason("adds_nothing", "Adds nothing after the coupons applied before it.")])));
                if (refusals.Count == 0)
                {
                    try
                    {
                        var redemption = await redemptions.RedeemAsync(tenant.Brand, tenant.GroupId, profileId, request.OrderReference, key, hash, together, ct);
                        return Results.Content(redemption.Response, "application/json; charset=utf-8", System.Text.Encoding.UTF8, StatusCodes.Status200OK);
                    }
                    catch (Exception ex) when (IsUniqueViolation(ex))
                    {
                        db.ChangeTracker.Clear();
                        if (await redemptions.FindByKeyAsync(tenant.Brand, key, ct) is { } raced) return ReplayRedemption(raced, hash);
                        throw;
                    }
                }
            }
        }
        if (refusals.Any(r => r.Reasons.Any(x => x.Code == "not_held"))) await db.SaveChangesAsync(ct);
        return TypedResults.Problem(statusCode: 422, type: ProblemTypes.CouponNotApplicable, title: "The coupons do not apply to this order.",
            detail: "One or more coupons cannot be used on this order; `coupons` says why.", extensions: new Dictionary<string, object?> { ["coupons"] = refusals });
    }

    public static async Task<Results<Ok<RedemptionDto>, ProblemHttpResult>> RedemptionOf(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<OfferRedemption>().AsNoTracking().SingleOrDefaultAsync(r => r.Id == id, ct) is { } r ? TypedResults.Ok(Redemptions.Dto(r)) : Problems.NotFound($"Redemption {id}");

    /// <summary>The order was refunded: reverse the redemption (once; a repeat answers as the first did).</summary>
    public static async Task<Results<Ok<RedemptionDto>, ProblemHttpResult>> Reverse(long id, ReverseRedemptionRequest request, Redemptions redemptions, CancellationToken ct) =>
        await redemptions.ReverseAsync(id, request.Reason, ct) is { } dto ? TypedResults.Ok(dto) : Problems.NotFound($"Redemption {id}");

    public const string IdempotencyHeader = "Idempotency-Key";

    /// <summary>
    /// The coupons the brand's profiles <paramref name="owners"/> hold, with their templates, and whether any group
    /// template lists the brand (so that group coupons held at sister brands must be looked for): one query.
    /// </summary>
    private static async Task<(List<OfferCoupon> Held, Dictionary<long, OfferTemplate> Templates, bool GroupListsBrand)> HeldWithTemplatesAsync(
        MeridianDb db, long brand, List<long> owners, CancellationToken ct)
    {
        // The sister-brand check reads offer_template_brands past the brand, so the filters are off and the brand is named.
        var rows = await (from c in db.Set<OfferCoupon>().IgnoreQueryFilters().AsNoTracking()
                          join t in db.Set<OfferTemplate>() on c.TemplateId equals t.Id
                          where c.TenantId == brand && c.ProfileId != null && owners.Contains(c.ProfileId.Value) && c.Status == CouponStatus.Issued
                          orderby c.Id
                          select new { Coupon = c, Template = t, Listed = db.Set<OfferTemplateBrand>().Any(x => x.BrandId == brand) }).Take(1000).ToListAsync(ct);
        var templates = new Dictionary<long, OfferTemplate>();
        foreach (var row in rows) templates.TryAdd(row.Template.Id, row.Template);
        var listed = rows.Count > 0 ? rows[0].Listed : await db.Set<OfferTemplateBrand>().IgnoreQueryFilters().AnyAsync(x => x.BrandId == brand, ct);
        return (rows.Select(r => r.Coupon).ToList(), templates, listed);
    }

    /// <summary>
    /// Judges coupons the customer holds (read within the brand, or as group coupons usable at it: so their templates
    /// are read past the brand), given the templates already read (<paramref name="known"/>).
    /// </summary>
    private static async Task<List<Verdict>> JudgeAsync(MeridianDb db, MemberTiers tiers, SegmentConditions segments, ParsedTemplates parsed, List<OfferCoupon> coupons,
        Dictionary<long, OfferTemplate> known, long profileId, Cart.Cart cart, TimeProvider time, CancellationToken ct)
    {
        var missing = coupons.Select(c => c.TemplateId).Where(id => !known.ContainsKey(id)).Distinct().ToList();
        var templates = missing.Count == 0 ? known.Values.ToList()
            : [.. known.Values, .. await db.Set<OfferTemplate>().IgnoreQueryFilters().AsNoTracking().Where(t => missing.Contains(t.Id)).ToListAsync(ct)];
        var rules = templates.ToDictionary(t => t.Id, parsed.Rules);
        var tierId = rules.Values.Any(r => r.Conditions.TierIds.Count > 0) ? await tiers.TierOfAsync(profileId, ct) : null;
        // The customer's profile, and the holders of its coupons: a group coupon's holder is the same person's profile at
        // the template's brand, whose segments the template names.
        var memberships = await segments.ReadAsync(templates.Select(t => (t.TenantId, rules[t.Id].Conditions)),
            coupons.Select(c => c.ProfileId ?? profileId).Append(profileId), ct);
        var now = time.GetUtcNow().UtcDateTime;
        return coupons.Select(c => CartEngine.Judge(new Candidate(c.Id, c.Code, c.ValidFrom, c.ValidUntil, rules[c.TemplateId]), cart, tierId, now, memberships)).ToList();
    }

    private static Cart.Cart ToCart(string channel, List<CartLineRequest> lines, long? shipping) =>
        new(channel, lines.Select(l => new CartLine(l.Sku, l.Category, l.Quantity!.Value, l.UnitPrice!.Value)).ToList(), shipping ?? 0);

    /// <summary>The brand's live profile the id stands for, and the profiles merged into it (whose coupons are the customer's too).</summary>
    private static async Task<(long ProfileId, List<long> WithMerged)?> CustomerAsync(ProfileDirectory profiles, long profileId, long brand, CancellationToken ct) =>
        await profiles.FindLiveWithMergedAsync(profileId, ct) is { } p && p.BrandId == brand ? (p.ProfileId, p.WithMerged) : null;

    private static async Task<long?> LiveProfileAsync(ProfileDirectory profiles, long profileId, long brand, CancellationToken ct) =>
        await profiles.FindLiveAsync(profileId, ct) is { } p && p.BrandId == brand ? p.ProfileId : null;

    private static async Task<IResult?> ReplayIssueAsync(MeridianDb db, long brand, string key, string hash, CancellationToken ct)
    {
        var earlier = await db.Set<OfferCoupon>().AsNoTracking().SingleOrDefaultAsync(c => c.TenantId == brand && c.IssueKey == key, ct);
        if (earlier is null) return null;
        return earlier.IssueHash == hash ? TypedResults.Ok(IssuedCouponDto.From(earlier)) : KeyReused();
    }

    private static IResult ReplayRedemption(OfferRedemption earlier, string hash) => earlier.RequestHash == hash
        ? Results.Content(earlier.Response, "application/json; charset=utf-8", System.Text.Encoding.UTF8, StatusCodes.Status200OK)
        : KeyReused();

    private static ProblemHttpResult KeyReused() => TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, type: ProblemTypes.IdempotencyKeyReused,
        title: "The Idempotency-Key was used for another request.", detail: "This key came with a different request earlier; repeat that request exactly, or send a new key.");

    private static IResult Answer(IssueResult result, long templateId, long profileId) => result.Outcome switch
    {
        IssueOutcome.Issued => TypedResults.Ok(result.Coupon),
        IssueOutcome.NotFound => Problems.NotFound($"Template {templateId}"),
        IssueOutcome.ProfileNotFound => Problems.NotFound($"Profile {profileId}"),
        IssueOutcome.NotActive => TypedResults.Problem(statusCode: 409, type: ProblemTypes.BusinessRule, title: "A business rule prevents this change.", detail: "The offer is paused."),
        IssueOutcome.Ended => TypedResults.Problem(statusCode: 409, type: ProblemTypes.BusinessRule, title: "A business rule prevents this change.", detail: "The offer has ended."),
        IssueOutcome.OutOfStock => OutOfStock("Every coupon of this offer has been given out."),
        IssueOutcome.LimitReached => LimitReached("per_customer", "The customer holds as many coupons of this offer as it allows."),
        IssueOutcome.DailyLimitReached => LimitReached("per_day", "Today's coupons of this offer have all been given out; try again tomorrow."),
        IssueOutcome.NotInSegment => NotEligible(result.Detail ?? "The offer is only for customers in certain segments."),
        _ => throw new InvalidOperationException($"Unknown outcome {result.Outcome}."),
    };

    private static ProblemHttpResult NotEligible(string detail) =>
        TypedResults.Problem(statusCode: 409, type: ProblemTypes.CouponNotEligible, title: "The customer may not receive this coupon.", detail: detail,
            extensions: new Dictionary<string, object?> { ["reason"] = "segment_not_met" });

    private static ProblemHttpResult OutOfStock(string detail) =>
        TypedResults.Problem(statusCode: 409, type: ProblemTypes.OutOfStock, title: "The offer is out of stock.", detail: detail);

    private static ProblemHttpResult LimitReached(string limit, string detail) =>
        TypedResults.Problem(statusCode: 409, type: ProblemTypes.CouponLimitReached, title: "A coupon limit is reached.", detail: detail,
            extensions: new Dictionary<string, object?> { ["limit"] = limit });

    private static bool IsUniqueViolation(Exception ex) => ProblemExceptionHandler.IsUniqueViolation(ex);
}
