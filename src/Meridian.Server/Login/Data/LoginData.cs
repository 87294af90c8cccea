using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using OpenIddict.EntityFrameworkCore;
using OpenIddict.EntityFrameworkCore.Models;

namespace Meridian.Login.Data;

/// <summary>
/// A brand's hosted sign-in: what its pages look like, and the ingestion source through which sign-ups reach ID-Mapping.
/// Created with the brand's first client.
/// </summary>
public sealed class LoginBrand : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string DisplayName { get; set; }
    public string PrimaryColour { get; set; } = "#1f6feb";
    public string BackgroundColour { get; set; } = "#f6f8fa";
    public string? LogoUrl { get; set; }
    /// <summary>The ingestion source (channel <c>web</c>) the login's identify messages are written through.</summary>
    public long SourceId { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>A relying party of a brand: one OpenIddict application, registered for one channel.</summary>
public sealed class LoginClient : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string ClientId { get; init; }
    public required string Name { get; set; }
    public required string Channel { get; init; }
    /// <summary><c>public</c> (app, SPA, mini-program: PKCE, no secret) or <c>confidential</c> (a back end with a secret).</summary>
    public required string Type { get; init; }
    /// <summary>Where the provider POSTs a logout token when a customer signs out (OpenID Connect Back-Channel Logout).</summary>
    public string? BackchannelLogoutUri { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>
/// A customer's credentials with one brand. <see cref="ProfileId"/> is the unified profile ID-Mapping gave the
/// customer: the <c>sub</c> every front end of the brand receives.
/// </summary>
public sealed class CustomerAccount : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; set; }
    /// <summary>Lower-cased, as ID-Mapping normalises it.</summary>
    public string? Email { get; set; }
    /// <summary>E.164.</summary>
    public string? Phone { get; set; }
    public string? PasswordHash { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? LastSignInAt { get; set; }
}

/// <summary>A one-time code sent by SMS: stored hashed, short-lived, a few tries, replaced by the next code.</summary>
public sealed class SmsChallenge : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Phone { get; init; }
    public required string CodeHash { get; init; }
    public DateTime SentAt { get; init; }
    public DateTime ExpiresAt { get; init; }
    public int Attempts { get; set; }
    public DateTime? UsedAt { get; set; }
}

/// <summary>
/// Failed sign-ins per key (an account, <c>acct:brand:identifier</c>, or a source address, <c>ip:address</c>): after a
/// few, each further attempt waits longer (<see cref="SignIn.Throttle"/>). Not tenant-owned: an address is throttled
/// across brands.
/// </summary>
public sealed class LoginThrottle
{
    public required string Key { get; init; }
    public int Failures { get; set; }
    public DateTime? BlockedUntil { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>A key of the provider (<c>sig</c>: signs tokens, published in the JWKS; <c>enc</c>: encrypts codes and refresh tokens).</summary>
public sealed class ProviderKey
{
    public long Id { get; private set; }
    public required string KeyId { get; init; }
    public required string Use { get; init; }
    /// <summary>The RSA private key, PKCS#8 DER, base64.</summary>
    public required string PrivateKey { get; init; }
    public DateTime CreatedAt { get; init; }
    /// <summary>No longer signs or encrypts; still published (signing keys) until <see cref="RetiredAt"/>.</summary>
    public DateTime? RetiredAt { get; set; }
}

/// <summary>A customer asked, through the self-service API, for a copy of their data; staff fulfil it with the profile export.</summary>
public sealed class DataExportRequest : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; init; }
    public DateTime RequestedAt { get; init; }
    public required string Status { get; set; }
}

