using Meridian.Login.Housekeeping;
using Meridian.Login.Keys;
using Meridian.Login.Linking;
using Meridian.Login.Provider;
using Meridian.Login.SignIn;
using Meridian.Login.Clients;
using Meridian.Login.SelfService;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using OpenIddict.Validation.AspNetCore;

namespace Meridian.Login;

/// <summary><c>Meridian:Login</c>: the OpenID Connect provider and the hosted sign-in.</summary>
public sealed class LoginOptions
{
    /// <summary>Refuse OIDC requests over plain HTTP (turn off only on a trusted network or in tests).</summary>
    public bool RequireHttps { get; set; } = true;
    /// <summary>The issuer (<c>https://login.example.com/</c>); by default the address the request came to.</summary>
    public Uri? Issuer { get; set; }
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);
    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromMinutes(2);
    /// <summary>Absolute: a rotated refresh token keeps the expiry of the first one; then the customer signs in again.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(30);
    /// <summary>How long the sign-in session (a cookie of the provider) lasts.</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromDays(14);
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>Take the source address from <c>X-Forwarded-For</c> (only behind a proxy that sets it).</summary>
    public bool TrustForwardedFor { get; set; }
    public int PasswordIterations { get; set; } = 210_000;
    /// <summary>How often expired codes, proofs, throttle counters and spent tokens are removed (zero: never).</summary>
    public TimeSpan HousekeepingInterval { get; set; } = TimeSpan.FromHours(1);
    public SmsOptions Sms { get; set; } = new();
}

public sealed class SmsOptions
{
    /// <summary>Where one-time codes are POSTed as JSON <c>{to, text, brand}</c>; none: SMS sign-in is off.</summary>
    public Uri? GatewayUrl { get; set; }
    public string? GatewayToken { get; set; }
    public TimeSpan CodeLifetime { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan ResendAfter { get; set; } = TimeSpan.FromSeconds(30);
    public int MaxAttempts { get; set; } = 5;
}

/// <summary>Customer identity: an OpenID Connect provider (OpenIddict) with hosted, brandable sign-in pages.</summary>
public static class LoginModule
{
    public const string SessionScheme = "meridian-login";

    public static IHostApplicationBuilder AddLogin(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<LoginOptions>().BindConfiguration("Meridian:Login");
        var options = builder.Configuration.GetSection("Meridian:Login").Get<LoginOptions>() ?? new LoginOptions();

        services.AddSingleton<ProviderKeyRing>();
        services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>, ProviderKeyOptions>();
        services.AddHostedService<ProviderKeyRefresh>();
        services.AddSingleton<LoginHousekeeping>();
        services.AddHostedService(sp => sp.GetRequiredService<LoginHousekeeping>());
        services.AddScoped<Throttle>();
        services.AddScoped<CustomerAccounts>();
        services.AddScoped<PasswordHasher>();
        services.AddHttpClient<SmsSender>();
        services.AddHttpClient("backchannel-logout", c => c.Timeout = TimeSpan.FromSeconds(10));
        services.AddScoped<Meridian.Platform.Outbox.IEventSubscriber, Logout.BackchannelLogout>();

        services.AddAuthentication().AddCookie(SessionScheme, o =>
        {
            o.Cookie.Name = "meridian_login";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = options.RequireHttps ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
            o.ExpireTimeSpan = options.SessionLifetime;
            o.SlidingExpiration = false;
            o.LoginPath = "/login/sign-in";
        });

        services.AddOpenIddict()
            .AddCore(o => o.UseEntityFrameworkCore().UseDbContext<Meridian.Data.MeridianDb>()
                .ReplaceDefaultEntities<OpenIddictEntityFrameworkCoreApplication, OpenIddictEntityFrameworkCoreAuthorization, OpenIddictEntityFrameworkCoreScope, OpenIddictEntityFrameworkCoreToken, string>())
            .AddServer(o =>
            {
                o.SetAuthorizationEndpointUris("connect/authorize")
                    .SetTokenEndpointUris("connect/token")
                    .SetUserInfoEndpointUris("connect/userinfo")
                    .SetRevocationEndpointUris("connect/revoke")
                    .SetEndSessionEndpointUris("connect/endsession")
                    .SetJsonWebKeySetEndpointUris(".well-known/jwks");
                if (options.Issuer is not null) o.SetIssuer(options.Issuer);
                // The code flow (with PKCE, S256 only), refresh tokens and client credentials; no implicit, hybrid or password grant.
                o.AllowAuthorizationCodeFlow().AllowRefreshTokenFlow().AllowClientCredentialsFlow();
                o.RequireProofKeyForCodeExchange();
                o.Configure(s =>
                {
                    s.CodeChallengeMethods.Clear();
                    s.CodeChallengeMethods.Add(OpenIddictConstants.CodeChallengeMethods.Sha256);
                });
                o.RegisterScopes(OpenIddictConstants.Scopes.OpenId, OpenIddictConstants.Scopes.Profile, OpenIddictConstants.Scopes.Email,
                    OpenIddictConstants.Scopes.Phone, OpenIddictConstants.Scopes.OfflineAccess, LoginScopes.Api);
                o.RegisterClaims(OpenIddictConstants.Claims.Subject, OpenIddictConstants.Claims.Name, OpenIddictConstants.Claims.Email,
                    OpenIddictConstants.Claims.EmailVerified, OpenIddictConstants.Claims.PhoneNumber, OpenIddictConstants.Claims.PhoneNumberVerified, LoginClaims.Brand);
                o.SetAccessTokenLifetime(options.AccessTokenLifetime)
                    .SetAuthorizationCodeLifetime(options.AuthorizationCodeLifetime)
                    .SetIdentityTokenLifetime(options.AccessTokenLifetime)
                    .SetRefreshTokenLifetime(options.RefreshTokenLifetime)
                    .DisableSlidingRefreshTokenExpiration()
                    // Every refresh token is single-use: a second use is a theft signal and revokes the whole grant.
                    .SetRefreshTokenReuseLeeway(TimeSpan.Zero);
                // Access tokens are signed JWTs (resource servers can verify them with the JWKS), not encrypted.
                o.DisableAccessTokenEncryption();
                var aspNetCore = o.UseAspNetCore()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableTokenEndpointPassthrough();
                if (!options.RequireHttps) aspNetCore.DisableTransportSecurityRequirement();
            })
            .AddValidation(o =>
            {
                o.UseLocalServer();
                // A revoked grant (sign-out, a reused code or refresh token) stops its access tokens at once, not when they expire.
                o.EnableAuthorizationEntryValidation();
                o.EnableTokenEntryValidation();
                o.UseAspNetCore();
            });
        services.AddAuthorizationBuilder().AddPolicy(LoginScopes.CustomerPolicy, p => p
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireClaim(OpenIddictConstants.Claims.Subject));
        return builder;
    }

    public static IEndpointRouteBuilder MapLogin(this IEndpointRouteBuilder app)
    {
        app.MapProvider();
        app.MapSignIn();
        app.MapLoginAdmin();
        app.MapSelfService();
        app.MapLinking();
        return app;
    }
}

public static class LoginScopes
{
    /// <summary>Access to the customer self-service API (<c>/api/v1/me</c>).</summary>
    public const string Api = "meridian_api";
    public const string CustomerPolicy = "customer";
}

public static class LoginClaims
{
    /// <summary>The slug of the brand the customer signed in with.</summary>
    public const string Brand = "brand";
    public const string BrandId = "brand_id";
}
