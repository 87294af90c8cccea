using System.Security.Claims;
using System.Text.Encodings.Web;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Meridian.Platform.Access;

/// <summary>What an API key resolves to: who it is, where it may act and what it may do.</summary>
public sealed record ApiKeyIdentity(
    long KeyId, string KeyName, long GroupId, long? BrandId, long? StaffUserId, string Role,
    IReadOnlySet<string> Permissions);

public sealed record BrandRef(long Id, string Slug);

/// <summary>Claim types Meridian puts on an authenticated principal.</summary>
public static class MeridianClaims
{
    public const string KeyId = "key_id";
    public const string Permission = "perm";
}

/// <summary>
/// Resolves raw keys to identities. A validated key is cached for a few seconds so that a hot endpoint does not
/// read the key table on every request; revocation evicts the entry on this node at once, and other nodes see it
/// within <see cref="CacheFor"/>. When an entry expires, one lookup runs and the requests arriving meanwhile wait for
/// it: under a flash sale's thousands of concurrent requests, every request reading the key table at once exhausted
/// the connection pool and failed with 500s.
/// </summary>
public sealed class ApiKeyStore(IServiceScopeFactory scopes, IMemoryCache cache, TimeProvider time)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Task<object?>>> loading = new();

    public async Task<ApiKeyIdentity?> FindAsync(string rawKey, CancellationToken ct)
    {
        var hash = Secrets.Hash(rawKey);
        if (cache.TryGetValue(CacheKey(hash), out ApiKeyIdentity? cached)) return cached;
        return (ApiKeyIdentity?)await OnceAsync(CacheKey(hash), async () => await LoadAsync(hash), ct);
    }

    /// <summary>Runs <paramref name="load"/> once for all callers asking for <paramref name="key"/> while it runs (it caches its answer itself).</summary>
    private async Task<object?> OnceAsync(string key, Func<Task<object?>> load, CancellationToken ct)
    {
        var running = loading.GetOrAdd(key, _ => new Lazy<Task<object?>>(load));
        try
        {
            return await running.Value.WaitAsync(ct);
        }
        finally
        {
            loading.TryRemove(new KeyValuePair<string, Lazy<Task<object?>>>(key, running));
        }
    }

    private async Task<ApiKeyIdentity?> LoadAsync(string hash)
    {
        var ct = CancellationToken.None;
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var now = time.GetUtcNow().UtcDateTime;
        var key = await db.Set<ApiKey>().SingleOrDefaultAsync(k => k.Hash == hash, ct);
        if (key is null || !key.IsActive(now)) return null;
        if (key.StaffUserId is { } staffId && await db.Set<StaffUser>().AnyAsync(u => u.Id == staffId && u.DisabledAt != null, ct))
            return null;
        var role = await db.Set<Role>().SingleAsync(r => r.Id == key.RoleId, ct);

        if (key.LastUsedAt is null || now - key.LastUsedAt > LastUsedResolution)
        {
            // A conditional update, so that nodes racing on the same key write the stamp once a minute at most.
            var threshold = now - LastUsedResolution;
            await db.Set<ApiKey>().Where(k => k.Id == key.Id && (k.LastUsedAt == null || k.LastUsedAt < threshold))
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), ct);
        }

        var identity = new ApiKeyIdentity(key.Id, key.Name, key.GroupId, key.BrandId, key.StaffUserId, role.Name,
            role.Permissions.ToHashSet());
        var expiresIn = key.ExpiresAt is { } exp && exp - now < CacheFor ? exp - now : CacheFor;
        cache.Set(CacheKey(hash), identity, expiresIn);
        return identity;
    }

    public void Forget(string hash) => cache.Remove(CacheKey(hash));

    /// <summary>The brands of a group, cached like keys; creating a brand evicts the entry on this node.</summary>
    public async Task<IReadOnlyList<BrandRef>> BrandsOfGroupAsync(long groupId, CancellationToken ct)
    {
        if (cache.TryGetValue(GroupKey(groupId), out IReadOnlyList<BrandRef>? cached)) return cached!;
        return (IReadOnlyList<BrandRef>)(await OnceAsync(GroupKey(groupId), async () => await LoadBrandsAsync(groupId), ct))!;
    }

    private async Task<IReadOnlyList<BrandRef>> LoadBrandsAsync(long groupId)
    {
        var ct = CancellationToken.None;
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        IReadOnlyList<BrandRef> brands = await db.Set<Brand>().Where(b => b.GroupId == groupId).OrderBy(b => b.Id)
            .Select(b => new BrandRef(b.Id, b.Slug)).ToListAsync(ct);
        cache.Set(GroupKey(groupId), brands, CacheFor);
        return brands;
    }

    public void ForgetGroup(long groupId) => cache.Remove(GroupKey(groupId));

    private static string GroupKey(long groupId) => "group-brands:" + groupId;

    private static string CacheKey(string hash) => "apikey:" + hash;
}

internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyStore keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return AuthenticateResult.NoResult();
        var raw = header["Bearer ".Length..].Trim();
        if (raw.Length is 0 or > 256) return AuthenticateResult.Fail("Malformed key.");

        var identity = await keys.FindAsync(raw, Context.RequestAborted);
        if (identity is null) return AuthenticateResult.Fail("Unknown, expired or revoked key.");

        Context.Features.Set(identity);
        var claims = new List<Claim> { new(MeridianClaims.KeyId, identity.KeyId.ToString()), new(ClaimTypes.Role, identity.Role) };
        claims.AddRange(identity.Permissions.Select(p => new Claim(MeridianClaims.Permission, p)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}

/// <summary>
/// Narrows the request's <see cref="TenantScope"/> to what the key may see. A brand key sees its brand; a group key
/// sees the group's brands and acts on the one it names in the <c>Meridian-Brand</c> header (slug or id).
/// </summary>
internal sealed class TenantScopeMiddleware(RequestDelegate next)
{
    public const string BrandHeader = "Meridian-Brand";

    public async Task InvokeAsync(HttpContext http, TenantScope scope, ApiKeyStore keys, IProblemDetailsService problems)
    {
        var identity = http.Features.Get<ApiKeyIdentity>();
        if (identity is null)
        {
            await next(http);
            return;
        }

        string? named = http.Request.Headers[BrandHeader];
        var groupBrands = await keys.BrandsOfGroupAsync(identity.GroupId, http.RequestAborted);
        BrandRef? acting = null;
        if (!string.IsNullOrWhiteSpace(named))
        {
            acting = groupBrands.FirstOrDefault(b => b.Slug == named || b.Id.ToString() == named);
            if (acting is null || (identity.BrandId is { } own && own != acting.Id))
            {
                http.Response.StatusCode = 403;
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = 403, Type = ProblemTypes.Forbidden, Title = "The key cannot act on that brand.",
                        Detail = $"The '{BrandHeader}' header names a brand outside this key's scope.",
                    },
                });
                return;
            }
        }

        if (identity.BrandId is { } brand)
            scope.Restrict(identity.GroupId, [brand], brand);
        else
            scope.Restrict(identity.GroupId, [.. groupBrands.Select(b => b.Id)], acting?.Id);
        await next(http);
    }
}

/// <summary>Writes 401 and 403 as problem details, naming the permission that was missing.</summary>
internal sealed class ProblemAuthorizationResultHandler(IProblemDetailsService problems) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler fallback = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext http, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Challenged)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            http.Response.StatusCode = 401;
            var sent = http.Request.Headers.Authorization.Count > 0;
            await problems.WriteAsync(new ProblemDetailsContext
            {
                HttpContext = http,
                ProblemDetails = new ProblemDetails
                {
                    Status = 401, Type = ProblemTypes.Unauthorized, Title = "Authentication is required.",
                    Detail = sent ? "The API key is unknown, expired or revoked." : "Send an API key as 'Authorization: Bearer <key>'.",
                },
            });
            return;
        }
        if (result.Forbidden)
        {
            var missing = result.AuthorizationFailure?.FailedRequirements.OfType<ClaimsAuthorizationRequirement>()
                .SelectMany(r => r.AllowedValues ?? []).ToArray() ?? [];
            http.Response.StatusCode = 403;
            var problem = new ProblemDetails
            {
                Status = 403, Type = ProblemTypes.Forbidden, Title = "The key lacks a permission.",
                Detail = missing.Length > 0 ? $"This endpoint needs the '{string.Join("', '", missing)}' permission." : "The key may not do this.",
            };
            problem.Extensions["missingPermissions"] = missing;
            await problems.WriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
            return;
        }
        await fallback.HandleAsync(next, http, policy, result);
    }
}

/// <summary>Rejects writes from a group key that did not name the brand it acts on.</summary>
internal sealed class RequireBrandFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var scope = context.HttpContext.RequestServices.GetRequiredService<TenantScope>();
        if (scope.ActingBrandId is null)
            return TypedResults.Problem(statusCode: 400, type: ProblemTypes.BrandRequired, title: "A brand must be named.",
                detail: $"This key is group-level: name the brand to act on with the '{TenantScopeMiddleware.BrandHeader}' header (slug or id).");
        return await next(context);
    }
}

public static class AccessEndpointExtensions
{
    /// <summary>The endpoint writes brand data: a group-level key must name the brand.</summary>
    public static TBuilder RequireBrand<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, RequireBrandFilter>();

    /// <summary>The key this request authenticated with.</summary>
    public static ApiKeyIdentity Caller(this HttpContext http) =>
        http.Features.Get<ApiKeyIdentity>() ?? throw new InvalidOperationException("The endpoint is not behind authorization.");
}
