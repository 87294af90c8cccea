using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Meridian.Tests.Login;

/// <summary>Signing out in one front end tells every front end of the brand that held a grant for the customer (Back-Channel Logout 1.0).</summary>
public abstract class BackchannelLogoutTests(LoginApp app)
{
    [Fact]
    public async Task Signing_out_in_the_web_shop_posts_a_signed_logout_token_to_the_web_shop_and_the_app_but_not_to_an_unused_front_end()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var web = new WebhookReceiver();
        using var mobile = new WebhookReceiver();
        using var unused = new WebhookReceiver();
        async Task<string> ClientAsync(string name, string channel, string logoutUri, string redirect) =>
            (await b.NewClientAsync(new { name, channel, type = "public", redirectUris = new[] { redirect }, postLogoutRedirectUris = new[] { b.PostLogoutUri }, backchannelLogoutUri = logoutUri }))
                .GetProperty("client").GetProperty("clientId").GetString()!;
        var webShop = await ClientAsync("Web shop", "spa", web.Url, "https://shop.example.com/cb");
        var appClient = await ClientAsync("App", "app", mobile.Url, "https://app.example.com/cb");
        await ClientAsync("Mini-program", "mini_program", unused.Url, "https://mp.example.com/cb");

        using var browser = app.Browser();
        var shop = b with { ClientId = webShop, RedirectUri = "https://shop.example.com/cb" };
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, shop, LoginBrand.NewPhone(), pkce);
        var shopTokens = await Flow.RedeemAsync(browser, webShop, code, shop.RedirectUri, pkce.Verifier).JsonAsync();
        // Single sign-on: the app gets a code from the same session without another SMS.
        var appPkce = Pkce.New();
        var appCode = await Flow.FollowToCodeAsync(browser, Flow.AuthorizeUrl(appClient, "https://app.example.com/cb", appPkce), "https://app.example.com/cb");
        await Flow.RedeemAsync(browser, appClient, appCode, "https://app.example.com/cb", appPkce.Verifier).JsonAsync();
        var subject = new JsonWebToken(shopTokens.GetProperty("id_token").GetString()).Subject;

        using (await browser.GetAsync($"/connect/endsession?id_token_hint={shopTokens.GetProperty("id_token").GetString()}&post_logout_redirect_uri={Uri.EscapeDataString(b.PostLogoutUri)}")) { }

        await web.WaitForAsync(calls => calls.Count >= 1, TimeSpan.FromSeconds(30));
        await mobile.WaitForAsync(calls => calls.Count >= 1, TimeSpan.FromSeconds(30));
        var keys = new JsonWebKeySet(await browser.GetStringAsync("/.well-known/jwks"));
        foreach (var (receiver, clientId) in new[] { (web, webShop), (mobile, appClient) })
        {
            var token = QueryHelpers.ParseQuery(Assert.Single(receiver.Calls).Body)["logout_token"].ToString();
            var validated = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
            {
                ValidIssuer = app.Address.ToString(), ValidAudience = clientId, IssuerSigningKeys = keys.GetSigningKeys(), ValidTypes = ["logout+jwt"],
            });
            Assert.True(validated.IsValid, validated.Exception?.Message);
            var jwt = (JsonWebToken)validated.SecurityToken;
            Assert.Equal(subject, jwt.Subject);
            Assert.True(jwt.TryGetPayloadValue<JsonElement>("events", out var events) && events.TryGetProperty("http://schemas.openid.net/event/backchannel-logout", out _));
            Assert.False(jwt.TryGetPayloadValue<string>("nonce", out _));
        }
        Assert.Empty(unused.Calls);
    }

    [Fact]
    public async Task A_back_channel_logout_uri_must_be_https_or_loopback()
    {
        var b = await LoginBrand.CreateAsync(app);
        var problem = await b.Brand.Client.PostAsJsonAsync("/api/v1/login/clients", new
        {
            name = "Shop", channel = "web", type = "public", redirectUris = new[] { "https://shop.example.com/cb" }, backchannelLogoutUri = "http://shop.example.com/logout",
        }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("backchannelLogoutUri", problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
    }
}

public sealed class BackchannelLogoutTestsOnSqlite(LoginSqliteApp app) : BackchannelLogoutTests(app), IClassFixture<LoginSqliteApp>;

public sealed class BackchannelLogoutTestsOnPostgres(LoginPostgresApp app) : BackchannelLogoutTests(app), IClassFixture<LoginPostgresApp>;
