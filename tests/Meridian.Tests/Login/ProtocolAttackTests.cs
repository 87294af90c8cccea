using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;

namespace Meridian.Tests.Login;

/// <summary>
/// Requests RFC 9700 (OAuth 2.0 security BCP) and OpenID Connect Core say a provider must refuse, each refused here:
/// redirect URI tricks, PKCE downgrades, replayed codes and refresh tokens, expired grants, the wrong client,
/// implicit and password grants, unsigned tokens.
/// </summary>
public abstract class ProtocolAttackTests(LoginApp app)
{
    [Theory]
    [InlineData("https://app.example.com/callback/")]             // trailing slash
    [InlineData("https://app.example.com/Callback")]              // case
    [InlineData("https://app.example.com/callback?next=/admin")]  // extra query
    [InlineData("https://evil.app.example.com/callback")]         // subdomain
    [InlineData("https://app.example.com/callback/evil")]         // path suffix
    [InlineData("http://app.example.com/callback")]               // http instead of https
    [InlineData("https://app.example.com.evil.io/callback")]      // look-alike host
    [InlineData("https://app.example.com:8443/callback")]         // other port
    public async Task An_authorization_request_with_a_redirect_uri_not_registered_exactly_is_refused_without_redirecting(string redirectUri)
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        using var response = await browser.GetAsync(Flow.AuthorizeUrl(b.ClientId, redirectUri, Pkce.New()));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location); // never sent to the attacker's address, not even with an error
        Assert.Contains("invalid_request", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_authorization_request_without_a_redirect_uri_or_from_an_unknown_client_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        using (var none = await browser.GetAsync($"/connect/authorize?client_id={b.ClientId}&response_type=code&scope=openid&code_challenge={Pkce.New().Challenge}&code_challenge_method=S256"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, none.StatusCode);
            Assert.Null(none.Headers.Location);
        }
        using var unknown = await browser.GetAsync(Flow.AuthorizeUrl("app-unknown", b.RedirectUri, Pkce.New()));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Null(unknown.Headers.Location);
    }

    [Fact]
    public async Task An_authorization_request_without_PKCE_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        await AssertRedirectedErrorAsync(b, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, pkce: null), "invalid_request");
    }

    [Fact]
    public async Task An_authorization_request_with_the_plain_PKCE_method_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        await AssertRedirectedErrorAsync(b, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New(), method: "plain"), "invalid_request");
    }

    [Fact]
    public async Task A_PKCE_challenge_without_a_method_is_refused_rather_than_read_as_plain()
    {
        var b = await LoginBrand.CreateAsync(app);
        var url = $"/connect/authorize?client_id={b.ClientId}&redirect_uri={Uri.EscapeDataString(b.RedirectUri)}&response_type=code&scope=openid&state=st-1&code_challenge={Pkce.New().Verifier}";
        await AssertRedirectedErrorAsync(b, url, "invalid_request");
    }

    [Theory]
    [InlineData("token")]          // implicit
    [InlineData("id_token")]       // implicit, OIDC
    [InlineData("id_token token")] // implicit, OIDC
    [InlineData("code id_token")]  // hybrid
    [InlineData("code token")]     // hybrid
    public async Task Implicit_and_hybrid_response_types_are_refused(string responseType)
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        using var response = await browser.GetAsync(Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New(), responseType: responseType));
        var location = response.Headers.Location?.OriginalString ?? "";
        Assert.DoesNotContain("access_token=", location);
        Assert.DoesNotContain("id_token=", location);
        Assert.DoesNotContain("code=", location);
        Assert.True(location.Contains("error=unsupported_response_type") || location.Contains("error=invalid_request")
            || (response.StatusCode == HttpStatusCode.BadRequest && (await response.Content.ReadAsStringAsync()).Contains("unsupported_response_type")),
            $"{(int)response.StatusCode} {location}");
    }

    [Fact]
    public async Task The_password_grant_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var http = app.Browser();
        await http.PostAsync("/connect/token", Flow.Form(("grant_type", "password"), ("client_id", b.ClientId), ("username", "a@b.c"), ("password", "whatever1")))
            .OAuthErrorAsync("unsupported_grant_type");
    }

    [Fact]
    public async Task A_wrong_PKCE_verifier_or_none_at_all_gets_no_tokens()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, Pkce.New().Verifier).OAuthErrorAsync("invalid_grant");

        var pkce2 = Pkce.New();
        var code2 = await Flow.FollowToCodeAsync(browser, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, pkce2), b.RedirectUri);
        await Flow.RedeemAsync(browser, b.ClientId, code2, b.RedirectUri, verifier: null).OAuthErrorAsync("invalid_request");
    }

    [Fact]
    public async Task A_code_redeemed_twice_fails_the_second_time_and_revokes_the_tokens_of_the_first()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        var tokens = await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).OAuthErrorAsync("invalid_grant");

        using (var userinfo = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", tokens.GetProperty("access_token").GetString()!)))
            Assert.Equal(HttpStatusCode.Unauthorized, userinfo.StatusCode);
        using (var me = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me", tokens.GetProperty("access_token").GetString()!)))
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        await Flow.RefreshAsync(browser, b.ClientId, tokens.GetProperty("refresh_token").GetString()!).OAuthErrorAsync("invalid_grant");
    }

    [Fact]
    public async Task A_code_redeemed_with_another_redirect_uri_than_it_was_issued_for_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri + "/other", pkce.Verifier).OAuthErrorAsync("invalid_grant");
    }

    [Fact]
    public async Task A_code_issued_to_one_client_is_refused_to_another_client_even_of_the_same_brand()
    {
        var b = await LoginBrand.CreateAsync(app);
        var other = await b.NewClientAsync(new { name = "web shop", channel = "spa", type = "public", redirectUris = new[] { b.RedirectUri } });
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        await Flow.RedeemAsync(browser, other.GetProperty("client").GetProperty("clientId").GetString()!, code, b.RedirectUri, pkce.Verifier).OAuthErrorAsync("invalid_grant");
    }

    [Fact]
    public async Task A_refresh_token_presented_by_another_client_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        var other = await b.NewClientAsync(new { name = "web shop", channel = "spa", type = "public", redirectUris = new[] { b.RedirectUri } });
        var (browser, tokens) = await SignedInAsync(b);
        using var _ = browser;
        await Flow.RefreshAsync(browser, other.GetProperty("client").GetProperty("clientId").GetString()!, tokens.GetProperty("refresh_token").GetString()!).OAuthErrorAsync("invalid_grant");
    }

    [Fact]
    public async Task A_refresh_token_reused_after_rotation_is_refused_and_revokes_the_whole_grant()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (browser, tokens) = await SignedInAsync(b);
        using var _ = browser;
        var first = tokens.GetProperty("refresh_token").GetString()!;
        var rotated = await Flow.RefreshAsync(browser, b.ClientId, first).JsonAsync();
        // The stolen first token is replayed: refused, and the legitimate holder's newer tokens die with it.
        await Flow.RefreshAsync(browser, b.ClientId, first).OAuthErrorAsync("invalid_grant");
        await Flow.RefreshAsync(browser, b.ClientId, rotated.GetProperty("refresh_token").GetString()!).OAuthErrorAsync("invalid_grant");
        using var userinfo = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", rotated.GetProperty("access_token").GetString()!));
        Assert.Equal(HttpStatusCode.Unauthorized, userinfo.StatusCode);
    }

    [Fact]
    public async Task A_code_used_after_its_short_lifetime_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        app.Clock.Advance(TimeSpan.FromMinutes(3)); // codes live 2 minutes
        await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).OAuthErrorAsync("invalid_grant");
    }

    [Fact]
    public async Task Rotated_refresh_tokens_keep_the_first_ones_absolute_expiry()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (browser, tokens) = await SignedInAsync(b);
        using var _ = browser;
        app.Clock.Advance(TimeSpan.FromDays(20));
        var rotated = await Flow.RefreshAsync(browser, b.ClientId, tokens.GetProperty("refresh_token").GetString()!).JsonAsync();
        app.Clock.Advance(TimeSpan.FromDays(11)); // 31 days after sign-in, 11 after the rotation: past the 30-day absolute lifetime
        await Flow.RefreshAsync(browser, b.ClientId, rotated.GetProperty("refresh_token").GetString()!).OAuthErrorAsync("invalid_grant");
    }

    [Fact]
    public async Task Tokens_with_alg_none_or_a_forged_signature_are_refused_by_userinfo_and_the_self_service_API()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (browser, tokens) = await SignedInAsync(b);
        using var _ = browser;
        var genuine = tokens.GetProperty("access_token").GetString()!;
        var parts = genuine.Split('.');
        var header = JsonSerializer.Deserialize<Dictionary<string, object>>(Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(parts[0])))!;
        header["alg"] = "none";
        var unsigned = WebEncoders.Base64UrlEncode(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + parts[1] + ".";
        var forged = parts[0] + "." + parts[1] + "." + WebEncoders.Base64UrlEncode(new byte[256]);
        foreach (var token in new[] { unsigned, forged })
            foreach (var path in new[] { "/connect/userinfo", "/api/v1/me" })
            {
                using var response = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, path, token));
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{path} with {token[..20]}…: {(int)response.StatusCode}");
            }
        using var ok = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me", genuine));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode); // the same token, signed, is accepted: the refusals are about the signature
    }

    [Fact]
    public async Task A_revoked_refresh_token_no_longer_refreshes()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (browser, tokens) = await SignedInAsync(b);
        using var _ = browser;
        var refresh = tokens.GetProperty("refresh_token").GetString()!;
        using (var revoked = await browser.PostAsync("/connect/revoke", Flow.Form(("token", refresh), ("token_type_hint", "refresh_token"), ("client_id", b.ClientId))))
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        await Flow.RefreshAsync(browser, b.ClientId, refresh).OAuthErrorAsync("invalid_grant");
    }

    private async Task<(HttpClient Browser, JsonElement Tokens)> SignedInAsync(LoginBrand b)
    {
        var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        return (browser, await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync());
    }

    private async Task AssertRedirectedErrorAsync(LoginBrand b, string url, string error)
    {
        using var browser = app.Browser();
        using var response = await browser.GetAsync(url);
        var location = response.Headers.Location?.OriginalString ?? "";
        if (response.StatusCode == HttpStatusCode.Redirect && location.StartsWith(b.RedirectUri, StringComparison.Ordinal))
        {
            var query = QueryHelpers.ParseQuery(new Uri(location).Query);
            Assert.Equal(error, query["error"].ToString());
            Assert.False(query.ContainsKey("code"));
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(error, await response.Content.ReadAsStringAsync());
        }
    }
}

public sealed class ProtocolAttackTestsOnSqlite(LoginSqliteApp app) : ProtocolAttackTests(app), IClassFixture<LoginSqliteApp>;

public sealed class ProtocolAttackTestsOnPostgres(LoginPostgresApp app) : ProtocolAttackTests(app), IClassFixture<LoginPostgresApp>;
