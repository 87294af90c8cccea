using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Meridian.Tests.Login;

/// <summary>The whole customer login over real HTTP: discovery, code + PKCE, tokens, refresh, userinfo, self-service, logout.</summary>
public abstract class CodeFlowTests(LoginApp app)
{
    [Fact]
    public async Task Discovery_and_JWKS_describe_a_code_flow_provider_with_S256_PKCE_only_and_no_implicit_or_password_grant()
    {
        using var http = app.Browser();
        var discovery = await http.GetAsync("/.well-known/openid-configuration").JsonAsync();
        Assert.Equal(app.Address.ToString(), discovery.GetProperty("issuer").GetString());
        Assert.Equal(["S256"], discovery.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()));
        var grants = discovery.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(["authorization_code", "client_credentials", "refresh_token"], grants.Order());
        Assert.Equal(["code"], discovery.GetProperty("response_types_supported").EnumerateArray().Select(e => e.GetString()));
        foreach (var endpoint in new[] { "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "revocation_endpoint", "end_session_endpoint", "jwks_uri" })
            Assert.StartsWith(app.Address.ToString(), discovery.GetProperty(endpoint).GetString());

        var jwks = await http.GetAsync(discovery.GetProperty("jwks_uri").GetString()).JsonAsync();
        var keys = jwks.GetProperty("keys").EnumerateArray().ToList();
        Assert.NotEmpty(keys); // one, or more once another test has rotated them
        Assert.All(keys, key => Assert.Equal("RSA", key.GetProperty("kty").GetString()));
        Assert.All(keys, key => Assert.False(key.TryGetProperty("d", out _))); // the public half only
    }

    [Fact]
    public async Task A_customer_signs_in_with_an_SMS_code_refreshes_reads_userinfo_and_signs_out_which_revokes_the_grant()
    {
        var b = await LoginBrand.CreateAsync(app);
        var phone = LoginBrand.NewPhone();
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, phone, pkce);

        using var rp = app.Browser();
        var tokens = await Flow.RedeemAsync(rp, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        Assert.Equal("Bearer", tokens.GetProperty("token_type").GetString());
        var idToken = new JsonWebToken(tokens.GetProperty("id_token").GetString());
        Assert.Equal("RS256", idToken.Alg);
        Assert.Equal(b.ClientId, Assert.Single(idToken.Audiences));
        Assert.Equal("n-1", idToken.GetClaim("nonce").Value);
        var sub = idToken.Subject;

        // sub is the unified profile of that phone, as ID-Mapping holds it.
        var profile = await ProfileTestBrand.LookupAsync(b.Brand.Client, "phone", phone);
        Assert.Equal(profile.GetProperty("id").GetInt64().ToString(), sub);

        var userinfo = await rp.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", tokens.GetProperty("access_token").GetString()!)).JsonAsync();
        Assert.Equal(sub, userinfo.GetProperty("sub").GetString());
        Assert.Equal(phone, userinfo.GetProperty("phone_number").GetString());
        Assert.True(userinfo.GetProperty("phone_number_verified").GetBoolean());
        Assert.False(userinfo.TryGetProperty("email", out _)); // the customer has no email: none is released

        var refreshed = await Flow.RefreshAsync(rp, b.ClientId, tokens.GetProperty("refresh_token").GetString()!).JsonAsync();
        Assert.NotEqual(tokens.GetProperty("refresh_token").GetString(), refreshed.GetProperty("refresh_token").GetString());
        Assert.Equal(sub, new JsonWebToken(refreshed.GetProperty("id_token").GetString()).Subject);
        var access = refreshed.GetProperty("access_token").GetString()!;
        using (var ok = await rp.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", access))) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // RP-initiated logout, with the id_token as hint, back to the registered post-logout URI.
        var logoutUrl = $"/connect/endsession?id_token_hint={refreshed.GetProperty("id_token").GetString()}&post_logout_redirect_uri={Uri.EscapeDataString(b.PostLogoutUri)}&state=bye";
        using (var logout = await browser.GetAsync(logoutUrl))
        {
            Assert.Equal(HttpStatusCode.Redirect, logout.StatusCode);
            Assert.Equal(b.PostLogoutUri + "?state=bye", logout.Headers.Location!.OriginalString);
        }
        // The session is gone: a new authorization request goes back to the sign-in page...
        await Flow.ToSignInPageAsync(browser, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New()));
        // ...and the grant is revoked: neither the refresh token nor the access token works any more.
        await Flow.RefreshAsync(rp, b.ClientId, refreshed.GetProperty("refresh_token").GetString()!).OAuthErrorAsync("invalid_grant");
        using (var revoked = await rp.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", access))) Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
    }

    [Fact]
    public async Task A_customer_known_by_phone_from_store_purchases_gets_that_same_profile_id_on_first_login()
    {
        var b = await LoginBrand.CreateAsync(app);
        var phone = LoginBrand.NewPhone();
        // Store purchases arrive through the brand's POS source before the customer ever logs in.
        var created = await b.Brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "pos", channel = "pos" }).ReadAsync<JsonElement>();
        var pos = app.CreateClient();
        pos.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(created.GetProperty("writeKey").GetString() + ":")));
        await pos.PostAsJsonAsync("/v1/batch", new { batch = new object[] {
            new { type = "identify", userId = "pos-77", traits = new { phone, name = "王芳" } },
            new { type = "track", userId = "pos-77", @event = "Order Completed", properties = new { order_id = "r-1", total = 88 } },
        } }).ReadAsync<JsonElement>();
        var known = await ProfileTestBrand.LookupAsync(b.Brand.Client, "phone", phone);

        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, phone, pkce);
        var tokens = await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        var idToken = new JsonWebToken(tokens.GetProperty("id_token").GetString());
        Assert.Equal(known.GetProperty("id").GetInt64().ToString(), idToken.Subject);
        Assert.Equal("王芳", idToken.GetClaim("name").Value); // profile scope: the name the brand knows
    }

    [Fact]
    public async Task Email_sign_up_creates_the_profile_through_ID_Mapping_and_the_customer_signs_in_again_with_the_password()
    {
        var b = await LoginBrand.CreateAsync(app);
        var email = $"Li.{Guid.NewGuid():N}@Example.COM";
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignUpAsync(browser, b, email, "correct horse battery", pkce);
        var tokens = await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        var sub = new JsonWebToken(tokens.GetProperty("id_token").GetString()).Subject;
        var profile = await ProfileTestBrand.LookupAsync(b.Brand.Client, "email", email.ToLowerInvariant());
        Assert.Equal(profile.GetProperty("id").GetInt64().ToString(), sub);

        var userinfo = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", tokens.GetProperty("access_token").GetString()!)).JsonAsync();
        Assert.Equal(email.ToLowerInvariant(), userinfo.GetProperty("email").GetString());
        Assert.False(userinfo.TryGetProperty("phone_number", out _));

        using var other = app.Browser();
        var again = Pkce.New();
        var returnUrl = await Flow.ToSignInPageAsync(other, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, again));
        using var signedIn = await other.PostAsync("/login/password", Flow.Form(("returnUrl", returnUrl), ("email", email), ("password", "correct horse battery")));
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var code2 = await Flow.FollowToCodeAsync(other, signedIn.Headers.Location!.OriginalString, b.RedirectUri);
        var tokens2 = await Flow.RedeemAsync(other, b.ClientId, code2, b.RedirectUri, again.Verifier).JsonAsync();
        Assert.Equal(sub, new JsonWebToken(tokens2.GetProperty("id_token").GetString()).Subject);
    }

    [Fact]
    public async Task Scopes_release_only_what_they_cover_the_openid_scope_alone_gives_the_subject_and_brand()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce, scope: "openid");
        var tokens = await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        Assert.False(tokens.TryGetProperty("refresh_token", out _)); // no offline_access, no refresh token
        var userinfo = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", tokens.GetProperty("access_token").GetString()!)).JsonAsync();
        Assert.Equal(["brand", "sub"], userinfo.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(b.Brand.Slug, userinfo.GetProperty("brand").GetString());
    }

    [Fact]
    public async Task The_self_service_API_shows_my_profile_changes_my_consents_and_takes_an_export_request()
    {
        var b = await LoginBrand.CreateAsync(app);
        var phone = LoginBrand.NewPhone();
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, phone, pkce);
        var access = (await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync()).GetProperty("access_token").GetString()!;

        var me = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me", access)).JsonAsync();
        Assert.Equal(phone, me.GetProperty("phone").GetString());
        var profileId = me.GetProperty("profileId").GetInt64();

        var change = Flow.WithBearer(HttpMethod.Put, "/api/v1/me/consents", access);
        change.Content = JsonContent.Create(new { channel = "sms", purpose = "marketing", granted = true });
        await browser.SendAsync(change).JsonAsync();
        var consents = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/consents", access)).JsonAsync();
        var consent = Assert.Single(consents.EnumerateArray());
        Assert.True(consent.GetProperty("granted").GetBoolean());
        // Staff see the same consent on the profile.
        var staffView = await b.Brand.Client.GetAsync($"/api/v1/profiles/{profileId}/consents").ReadAsync<JsonElement>();
        Assert.Equal("sms", Assert.Single(staffView.EnumerateArray()).GetProperty("channel").GetString());

        using (var export = await browser.SendAsync(Flow.WithBearer(HttpMethod.Post, "/api/v1/me/export-requests", access)))
            Assert.Equal(HttpStatusCode.Accepted, export.StatusCode);
        var requests = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/export-requests", access)).JsonAsync();
        Assert.Equal(profileId, Assert.Single(requests.EnumerateArray()).GetProperty("profileId").GetInt64());

        // A staff API key is not a customer's token.
        using var staff = await b.Brand.Client.GetAsync("/api/v1/me");
        Assert.True(staff.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, $"{(int)staff.StatusCode}");
    }

    [Fact]
    public async Task A_confidential_back_end_gets_a_token_with_client_credentials_and_a_wrong_secret_gets_none()
    {
        var b = await LoginBrand.CreateAsync(app);
        var created = await b.NewClientAsync(new { name = "order service", channel = "server", type = "confidential", clientCredentials = true });
        var clientId = created.GetProperty("client").GetProperty("clientId").GetString()!;
        var secret = created.GetProperty("clientSecret").GetString()!;
        using var http = app.Browser();
        var token = await http.PostAsync("/connect/token", Flow.Form(("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret), ("scope", "meridian_api"))).JsonAsync();
        Assert.Equal(clientId, new JsonWebToken(token.GetProperty("access_token").GetString()).Subject);
        await http.PostAsync("/connect/token", Flow.Form(("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret + "x")))
            .OAuthErrorAsync("invalid_client");
        // A public client cannot use client credentials.
        await http.PostAsync("/connect/token", Flow.Form(("grant_type", "client_credentials"), ("client_id", b.ClientId))).OAuthErrorAsync("invalid_request");
    }

    [Fact]
    public async Task Rotating_the_keys_signs_new_tokens_with_the_new_key_and_keeps_the_old_one_published()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        var tokens = await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        var oldKid = new JsonWebToken(tokens.GetProperty("access_token").GetString()).Kid;

        var rotated = await app.Admin.PostAsync("/api/v1/login/keys/rotate", null).ReadAsync<JsonElement>();
        var newKid = rotated.EnumerateArray().First(k => k.GetProperty("use").GetString() == "sig" && k.GetProperty("retiredAt").ValueKind == JsonValueKind.Null).GetProperty("keyId").GetString();
        Assert.NotEqual(oldKid, newKid);

        var refreshed = await Flow.RefreshAsync(browser, b.ClientId, tokens.GetProperty("refresh_token").GetString()!).JsonAsync(); // encrypted with the old key: still readable
        Assert.Equal(newKid, new JsonWebToken(refreshed.GetProperty("access_token").GetString()).Kid);
        var jwks = await browser.GetAsync("/.well-known/jwks").JsonAsync();
        var kids = jwks.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
        Assert.Contains(oldKid, kids);
        Assert.Contains(newKid, kids);
        // An access token signed before the rotation still works until it expires.
        using var old = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/connect/userinfo", tokens.GetProperty("access_token").GetString()!));
        Assert.Equal(HttpStatusCode.OK, old.StatusCode);
    }

    [Fact]
    public async Task The_sign_in_page_carries_the_brand_name_and_colours_and_fits_a_phone_screen()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var returnUrl = await Flow.ToSignInPageAsync(browser, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New()));
        var html = await browser.GetStringAsync("/login/sign-in?returnUrl=" + Uri.EscapeDataString(returnUrl));
        Assert.Contains("<h1>Tea House</h1>", html);
        Assert.Contains("#aa3300", html);
        Assert.Contains("name=viewport content=\"width=device-width,initial-scale=1\"", html);
        Assert.Contains("type=tel", html);
        // A page that does not come from an authorization request of a registered client is not served.
        using var stray = await browser.GetAsync("/login/sign-in?returnUrl=" + Uri.EscapeDataString("https://evil.example/"));
        Assert.Equal(HttpStatusCode.BadRequest, stray.StatusCode);
    }
}

public sealed class CodeFlowTestsOnSqlite(LoginSqliteApp app) : CodeFlowTests(app), IClassFixture<LoginSqliteApp>;

public sealed class CodeFlowTestsOnPostgres(LoginPostgresApp app) : CodeFlowTests(app), IClassFixture<LoginPostgresApp>;
