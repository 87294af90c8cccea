using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Sources;
using Meridian.Login.Data;
using Meridian.Login.Keys;
using Staff = Meridian.Platform.Access.Permissions;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;
using Permissions = OpenIddict.Abstractions.OpenIddictConstants.Permissions;

namespace Meridian.Login.Clients;

public sealed record LoginBrandRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string DisplayName,
    [property: RegularExpression("^#[0-9a-fA-F]{6}$")] string? PrimaryColour,
    [property: RegularExpression("^#[0-9a-fA-F]{6}$")] string? BackgroundColour,
    [property: Url, StringLength(500)] string? LogoUrl);

public sealed record LoginBrandDto(long BrandId, string DisplayName, string PrimaryColour, string BackgroundColour, string? LogoUrl, long SourceId);

/// <summary>
/// A relying party. <c>type</c>: <c>public</c> (app, SPA, mini-program: code flow with PKCE, no secret) or
/// <c>confidential</c> (a back end with a secret; <c>clientCredentials</c> lets it call as itself).
/// </summary>
public enum LoginChannel { App, Web, Spa, MiniProgram, Server }

/// <summary><c>confidential</c>: a back end holding a secret; <c>public</c>: an app, SPA or mini-program (PKCE, no secret).</summary>
public enum LoginClientType { Confidential, Public }

/// <summary>A confidential client without redirect URIs is a server-to-server client: it gets client credentials.</summary>
public sealed record CreateClientRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required] LoginChannel? Channel,
    [property: Required] LoginClientType? Type,
    [property: MaxLength(20)] List<string>? RedirectUris,
    [property: MaxLength(20)] List<string>? PostLogoutRedirectUris,
    bool? ClientCredentials,
    [property: StringLength(2000), Url] string? BackchannelLogoutUri = null);

public sealed record ClientDto(long Id, string ClientId, long BrandId, string Name, string Channel, string Type, IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> PostLogoutRedirectUris, IReadOnlyList<string> GrantTypes, string? BackchannelLogoutUri, DateTime CreatedAt);

/// <summary>The secret is shown once, here; only its hash is kept.</summary>
public sealed record ClientCreatedDto(ClientDto Client, string? ClientSecret);

public sealed record ProviderKeyDto(string KeyId, string Use, DateTime CreatedAt, DateTime? RetiredAt);

/// <summary>Staff set up the brand's sign-in and register its clients; platform admins rotate the provider's keys.</summary>
public static class LoginAdminEndpoints
{
    public static IEndpointRouteBuilder MapLoginAdmin(this IEndpointRouteBuilder app)
    {
        var login = app.MapGroup("/api/v1/login").WithTags("Login");
        login.MapGet("/brand", GetBrand).RequireAuthorization(Staff.PlatformAdmin).RequireBrand();
        login.MapPut("/brand", PutBrand).RequireAuthorization(Staff.PlatformAdmin).RequireBrand();
        login.MapGet("/clients", ListClients).RequireAuthorization(Staff.PlatformAdmin).RequireBrand();
        login.MapPost("/clients", CreateClient).RequireAuthorization(Staff.PlatformAdmin).RequireBrand();
        login.MapGet("/keys", ListKeys).RequireAuthorization(Staff.PlatformAdmin);
        login.MapPost("/keys/rotate", RotateKeys).RequireAuthorization(Staff.PlatformAdmin);
        return app;
    }

    public static async Task<Results<Ok<LoginBrandDto>, ProblemHttpResult>> GetBrand(MeridianDb db, TenantScope tenant, CancellationToken ct) =>
        await db.Set<LoginBrand>().AsNoTracking().SingleOrDefaultAsync(b => b.TenantId == tenant.Brand, ct) is { } brand
            ? TypedResults.Ok(ToDto(brand))
            : Problems.NotFound("The brand's sign-in settings");

