using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Login.Data;
using Meridian.Login.Linking;
using Meridian.Login.SignIn;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Meridian.Login.SelfService;

public sealed record MeDto(long ProfileId, string Brand, string? Name, string? Email, string? Phone);

public sealed record MyConsentRequest(
    [property: Required, StringLength(32)] string Channel,
    [property: Required, StringLength(32)] string Purpose,
    [property: Required] bool? Granted);

/// <summary>Adds (or changes) the email and password a customer can also sign in with. The email is not verified yet.</summary>
public sealed record MyCredentialsRequest(
    [property: Required, StringLength(320)] string Email,
    [property: Required, StringLength(PasswordHasher.MaxLength)] string Password);

public sealed record ExportRequestDto(long Id, long ProfileId, string Status, DateTime RequestedAt);

/// <summary>
/// What a signed-in customer can see and change about themselves, with the access token a front end got for them
/// (scope <c>meridian_api</c>): their profile, their consents, a request for a copy of their data.
/// </summary>
public static class SelfServiceEndpoints
{
    public static IEndpointRouteBuilder MapSelfService(this IEndpointRouteBuilder app)
    {
        var me = app.MapCustomerGroup("/api/v1/me", "Customer self-service");
        me.MapGet("/", Me);
        me.MapGet("/consents", MyConsents);
        me.MapPut("/consents", ChangeMyConsent);
        me.MapPut("/credentials", SetMyCredentials);
        me.MapPost("/export-requests", RequestExport);
        me.MapGet("/export-requests", MyExportRequests);
        me.MapMyWallet();
        me.MapMyIdentifiers();
        return app;
    }

