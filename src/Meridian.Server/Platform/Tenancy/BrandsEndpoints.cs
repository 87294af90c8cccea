using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Platform.Tenancy;

public sealed record BrandDto(long Id, long GroupId, string Slug, string Name, string DefaultPhoneRegion, string TimeZone, string Currency, DateTime CreatedAt)
{
    public static BrandDto From(Brand b) => new(b.Id, b.GroupId, b.Slug, b.Name, b.DefaultPhoneRegion, b.TimeZone, b.Currency, b.CreatedAt);
}

public sealed record GroupDto(long Id, string Slug, string Name, IReadOnlyList<BrandDto> Brands);

public sealed record CreateBrandRequest(
    [property: Required, StringLength(64, MinimumLength = 2), RegularExpression("^[a-z0-9][a-z0-9-]*$", ErrorMessage = "Use lower-case letters, digits and '-'.")] string Slug,
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: RegularExpression("^[A-Z]{2}$", ErrorMessage = "Use a two-letter ISO 3166 region such as CN.")] string? DefaultPhoneRegion,
    [property: StringLength(64)] string? TimeZone,
    [property: RegularExpression("^[A-Z]{3}$", ErrorMessage = "Use a three-letter ISO 4217 code such as CNY.")] string? Currency);

public sealed record UpdateBrandRequest(
    [property: StringLength(200, MinimumLength = 1)] string? Name,
    [property: RegularExpression("^[A-Z]{2}$", ErrorMessage = "Use a two-letter ISO 3166 region such as CN.")] string? DefaultPhoneRegion,
    [property: StringLength(64)] string? TimeZone,
    [property: RegularExpression("^[A-Z]{3}$", ErrorMessage = "Use a three-letter ISO 4217 code such as CNY.")] string? Currency);

/// <summary>The group and its brands. Brand settings (phone region, time zone, currency) drive every module's defaults.</summary>
public static class BrandsEndpoints
{
    public static IEndpointRouteBuilder MapBrands(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/group", GetGroup).WithTags("Brands").RequireAuthorization(Permissions.BrandsRead);
        var brands = app.MapGroup("/api/v1/brands").WithTags("Brands");
        brands.MapGet("/", List).RequireAuthorization(Permissions.BrandsRead);
        brands.MapGet("/{id}", Get).RequireAuthorization(Permissions.BrandsRead);
        brands.MapPost("/", Create).RequireAuthorization(Permissions.PlatformAdmin);
        brands.MapPatch("/{id}", Update).RequireAuthorization(Permissions.PlatformAdmin);
        return app;
    }

    private static IQueryable<Brand> Visible(MeridianDb db, TenantScope tenant) =>
        db.Set<Brand>().Where(b => b.GroupId == tenant.GroupId && tenant.BrandIds.Contains(b.Id));

    public static async Task<Ok<GroupDto>> GetGroup(MeridianDb db, TenantScope tenant, CancellationToken ct)
    {
        var group = await db.Set<Group>().SingleAsync(g => g.Id == tenant.GroupId, ct);
        var brands = await Visible(db, tenant).OrderBy(b => b.Id).ToListAsync(ct);
        return TypedResults.Ok(new GroupDto(group.Id, group.Slug, group.Name, brands.Select(BrandDto.From).ToList()));
    }

    public static async Task<Ok<List<BrandDto>>> List(MeridianDb db, TenantScope tenant, CancellationToken ct) =>
        TypedResults.Ok((await Visible(db, tenant).OrderBy(b => b.Id).ToListAsync(ct)).Select(BrandDto.From).ToList());

    public static async Task<Results<Ok<BrandDto>, ProblemHttpResult>> Get(long id, MeridianDb db, TenantScope tenant, CancellationToken ct) =>
        await Visible(db, tenant).SingleOrDefaultAsync(b => b.Id == id, ct) is { } brand
            ? TypedResults.Ok(BrandDto.From(brand))
            : Problems.NotFound($"Brand {id}");

    public static async Task<Results<Created<BrandDto>, ValidationProblem, ProblemHttpResult>> Create(
        CreateBrandRequest request, HttpContext http, MeridianDb db, TenantScope tenant, AuditLog audit, ApiKeyStore keys, TimeProvider time, CancellationToken ct)
    {
        if (http.Caller().BrandId is not null)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "The key lacks a permission.",
                detail: "Only a group-level key can create brands.");
        if (request.TimeZone is { } tz && !TimeZoneInfo.TryFindSystemTimeZoneById(tz, out _))
            return Problems.Validation("timeZone", $"'{tz}' is not a known IANA time zone.");
        if (await db.Set<Brand>().AnyAsync(b => b.Slug == request.Slug, ct))
            return Problems.Conflict($"A brand with slug '{request.Slug}' already exists.");

        var brand = new Brand
        {
            GroupId = tenant.GroupId,
            Slug = request.Slug,
            Name = request.Name,
            DefaultPhoneRegion = request.DefaultPhoneRegion ?? "CN",
            TimeZone = request.TimeZone ?? "Asia/Shanghai",
            Currency = request.Currency ?? "CNY",
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(brand);
        audit.Record(null, () => new AuditChange("brand.created", "brand", brand.Id, null, BrandDto.From(brand)));
        await db.SaveChangesAsync(ct);
        keys.ForgetGroup(tenant.GroupId);
        return TypedResults.Created($"/api/v1/brands/{brand.Id}", BrandDto.From(brand));
    }

    public static async Task<Results<Ok<BrandDto>, ValidationProblem, ProblemHttpResult>> Update(
        long id, UpdateBrandRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, CancellationToken ct)
    {
        var brand = await Visible(db, tenant).SingleOrDefaultAsync(b => b.Id == id, ct);
        if (brand is null) return Problems.NotFound($"Brand {id}");
        if (request.TimeZone is { } tz && !TimeZoneInfo.TryFindSystemTimeZoneById(tz, out _))
            return Problems.Validation("timeZone", $"'{tz}' is not a known IANA time zone.");

        var before = BrandDto.From(brand);
        brand.Name = request.Name ?? brand.Name;
        brand.DefaultPhoneRegion = request.DefaultPhoneRegion ?? brand.DefaultPhoneRegion;
        brand.TimeZone = request.TimeZone ?? brand.TimeZone;
        brand.Currency = request.Currency ?? brand.Currency;
        audit.Record(brand.Id, () => new AuditChange("brand.updated", "brand", brand.Id, before, BrandDto.From(brand)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(BrandDto.From(brand));
    }
}