    public static async Task<Ok<LoginBrandDto>> PutBrand(LoginBrandRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, EventPublisher events,
        TimeProvider time, CancellationToken ct)
    {
        var brand = await EnsureBrandAsync(db, tenant, audit, events, time, ct);
        brand.DisplayName = request.DisplayName;
        brand.PrimaryColour = request.PrimaryColour ?? brand.PrimaryColour;
        brand.BackgroundColour = request.BackgroundColour ?? brand.BackgroundColour;
        brand.LogoUrl = request.LogoUrl;
        audit.Record(brand.TenantId, () => new AuditChange("login.brand-updated", "login_brand", brand.Id, null, ToDto(brand)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToDto(brand));
    }

    public static async Task<Ok<List<ClientDto>>> ListClients(MeridianDb db, IOpenIddictApplicationManager applications, CancellationToken ct)
    {
        var clients = await db.Set<LoginClient>().AsNoTracking().OrderBy(c => c.Id).ToListAsync(ct);
        var list = new List<ClientDto>();
        foreach (var client in clients)
            if (await applications.FindByClientIdAsync(client.ClientId, ct) is { } application) list.Add(await ToDtoAsync(client, application, applications, ct));
        return TypedResults.Ok(list);
    }

    public static async Task<Results<Created<ClientCreatedDto>, ValidationProblem>> CreateClient(CreateClientRequest request, MeridianDb db, TenantScope tenant,
        IOpenIddictApplicationManager applications, AuditLog audit, EventPublisher events, TimeProvider time, CancellationToken ct)
    {
        var confidential = request.Type == LoginClientType.Confidential;
        var redirects = request.RedirectUris ?? [];
        var postLogout = request.PostLogoutRedirectUris ?? [];
        var clientCredentials = request.ClientCredentials ?? (confidential && redirects.Count == 0);
        if (clientCredentials && !confidential) return Problems.Validation("clientCredentials", "Only a confidential client can use client credentials.");
        var channel = JsonNamingPolicy.SnakeCaseLower.ConvertName(request.Channel!.Value.ToString());
        var type = JsonNamingPolicy.SnakeCaseLower.ConvertName(request.Type!.Value.ToString());
        foreach (var (field, uris) in new[] { ("redirectUris", redirects), ("postLogoutRedirectUris", postLogout) })
            foreach (var uri in uris)
                if (RedirectUriProblem(uri) is { } problem) return Problems.Validation(field, $"'{uri}': {problem}");
        if (request.BackchannelLogoutUri is { } logoutUri && RedirectUriProblem(logoutUri) is { } logoutProblem)
            return Problems.Validation("backchannelLogoutUri", $"'{logoutUri}': {logoutProblem}");
        if (redirects.Count == 0 && !clientCredentials) return Problems.Validation("redirectUris", "A client that signs customers in needs at least one redirect URI.");

        var brand = await EnsureBrandAsync(db, tenant, audit, events, time, ct);
        var clientId = $"{channel.Replace('_', '-')}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10))}";
        var secret = confidential ? Secrets.NewKey("mdn_cs_") : null;
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId, ClientSecret = secret, DisplayName = request.Name,
            ClientType = confidential ? ClientTypes.Confidential : ClientTypes.Public,
            ConsentType = ConsentTypes.Implicit, // the brand's own front ends: signing in is the consent
        };
        foreach (var uri in redirects) descriptor.RedirectUris.Add(new Uri(uri));
        foreach (var uri in postLogout) descriptor.PostLogoutRedirectUris.Add(new Uri(uri));
        descriptor.Permissions.UnionWith([Permissions.Endpoints.Token, Permissions.Endpoints.Revocation, Permissions.Prefixes.Scope + LoginScopes.Api]);
        if (redirects.Count > 0)
        {
            descriptor.Permissions.UnionWith([
                Permissions.Endpoints.Authorization, Permissions.Endpoints.EndSession,
                Permissions.GrantTypes.AuthorizationCode, Permissions.GrantTypes.RefreshToken, Permissions.ResponseTypes.Code,
                Permissions.Scopes.Profile, Permissions.Scopes.Email, Permissions.Scopes.Phone,
            ]);
            descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
        }
        if (clientCredentials) descriptor.Permissions.Add(Permissions.GrantTypes.ClientCredentials);

        var client = new LoginClient
        {
            TenantId = brand.TenantId, ClientId = clientId, Name = request.Name, Channel = channel, Type = type, BackchannelLogoutUri = request.BackchannelLogoutUri,
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(client);
        audit.Record(brand.TenantId, () => new AuditChange("login.client-created", "login_client", client.Id, null, new { clientId, request.Name, channel, type, redirects, postLogout }));
        await db.SaveChangesAsync(ct);
        var application = await applications.CreateAsync(descriptor, ct);
        return TypedResults.Created($"/api/v1/login/clients/{clientId}", new ClientCreatedDto(await ToDtoAsync(client, application, applications, ct), secret));
    }

    public static async Task<Ok<List<ProviderKeyDto>>> ListKeys(ProviderKeyRing ring, CancellationToken ct)
    {
        await ring.LoadAsync(ct);
        return TypedResults.Ok(ring.Keys.Select(k => new ProviderKeyDto(k.KeyId, k.Use, k.CreatedAt, k.RetiredAt)).ToList());
    }

    /// <summary>New signing and encryption keys take over at once on this node (within a minute on the others); the old signing key stays published.</summary>
    public static async Task<Ok<List<ProviderKeyDto>>> RotateKeys(ProviderKeyRing ring, AuditLog audit, MeridianDb db, CancellationToken ct)
    {
        var keys = await ring.RotateAsync(ct);
        audit.Record(null, () => new AuditChange("login.keys-rotated", "login_keys", "provider", null, new { signing = keys.First(k => k.Use == ProviderKeyRing.Signing && k.RetiredAt is null).KeyId }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(keys.Select(k => new ProviderKeyDto(k.KeyId, k.Use, k.CreatedAt, k.RetiredAt)).ToList());
    }

    /// <summary>
    /// Redirect URIs are matched exactly, so they are checked at registration: absolute, no fragment, and https, except
    /// http on a loopback address (native apps, RFC 8252) and private schemes of apps and mini-programs (<c>com.brand.app:/cb</c>).
    /// </summary>
    private static string? RedirectUriProblem(string uri)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed)) return "not an absolute URI.";
        if (!string.IsNullOrEmpty(parsed.Fragment)) return "a redirect URI may not have a fragment.";
        if (parsed.Scheme == Uri.UriSchemeHttp && !parsed.IsLoopback) return "use https (http only on a loopback address).";
        if (parsed.Scheme is "javascript" or "data" or "file") return "not a usable scheme.";
        return null;
    }

