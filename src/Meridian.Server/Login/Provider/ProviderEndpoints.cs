using Microsoft.Extensions.Options;
using Meridian.Platform.Outbox;
using Meridian.Login.Logout;
using System.Collections.Immutable;
using System.Security.Claims;
using Meridian.Data;
using Meridian.Login.Data;
using Meridian.Login.SignIn;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Meridian.Login.Provider;

/// <summary>
/// The parts of the OpenID Connect endpoints that are Meridian's to decide (OpenIddict validates the protocol first:
/// clients, redirect URIs, PKCE, grants, tokens): who the customer is, which claims each scope releases, and what
/// signing out ends.
/// </summary>
public static class ProviderEndpoints
{
    public static IEndpointRouteBuilder MapProvider(this IEndpointRouteBuilder app)
    {
        var connect = app.MapGroup("/connect").ExcludeFromDescription().DisableAntiforgery().DisableRateLimiting();
        connect.MapMethods("/authorize", ["GET", "POST"], Authorize);
        connect.MapPost("/token", Token);
        connect.MapMethods("/userinfo", ["GET", "POST"], UserInfo);
        connect.MapMethods("/endsession", ["GET", "POST"], EndSession);
        return app;
    }

    public static async Task<IResult> Authorize(HttpContext http, MeridianDb db, TenantScope tenant, CustomerAccounts accounts, ProfileDirectory profiles, CancellationToken ct)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID Connect request.");
        var brand = await SignInPages.BrandOfClientAsync(db, tenant, request.ClientId!, ct);
        if (brand is null) return Forbid(Errors.InvalidClient, "The client is not registered with a brand.");

        var session = await http.AuthenticateAsync(LoginModule.SessionScheme);
        var account = session.Succeeded && session.Principal.FindFirst(LoginClaims.BrandId)?.Value == brand.BrandId.ToString()
            && long.TryParse(session.Principal.FindFirst(SignInPages.AccountIdClaim)?.Value, out var accountId)
            ? await db.Set<CustomerAccount>().SingleOrDefaultAsync(a => a.Id == accountId, ct)
            : null;
        if (account is null || request.HasPromptValue(PromptValues.Login))
        {
            if (request.HasPromptValue(PromptValues.None)) return Forbid(Errors.LoginRequired, "The customer is not signed in.");
            // Back to this request once signed in, without prompt=login (or the page would ask again forever).
            var parameters = (http.Request.HasFormContentType ? http.Request.Form.ToList() : http.Request.Query.ToList())
                .Where(p => p.Key != Parameters.Prompt).ToDictionary(p => p.Key, p => p.Value.ToString());
            var returnUrl = Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString("/connect/authorize", parameters!);
            if (account is not null) await http.SignOutAsync(LoginModule.SessionScheme);
            return Results.Redirect("/login/sign-in?returnUrl=" + Uri.EscapeDataString(returnUrl));
        }