internal sealed class LoginMaps :
    IEntityTypeConfiguration<LoginBrand>, IEntityTypeConfiguration<LoginClient>, IEntityTypeConfiguration<CustomerAccount>,
    IEntityTypeConfiguration<SmsChallenge>, IEntityTypeConfiguration<LoginThrottle>, IEntityTypeConfiguration<ProviderKey>,
    IEntityTypeConfiguration<DataExportRequest>
{
    public void Configure(EntityTypeBuilder<LoginBrand> b)
    {
        b.ToTable("login_brands");
        b.HasIndex(x => x.TenantId).IsUnique();
        b.Property(x => x.DisplayName).HasMaxLength(200);
        b.Property(x => x.PrimaryColour).HasMaxLength(16);
        b.Property(x => x.BackgroundColour).HasMaxLength(16);
        b.Property(x => x.LogoUrl).HasMaxLength(500);
    }

    public void Configure(EntityTypeBuilder<LoginClient> b)
    {
        b.ToTable("login_clients");
        b.HasIndex(x => x.ClientId).IsUnique();
        b.HasIndex(x => new { x.TenantId, x.Channel });
        b.Property(x => x.ClientId).HasMaxLength(100);
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.Channel).HasMaxLength(32);
        b.Property(x => x.Type).HasMaxLength(16);
    }

    public void Configure(EntityTypeBuilder<CustomerAccount> b)
    {
        b.ToTable("login_accounts");
        b.HasIndex(x => new { x.TenantId, x.Email }).IsUnique();
        b.HasIndex(x => new { x.TenantId, x.Phone }).IsUnique();
        b.HasIndex(x => x.ProfileId);
        b.Property(x => x.Email).HasMaxLength(320);
        b.Property(x => x.Phone).HasMaxLength(32);
        b.Property(x => x.PasswordHash).HasMaxLength(200);
    }

    public void Configure(EntityTypeBuilder<SmsChallenge> b)
    {
        b.ToTable("login_sms_challenges");
        b.HasIndex(x => new { x.TenantId, x.Phone, x.SentAt });
        b.Property(x => x.Phone).HasMaxLength(32);
        b.Property(x => x.CodeHash).HasMaxLength(100);
    }

    public void Configure(EntityTypeBuilder<LoginThrottle> b)
    {
        b.ToTable("login_throttles");
        b.HasKey(x => x.Key);
        b.Property(x => x.Key).HasMaxLength(400);
    }

    public void Configure(EntityTypeBuilder<ProviderKey> b)
    {
        b.ToTable("login_provider_keys");
        b.HasIndex(x => x.KeyId).IsUnique();
        b.Property(x => x.KeyId).HasMaxLength(64);
        b.Property(x => x.Use).HasMaxLength(8);
    }

    public void Configure(EntityTypeBuilder<DataExportRequest> b)
    {
        b.ToTable("login_export_requests");
        b.HasIndex(x => x.ProfileId);
        b.Property(x => x.Status).HasMaxLength(16);
    }
}

/// <summary>OpenIddict's own tables (applications, authorizations, scopes, tokens), mapped into the one context under <c>oidc_</c> names.</summary>
internal sealed class OpenIddictMaps :
    IEntityTypeConfiguration<OpenIddictEntityFrameworkCoreApplication>, IEntityTypeConfiguration<OpenIddictEntityFrameworkCoreAuthorization>,
    IEntityTypeConfiguration<OpenIddictEntityFrameworkCoreScope>, IEntityTypeConfiguration<OpenIddictEntityFrameworkCoreToken>
{
    public void Configure(EntityTypeBuilder<OpenIddictEntityFrameworkCoreApplication> b)
    {
        new OpenIddictEntityFrameworkCoreApplicationConfiguration<OpenIddictEntityFrameworkCoreApplication, OpenIddictEntityFrameworkCoreAuthorization, OpenIddictEntityFrameworkCoreToken, string>().Configure(b);
        b.ToTable("oidc_applications");
    }

    public void Configure(EntityTypeBuilder<OpenIddictEntityFrameworkCoreAuthorization> b)
    {
        new OpenIddictEntityFrameworkCoreAuthorizationConfiguration<OpenIddictEntityFrameworkCoreAuthorization, OpenIddictEntityFrameworkCoreApplication, OpenIddictEntityFrameworkCoreToken, string>().Configure(b);
        b.ToTable("oidc_authorizations");
    }

    public void Configure(EntityTypeBuilder<OpenIddictEntityFrameworkCoreScope> b)
    {
        new OpenIddictEntityFrameworkCoreScopeConfiguration<OpenIddictEntityFrameworkCoreScope, string>().Configure(b);
        b.ToTable("oidc_scopes");
    }

    public void Configure(EntityTypeBuilder<OpenIddictEntityFrameworkCoreToken> b)
    {
        new OpenIddictEntityFrameworkCoreTokenConfiguration<OpenIddictEntityFrameworkCoreToken, OpenIddictEntityFrameworkCoreApplication, OpenIddictEntityFrameworkCoreAuthorization, string>().Configure(b);
        b.ToTable("oidc_tokens");
    }
}
