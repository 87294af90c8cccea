using System.Net;
using System.Security.Claims;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Meridian.Tests.Login;

/// <summary>
/// A web shop built the ordinary way: ASP.NET Core's own OpenID Connect handler pointed at Meridian's issuer, nothing
/// Meridian-specific in it. A customer signs in (by SMS), the shop sees the Meridian customer id, the customer signs out.
/// </summary>
public abstract class RelyingPartyTests(LoginApp app)
{
    [Fact]
    public async Task The_ASP_NET_Core_OpenID_Connect_handler_signs_a_customer_in_and_out_against_Meridian_unchanged()
    {
        var b = await LoginBrand.CreateAsync(app);
        var port = PostgresServer.FreePort();
        var shop = $"http://127.0.0.1:{port}";
        var client = await b.NewClientAsync(new
        {
            name = "web shop", channel = "web", type = "confidential",
            redirectUris = new[] { $"{shop}/signin-oidc" }, postLogoutRedirectUris = new[] { $"{shop}/signout-callback-oidc" },
        });
        await using var rp = await StartShopAsync(shop, app.Address.ToString(), client.GetProperty("client").GetProperty("clientId").GetString()!,
            client.GetProperty("clientSecret").GetString()!);

        using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() });
        var phone = LoginBrand.NewPhone();

        // The shop challenges: to Meridian's authorization endpoint, then (no session) to the sign-in page.
        var toProvider = await RedirectOf(browser, $"{shop}/account");
        Assert.StartsWith(app.Address + "connect/authorize?", toProvider);
        Assert.Contains("code_challenge_method=S256", toProvider);
        var toSignIn = await RedirectOf(browser, toProvider);
        var returnUrl = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(app.Address, toSignIn).Query)["returnUrl"].ToString();

        var before = app.Sms.Calls.Count;
        using (var sent = await browser.PostAsync(new Uri(app.Address, "/login/sms/send"), Flow.Form(("returnUrl", returnUrl), ("phone", phone))))
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        var code = await Flow.SmsCodeAsync(app, phone, before);
        using var verified = await browser.PostAsync(new Uri(app.Address, "/login/sms/verify"), Flow.Form(("returnUrl", returnUrl), ("phone", phone), ("code", code)));
        Assert.Equal(HttpStatusCode.Redirect, verified.StatusCode);

        // Back through the authorization endpoint to the shop's callback; the handler redeems the code and reads userinfo.
        var toCallback = await RedirectOf(browser, new Uri(app.Address, verified.Headers.Location!.OriginalString).ToString());
        Assert.StartsWith($"{shop}/signin-oidc?", toCallback);
        var back = await RedirectOf(browser, toCallback);
        Assert.Equal("/account", back);
        var account = await browser.GetStringAsync($"{shop}/account");
        var profile = await Profiles.ProfileTestBrand.LookupAsync(b.Brand.Client, "phone", phone);
        Assert.Equal($"sub={profile.GetProperty("id").GetInt64()};phone={phone};brand={b.Brand.Slug}", account);

        // Sign-out: the shop sends the customer to Meridian's end-session endpoint and gets them back.
        var toEndSession = await RedirectOf(browser, $"{shop}/logout");
        Assert.StartsWith(app.Address + "connect/endsession?", toEndSession);
        var toSignedOut = await RedirectOf(browser, toEndSession);
        Assert.StartsWith($"{shop}/signout-callback-oidc", toSignedOut);
        await RedirectOf(browser, toSignedOut);
        // Signed out of the shop and of Meridian: the next visit ends on the sign-in page again.
        var again = await RedirectOf(browser, await RedirectOf(browser, $"{shop}/account"));
        Assert.StartsWith("/login/sign-in?", again);
    }

    private static async Task<string> RedirectOf(HttpClient browser, string url)
    {
        using var response = await browser.GetAsync(url);
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return response.Headers.Location!.OriginalString;
    }

    private static async Task<WebApplication> StartShopAsync(string url, string authority, string clientId, string secret)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls(url);
        builder.Services.AddAuthentication(o =>
            {
                o.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                o.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie()
            .AddOpenIdConnect(o =>
            {
                o.Authority = authority;
                // The test runs on plain http on loopback: metadata over http, and the correlation and nonce cookies not marked Secure.
                o.RequireHttpsMetadata = false;
                o.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.ClientId = clientId;
                o.ClientSecret = secret;
                o.ResponseType = "code";
                o.ResponseMode = "query";
                o.UsePkce = true;
                o.Scope.Add("phone");
                o.GetClaimsFromUserInfoEndpoint = true;
                o.SaveTokens = true;
                o.MapInboundClaims = false;
                o.ClaimActions.MapUniqueJsonKey("phone_number", "phone_number");
                o.ClaimActions.MapUniqueJsonKey("brand", "brand");
            });
        var shop = builder.Build();
        shop.UseAuthentication();
        shop.MapGet("/account", (HttpContext http) => http.User.Identity?.IsAuthenticated == true
            ? Results.Text($"sub={http.User.FindFirstValue("sub")};phone={http.User.FindFirstValue("phone_number")};brand={http.User.FindFirstValue("brand")}")
            : Results.Challenge(new AuthenticationProperties { RedirectUri = "/account" }));
        shop.MapGet("/logout", () => Results.SignOut(new AuthenticationProperties { RedirectUri = "/account" },
            [CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectDefaults.AuthenticationScheme]));
        await shop.StartAsync();
        return shop;
    }
}

public sealed class RelyingPartyTestsOnSqlite(LoginSqliteApp app) : RelyingPartyTests(app), IClassFixture<LoginSqliteApp>;

public sealed class RelyingPartyTestsOnPostgres(LoginPostgresApp app) : RelyingPartyTests(app), IClassFixture<LoginPostgresApp>;
