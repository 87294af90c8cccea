using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Login.Data;
using Meridian.Login.SelfService;
using Meridian.Login.SignIn;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Identity;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace Meridian.Login.Linking;

public sealed record IdentityProofRequest(
    [property: Required, StringLength(64, MinimumLength = 1)] string Type,
    [property: Required, StringLength(256, MinimumLength = 1)] string Value);

/// <summary>The proof to hand to the customer's front end (shown once); it links nothing until a signed-in customer redeems it.</summary>
public sealed record IdentityProofDto(string Proof, string Type, DateTime ExpiresAt);

public sealed record LinkIdentifierRequest([property: Required, StringLength(200, MinimumLength = 1)] string Proof);

public sealed record LinkedIdentifierDto(string Type, string Value, long ProfileId);

/// <summary>
/// Account linking: a customer signed in on one channel adds an identifier of another (a mini-program's unionid or
/// openid, a member number) after proving it. The proof comes from the brand's own back end, which alone can check
/// such an identifier (WeChat answers the mini-program's server, not Meridian): it asks for a proof with its client
/// credentials, the customer's front end redeems it with the customer's access token, and the identifier goes to
/// ID-Mapping beside one the account has proven (its phone or email), so merges, per-profile limits and conflicts
/// follow the brand's rules exactly as for any tracked event.
/// </summary>
public static class LinkingEndpoints
{
    public static readonly TimeSpan ProofLifetime = TimeSpan.FromMinutes(5);

    public static IEndpointRouteBuilder MapLinking(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/login/identity-proofs", IssueProof).WithTags("Customer login")
            .RequireAuthorization(p => p.AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme).RequireAuthenticatedUser());
        return app;
    }

    public static RouteGroupBuilder MapMyIdentifiers(this RouteGroupBuilder me)
    {
        me.MapGet("/identifiers", MyIdentifiers);
        me.MapPost("/identifiers", LinkIdentifier);
        return me;
    }

    /// <summary>A confidential client (client credentials token) vouches for an identifier of its brand's customers.</summary>
    public static async Task<Results<Created<IdentityProofDto>, ValidationProblem, ProblemHttpResult>> IssueProof(IdentityProofRequest request, ClaimsPrincipal user,
        MeridianDb db, TenantScope tenant, IdentifierRules rules, TimeProvider time, CancellationToken ct)
    {
        // A customer's token has an account; only a back end acting for itself (client credentials) may vouch.
        if (user.GetClaim(SignInPages.AccountIdClaim) is not null || user.GetClaim(OpenIddictConstants.Claims.ClientId) is not { } clientId
            || await SignInPages.BrandOfClientAsync(db, tenant, clientId, ct) is not { } brand)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "Forbidden.",
                detail: "Identity proofs are issued to a brand's confidential client with a client-credentials access token.");
        var (types, region) = await rules.ForAsync(db, brand.BrandId, ct);
        if (types.FirstOrDefault(t => t.Name == request.Type) is not { } type)
            return Problems.Validation("type", $"The brand has no identifier type '{request.Type}'.");
        if (!Linkable(type)) return Problems.Validation("type", $"'{type.Name}' identifiers are not linked to accounts.");
        if (Normalizers.Normalize(type.Normalizer, request.Value, region) is not { } value || type.BlockedValues.Contains(value, StringComparer.OrdinalIgnoreCase))
            return Problems.Validation("value", $"Not a valid {type.Name}.");

        var proof = "mdn_pf_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = Instants.Now(time);
        db.Add(new IdentityProof
        {
            TenantId = brand.BrandId, ClientId = clientId, Type = type.Name, Value = value, TokenHash = Hash(proof), CreatedAt = now, ExpiresAt = now + ProofLifetime,
        });
        await db.SaveChangesAsync(ct);
        return TypedResults.Created("/api/v1/me/identifiers", new IdentityProofDto(proof, type.Name, now + ProofLifetime));
    }

    /// <summary>The signed-in customer redeems a proof: the identifier joins their profile (or the link is refused with why).</summary>
    public static async Task<Results<Ok<LinkedIdentifierDto>, ValidationProblem, ProblemHttpResult>> LinkIdentifier(LinkIdentifierRequest request, ClaimsPrincipal user,
        MeridianDb db, CustomerAccounts accounts, ProfileDirectory profiles, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var account = await SelfServiceEndpoints.AccountAsync(user, db, ct);
        if (account is null) return Problems.NotFound("Your account");
        var now = Instants.Now(time);
        var hash = Hash(request.Proof.Trim());
        var proof = await db.Set<IdentityProof>().AsNoTracking().SingleOrDefaultAsync(p => p.TokenHash == hash && p.TenantId == account.TenantId, ct);
        // Used once: the conditional update decides between two redemptions racing with the same proof.
        if (proof is null || proof.ExpiresAt <= now || await db.Set<IdentityProof>().Where(p => p.Id == proof.Id && p.UsedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(p => p.UsedAt, now).SetProperty(p => p.UsedByAccountId, account.Id), ct) != 1)
            return Problems.Validation("proof", "The proof is unknown, expired or already used; ask the app for a new one.");

        var holder = await accounts.LinkIdentifierAsync(account, proof.Type, proof.Value, ct);
        var mine = await accounts.LiveProfileAsync(account, ct);
        audit.Record(account.TenantId, () => new AuditChange("login.identifier-linked", "login_account", account.Id, null,
            new { proof.Type, proof.ClientId, linked = holder == mine, by = "customer" }));
        await db.SaveChangesAsync(ct);
        if (holder is null || holder != mine)
            return TypedResults.Problem(statusCode: 409, type: ProblemTypes.Conflict, title: "The identifier could not be linked.",
                detail: $"This {proof.Type} belongs to another customer of the brand, or your profile already has as many of them as the brand allows; the brand's staff see it as an identity conflict.");
        return TypedResults.Ok(new LinkedIdentifierDto(proof.Type, proof.Value, mine.Value));
    }

    /// <summary>The identifiers the customer's profile holds (their own: not masked).</summary>
    public static async Task<Results<Ok<Dictionary<string, List<string>>>, ProblemHttpResult>> MyIdentifiers(ClaimsPrincipal user, MeridianDb db,
        CustomerAccounts accounts, ProfileDirectory profiles, IdentifierRules rules, CancellationToken ct)
    {
        var account = await SelfServiceEndpoints.AccountAsync(user, db, ct);
        if (account is null || await accounts.LiveProfileAsync(account, ct) is not { } profileId) return Problems.NotFound("Your account");
        var (types, _) = await rules.ForAsync(db, account.TenantId, ct);
        var held = await profiles.IdentifiersOfAsync([profileId], [.. types.Where(Linkable).Select(t => t.Name)], pii: true, ct);
        return TypedResults.Ok(held[profileId]);
    }

    /// <summary>Anonymous ids and shared devices say nothing about who someone is: they are not linked to accounts.</summary>
    private static bool Linkable(IdentifierType type) => type.Links && type.Name != "anonymous_id";

    private static string Hash(string proof) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(proof)));
}