    private static async Task<LoginBrand> EnsureBrandAsync(MeridianDb db, TenantScope tenant, AuditLog audit, EventPublisher events, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<LoginBrand>().SingleOrDefaultAsync(b => b.TenantId == tenant.Brand, ct) is { } existing) return existing;
        var brandName = await db.Set<Brand>().Where(b => b.Id == tenant.Brand).Select(b => b.Name).SingleAsync(ct);
        // Sign-ups reach ID-Mapping as identify messages of a source of the brand's own, like any other channel's.
        var sourceName = "customer-login";
        var sourceId = await db.Set<Source>().Where(s => s.Name == sourceName).Select(s => (long?)s.Id).SingleOrDefaultAsync(ct);
        if (sourceId is null)
        {
            var created = await SourcesEndpoints.Create(new CreateSourceRequest(sourceName, Channel.Web), db, tenant, audit, events, time, ct);
            sourceId = created.Result is Created<SourceWithKeyDto> ok ? ok.Value!.Source.Id : throw new InvalidOperationException("The login source could not be created.");
        }
        var brand = new LoginBrand { TenantId = tenant.Brand, DisplayName = brandName, SourceId = sourceId.Value, CreatedAt = time.GetUtcNow().UtcDateTime };
        db.Add(brand);
        await db.SaveChangesAsync(ct);
        return brand;
    }

    private static LoginBrandDto ToDto(LoginBrand b) => new(b.TenantId, b.DisplayName, b.PrimaryColour, b.BackgroundColour, b.LogoUrl, b.SourceId);

    private static async Task<ClientDto> ToDtoAsync(LoginClient client, object application, IOpenIddictApplicationManager applications, CancellationToken ct)
    {
        var permissions = await applications.GetPermissionsAsync(application, ct);
        return new ClientDto(client.Id, client.ClientId, client.TenantId, client.Name, client.Channel, client.Type,
            (await applications.GetRedirectUrisAsync(application, ct)).ToList(), (await applications.GetPostLogoutRedirectUrisAsync(application, ct)).ToList(),
            permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.GrantType.Length..]).ToList(),
            client.BackchannelLogoutUri, client.CreatedAt);
    }
}