        var principal = await CustomerPrincipalAsync(account, brand, request.GetScopes(), accounts, profiles, ct);
        return principal is null
            ? Forbid(Errors.AccessDenied, "The customer's profile no longer exists.")
            : Results.SignIn(principal, null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    public static async Task<IResult> Token(HttpContext http, MeridianDb db, TenantScope tenant, CustomerAccounts accounts, ProfileDirectory profiles, CancellationToken ct)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID Connect request.");
        if (request.IsClientCredentialsGrantType())
        {
            // A back end acting for itself: its subject is the client, and it gets no customer claims.
            var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, request.ClientId).SetClaim(Claims.ClientId, request.ClientId);
            identity.SetScopes(request.GetScopes().Intersect([LoginScopes.Api]));
            identity.SetDestinations(_ => [Destinations.AccessToken]);
            return Results.SignIn(new ClaimsPrincipal(identity), null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }
        if (!request.IsAuthorizationCodeGrantType() && !request.IsRefreshTokenGrantType())
            return Forbid(Errors.UnsupportedGrantType, "The grant type is not supported.");

        // The code or refresh token was validated by OpenIddict; the customer behind it is checked again (and their claims refreshed).
        var result = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var granted = result.Principal;
        var brand = request.ClientId is { } clientId ? await SignInPages.BrandOfClientAsync(db, tenant, clientId, ct) : null;
        if (granted is null || brand is null || granted.GetClaim(LoginClaims.BrandId) != brand.BrandId.ToString()
            || !long.TryParse(granted.GetClaim(SignInPages.AccountIdClaim), out var accountId))
            return Forbid(Errors.InvalidGrant, "The grant is no longer valid.");
        var account = await db.Set<CustomerAccount>().SingleOrDefaultAsync(a => a.Id == accountId, ct);
        var principal = account is null ? null : await CustomerPrincipalAsync(account, brand, granted.GetScopes(), accounts, profiles, ct);
        if (principal is null) return Forbid(Errors.InvalidGrant, "The customer's account no longer exists.");
        principal.SetAuthorizationId(granted.GetAuthorizationId());
        return Results.SignIn(principal, null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>Claims of the access token's customer, as its scopes allow: only what the customer has.</summary>
    public static async Task<IResult> UserInfo(HttpContext http, MeridianDb db, TenantScope tenant, ProfileDirectory profiles, CancellationToken ct)
    {
        var result = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var principal = result.Principal;
        if (principal is null || !long.TryParse(principal.GetClaim(SignInPages.AccountIdClaim), out var accountId)
            || !long.TryParse(principal.GetClaim(LoginClaims.BrandId), out var brandId))
            return Challenge(Errors.InvalidToken, "The access token does not stand for a customer.");
        tenant.Restrict(0, [brandId], brandId);
        var account = await db.Set<CustomerAccount>().AsNoTracking().SingleOrDefaultAsync(a => a.Id == accountId, ct);
        if (account is null) return Challenge(Errors.InvalidToken, "The customer's account no longer exists.");

        var claims = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            [Claims.Subject] = principal.GetClaim(Claims.Subject),
            [LoginClaims.Brand] = principal.GetClaim(LoginClaims.Brand),
        };
        if (principal.HasScope(Scopes.Profile) && await profiles.TraitAsync(account.ProfileId, "name", ct) is { } name) claims[Claims.Name] = name;
        if (principal.HasScope(Scopes.Email) && account.Email is { } email)
        {
            claims[Claims.Email] = email;
            claims[Claims.EmailVerified] = false;
        }
        if (principal.HasScope(Scopes.Phone) && account.Phone is { } phone)
        {
            claims[Claims.PhoneNumber] = phone;
            claims[Claims.PhoneNumberVerified] = true;
        }
        return Results.Ok(claims);
    }

    /// <summary>
    /// RP-initiated logout: ends the customer's sign-in session and revokes every grant the customer gave the brand's
    /// front ends, so their refresh tokens and access tokens stop working too; then back to the client's registered
    /// post-logout address.
    /// </summary>
    public static async Task<IResult> EndSession(HttpContext http, MeridianDb db, TenantScope tenant, IOpenIddictAuthorizationManager authorizations,
        IOpenIddictTokenManager tokens, IOpenIddictApplicationManager applications, EventPublisher events, IOptions<LoginOptions> options, CancellationToken ct)
    {
        // The customer is the one named by the id_token_hint, else the one signed in to the provider.
        var hint = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        var subject = hint?.GetClaim(Claims.Subject);
        var session = await http.AuthenticateAsync(LoginModule.SessionScheme);
        if (subject is null && session.Succeeded && long.TryParse(session.Principal.FindFirst(SignInPages.AccountIdClaim)?.Value, out var accountId))
        {
            tenant.RunAsSystem();
            subject = (await db.Set<CustomerAccount>().AsNoTracking().Where(a => a.Id == accountId).Select(a => (long?)a.ProfileId).SingleOrDefaultAsync(ct))?.ToString();
        }
        await http.SignOutAsync(LoginModule.SessionScheme);
        if (subject is not null)
        {
            var signedOutOf = new HashSet<string>();
            await foreach (var authorization in authorizations.FindBySubjectAsync(subject, ct))
            {
                await authorizations.TryRevokeAsync(authorization, ct);
                if (await authorizations.GetIdAsync(authorization, ct) is { } id) await tokens.RevokeByAuthorizationIdAsync(id, ct);
                if (await authorizations.GetApplicationIdAsync(authorization, ct) is { } applicationId && await applications.FindByIdAsync(applicationId, ct) is { } application
                    && await applications.GetClientIdAsync(application, ct) is { } clientId)
                    signedOutOf.Add(clientId);
            }
            await TellFrontEndsAsync(http, db, events, options.Value, subject, signedOutOf, ct);
        }
        return Results.SignOut(new AuthenticationProperties { RedirectUri = "/login/signed-out" }, [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
    }

    /// <summary>Queues a back-channel logout notice for the brand's front ends that held a grant for the customer (see <see cref="BackchannelLogout"/>).</summary>
    private static async Task TellFrontEndsAsync(HttpContext http, MeridianDb db, EventPublisher events, LoginOptions options, string subject,
        IReadOnlyCollection<string> clientIds, CancellationToken ct)
    {
        var listening = await (from c in db.Set<LoginClient>().IgnoreQueryFilters()
                               join b in db.Set<Brand>() on c.TenantId equals b.Id
                               where clientIds.Contains(c.ClientId) && c.BackchannelLogoutUri != null
                               select new { c.ClientId, c.TenantId, b.GroupId }).AsNoTracking().ToListAsync(ct);
        if (listening.Count == 0) return;
        var issuer = options.Issuer?.AbsoluteUri ?? $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}/";
        foreach (var brand in listening.GroupBy(c => (c.TenantId, c.GroupId)))
            events.Publish(brand.Key.GroupId, brand.Key.TenantId, () => new CustomerSignedOut(subject, issuer, [.. brand.Select(c => c.ClientId)]));
        await db.SaveChangesAsync(ct);
    }

    private static async Task<ClaimsPrincipal?> CustomerPrincipalAsync(CustomerAccount account, LoginContext brand, ImmutableArray<string> scopes,
        CustomerAccounts accounts, ProfileDirectory profiles, CancellationToken ct)
    {
        var profileId = await accounts.LiveProfileAsync(account, ct);
        if (profileId is null) return null;
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, profileId.Value.ToString())
            .SetClaim(LoginClaims.Brand, brand.BrandSlug)
            .SetClaim(LoginClaims.BrandId, brand.BrandId.ToString())
            .SetClaim(SignInPages.AccountIdClaim, account.Id.ToString());
        if (scopes.Contains(Scopes.Profile) && await profiles.TraitAsync(profileId.Value, "name", ct) is { } name) identity.SetClaim(Claims.Name, name);
        if (scopes.Contains(Scopes.Email) && account.Email is { } email) identity.SetClaim(Claims.Email, email).SetClaim(Claims.EmailVerified, false);
        if (scopes.Contains(Scopes.Phone) && account.Phone is { } phone) identity.SetClaim(Claims.PhoneNumber, phone).SetClaim(Claims.PhoneNumberVerified, true);
        identity.SetScopes(scopes);
        identity.SetDestinations(claim => claim.Type switch
        {
            // Internal: kept inside the access token and the grant (the token endpoint and userinfo read them), never in an id_token.
            SignInPages.AccountIdClaim or LoginClaims.BrandId => [Destinations.AccessToken],
            Claims.Name when scopes.Contains(Scopes.Profile) => [Destinations.AccessToken, Destinations.IdentityToken],
            Claims.Email or Claims.EmailVerified when scopes.Contains(Scopes.Email) => [Destinations.AccessToken, Destinations.IdentityToken],
            Claims.PhoneNumber or Claims.PhoneNumberVerified when scopes.Contains(Scopes.Phone) => [Destinations.AccessToken, Destinations.IdentityToken],
            _ => [Destinations.AccessToken, Destinations.IdentityToken],
        });
        return new ClaimsPrincipal(identity);
    }

    private static IResult Forbid(string error, string description) => Results.Forbid(new AuthenticationProperties(new Dictionary<string, string?>
    {
        [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
        [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
    }), [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

    private static IResult Challenge(string error, string description) => Results.Challenge(new AuthenticationProperties(new Dictionary<string, string?>
    {
        [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
        [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
    }), [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
}