    /// <summary>
    /// A route group for a signed-in customer, with the access token a front end got for them (scope <c>meridian_api</c>):
    /// requests are restricted to the customer's brand; <see cref="AccountAsync"/> finds who they are.
    /// </summary>
    public static RouteGroupBuilder MapCustomerGroup(this IEndpointRouteBuilder app, string prefix, string tag) =>
        app.MapGroup(prefix).WithTags(tag).RequireAuthorization(LoginScopes.CustomerPolicy)
            .AddEndpointFilter(async (context, next) =>
            {
                var user = context.HttpContext.User;
                if (!user.HasScope(LoginScopes.Api) || !long.TryParse(user.GetClaim(LoginClaims.BrandId), out var brandId))
                    return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "Forbidden.",
                        detail: $"A customer's access token with the '{LoginScopes.Api}' scope is required.");
                var tenant = context.HttpContext.RequestServices.GetRequiredService<TenantScope>();
                var db = context.HttpContext.RequestServices.GetRequiredService<MeridianDb>();
                var groupId = await db.GroupOfAsync(brandId, context.HttpContext.RequestAborted);
                tenant.Restrict(groupId, [brandId], brandId);
                return await next(context);
            });

    public static async Task<Results<Ok<MeDto>, ProblemHttpResult>> Me(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        var account = await AccountAsync(user, db, ct);
        if (account is null) return Problems.NotFound("Your account");
        return TypedResults.Ok(new MeDto(account.ProfileId, user.GetClaim(LoginClaims.Brand) ?? "", await profiles.TraitAsync(account.ProfileId, "name", ct), account.Email, account.Phone));
    }

    public static async Task<Results<Ok<IReadOnlyList<ConsentDto>>, ProblemHttpResult>> MyConsents(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        var account = await AccountAsync(user, db, ct);
        return account is null ? Problems.NotFound("Your account") : TypedResults.Ok(await profiles.ConsentsAsync(account.ProfileId, ct));
    }

    public static async Task<Results<Ok<ConsentDto>, ValidationProblem, ProblemHttpResult>> ChangeMyConsent(MyConsentRequest request, ClaimsPrincipal user, MeridianDb db,
        ProfileDirectory profiles, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (!Consents.Channels.Contains(request.Channel)) return Problems.Validation("channel", $"One of: {string.Join(", ", Consents.Channels)}.");
        if (!Consents.Purposes.Contains(request.Purpose)) return Problems.Validation("purpose", $"One of: {string.Join(", ", Consents.Purposes)}.");
        var account = await AccountAsync(user, db, ct);
        if (account is null) return Problems.NotFound("Your account");
        var change = await profiles.ChangeConsentAsync(account.TenantId, account.ProfileId, request.Channel, request.Purpose, request.Granted!.Value,
            $"customer:{user.GetClaim(OpenIddictConstants.Claims.ClientId) ?? user.GetClaim("azp") ?? "login"}", time.GetUtcNow().UtcDateTime, ct);
        audit.Record(account.TenantId, () => new AuditChange("profile.consent-changed", "profile", account.ProfileId, null, new { request.Channel, request.Purpose, request.Granted, by = "customer" }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(change);
    }

    public static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> SetMyCredentials(MyCredentialsRequest request, ClaimsPrincipal user, MeridianDb db,
        CustomerAccounts accounts, PasswordHasher hasher, AuditLog audit, CancellationToken ct)
    {
        var account = await AccountAsync(user, db, ct);
        if (account is null) return Problems.NotFound("Your account");
        var email = await accounts.NormalizeAsync(account.TenantId, "email", request.Email, ct);
        if (email is null) return Problems.Validation("email", "Not a valid email address.");
        if (PasswordHasher.Weakness(request.Password) is { } weakness) return Problems.Validation("password", weakness);
        if (await accounts.FindAsync(account.TenantId, "email", email, ct) is { } other && other.Id != account.Id)
            return Problems.Conflict("Another account of this brand uses that email.");
        account.Email = email;
        account.PasswordHash = hasher.Hash(request.Password);
        audit.Record(account.TenantId, () => new AuditChange("login.credentials-changed", "login_account", account.Id, null, new { by = "customer" }));
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    /// <summary>Recorded and audited; staff fulfil it with the profile export (<c>GET /api/v1/profiles/{id}/export</c>).</summary>
    public static async Task<Results<Accepted<ExportRequestDto>, ProblemHttpResult>> RequestExport(ClaimsPrincipal user, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var account = await AccountAsync(user, db, ct);
        if (account is null) return Problems.NotFound("Your account");
        var request = new DataExportRequest { TenantId = account.TenantId, ProfileId = account.ProfileId, RequestedAt = time.GetUtcNow().UtcDateTime, Status = "requested" };
        db.Add(request);
        audit.Record(account.TenantId, () => new AuditChange("profile.export-requested", "profile", account.ProfileId, null, new { requestId = request.Id, by = "customer" }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Accepted($"/api/v1/me/export-requests", new ExportRequestDto(request.Id, request.ProfileId, request.Status, request.RequestedAt));
    }

    public static async Task<Results<Ok<List<ExportRequestDto>>, ProblemHttpResult>> MyExportRequests(ClaimsPrincipal user, MeridianDb db, CancellationToken ct)
    {
        var account = await AccountAsync(user, db, ct);
        if (account is null) return Problems.NotFound("Your account");
        var requests = await db.Set<DataExportRequest>().AsNoTracking().Where(r => r.ProfileId == account.ProfileId).OrderBy(r => r.Id)
            .Select(r => new ExportRequestDto(r.Id, r.ProfileId, r.Status, r.RequestedAt)).ToListAsync(ct);
        return TypedResults.Ok(requests);
    }

    /// <summary>The account of the customer whose access token the request carries.</summary>
    internal static async Task<CustomerAccount?> AccountAsync(ClaimsPrincipal user, MeridianDb db, CancellationToken ct) =>
        long.TryParse(user.GetClaim(SignInPages.AccountIdClaim), out var id) ? await db.Set<CustomerAccount>().SingleOrDefaultAsync(a => a.Id == id, ct) : null;
}
