using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Login;

/// <summary>
/// A Meridian host listening on a real port (Kestrel, so every OIDC request goes over HTTP), an SMS gateway that
/// records what it is asked to send, and a clock the tests move. Forwarded-For is trusted so a test can speak from many addresses.
/// </summary>
public abstract class LoginApp : MeridianAppFixture
{
    public WebhookReceiver Sms { get; } = new();
    public ShiftedClock Clock { get; } = new();
    public int Port { get; } = PostgresServer.FreePort();
    public Uri Address => new($"http://127.0.0.1:{Port}");

    protected LoginApp() => UseKestrel(Port);

    protected override IEnumerable<KeyValuePair<string, string>> Settings =>
    [
        new("Meridian:Login:RequireHttps", "false"),
        new("Meridian:Login:TrustForwardedFor", "true"),
        new("Meridian:Login:PasswordIterations", "10000"),
        new("Meridian:Login:Sms:GatewayUrl", Sms.Url),
        new("Meridian:Login:Sms:ResendAfter", "00:00:00"),
    ];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(Clock));
    }

    /// <summary>A browser: its own cookies, redirects not followed so the test sees each step.</summary>
    public HttpClient Browser() => new(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer(), UseCookies = true }) { BaseAddress = Address };

    public override async ValueTask DisposeAsync()
    {
        Sms.Dispose();
        await base.DisposeAsync();
    }
}

/// <summary>
/// The real clock moved forward by what the test says. Unlike a fake clock, timers keep real time: advancing a fake
/// clock by weeks would fire the host's 100 ms timers millions of times.
/// </summary>
public sealed class ShiftedClock : TimeProvider
{
    private long offsetTicks;
    public override DateTimeOffset GetUtcNow() => base.GetUtcNow().AddTicks(Interlocked.Read(ref offsetTicks));
    public void Advance(TimeSpan by) => Interlocked.Add(ref offsetTicks, by.Ticks);
}

public sealed class LoginSqliteApp : LoginApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
    protected override Task<string> CreateDatabaseAsync() => Task.FromResult($"Data Source={Path.Combine(Path.GetTempPath(), $"meridian-login-{Guid.NewGuid():N}.db")}");
}

public sealed class LoginPostgresApp : LoginApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}

/// <summary>A brand with its sign-in set up and a public client (an app) registered through the admin API.</summary>
public sealed record LoginBrand(LoginApp App, TestBrand Brand, string ClientId, string RedirectUri, string PostLogoutUri)
{
    public static async Task<LoginBrand> CreateAsync(LoginApp app)
    {
        var brand = await app.NewBrandAsync();
        await brand.Client.PutAsJsonAsync("/api/v1/login/brand", new { displayName = "Tea House", primaryColour = "#aa3300" }).ReadAsync<JsonElement>();
        const string redirect = "https://app.example.com/callback";
        const string postLogout = "https://app.example.com/signed-out";
        var created = await brand.Client.PostAsJsonAsync("/api/v1/login/clients", new
        {
            name = "Tea House app", channel = "app", type = "public", redirectUris = new[] { redirect }, postLogoutRedirectUris = new[] { postLogout },
        }).ReadAsync<JsonElement>();
        return new LoginBrand(app, brand, created.GetProperty("client").GetProperty("clientId").GetString()!, redirect, postLogout);
    }

    /// <summary>Registers another client of this brand (e.g. a confidential web back end).</summary>
    public async Task<JsonElement> NewClientAsync(object request) =>
        await Brand.Client.PostAsJsonAsync("/api/v1/login/clients", request).ReadAsync<JsonElement>();

    public static string NewPhone() => "+86139" + RandomNumberGenerator.GetInt32(0, 100_000_000).ToString("D8");
}

/// <summary>PKCE: a verifier and its S256 challenge.</summary>
public sealed record Pkce(string Verifier, string Challenge)
{
    public static Pkce New()
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        return new Pkce(verifier, Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>Drives the customer's side of the flow the way a browser would, one HTTP request at a time.</summary>
public static class Flow
{
    public static string AuthorizeUrl(string clientId, string redirectUri, Pkce? pkce, string scope = "openid profile email phone offline_access meridian_api",
        string method = "S256", string responseType = "code", string state = "st-1", string? prompt = null)
    {
        var query = new Dictionary<string, string?>
        {
            ["client_id"] = clientId, ["redirect_uri"] = redirectUri, ["response_type"] = responseType, ["scope"] = scope, ["state"] = state, ["nonce"] = "n-1",
        };
        if (pkce is not null)
        {
            query["code_challenge"] = method == "plain" ? pkce.Verifier : pkce.Challenge;
            query["code_challenge_method"] = method;
        }
        if (prompt is not null) query["prompt"] = prompt;
        return QueryHelpers.AddQueryString("/connect/authorize", query);
    }

    /// <summary>Authorize, be sent to the sign-in page, sign in with an SMS code, come back: the code sent to the redirect URI.</summary>
    public static async Task<string> SignInWithSmsAsync(LoginApp app, HttpClient browser, LoginBrand b, string phone, Pkce pkce, string? scope = null)
    {
        var returnUrl = await ToSignInPageAsync(browser, scope is null ? AuthorizeUrl(b.ClientId, b.RedirectUri, pkce) : AuthorizeUrl(b.ClientId, b.RedirectUri, pkce, scope));
        var before = app.Sms.Calls.Count;
        using (var sent = await browser.PostAsync("/login/sms/send", Form(("returnUrl", returnUrl), ("phone", phone))))
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        var code = await SmsCodeAsync(app, phone, before);
        using var verified = await browser.PostAsync("/login/sms/verify", Form(("returnUrl", returnUrl), ("phone", phone), ("code", code)));
        Assert.True(verified.StatusCode == HttpStatusCode.Redirect, $"{(int)verified.StatusCode}: {await verified.Content.ReadAsStringAsync()}");
        return await FollowToCodeAsync(browser, verified.Headers.Location!.OriginalString, b.RedirectUri);
    }

    /// <summary>Sign up with email and password; the code sent to the redirect URI.</summary>
    /// <summary>A customer signed in by SMS through the brand's app client: their access token and profile id.</summary>
    public static async Task<(string Access, long ProfileId)> SignedInCustomerAsync(LoginApp app, LoginBrand b, string? phone = null)
    {
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await SignInWithSmsAsync(app, browser, b, phone ?? LoginBrand.NewPhone(), pkce);
        var access = (await RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync()).GetProperty("access_token").GetString()!;
        var me = await browser.SendAsync(WithBearer(HttpMethod.Get, "/api/v1/me", access)).JsonAsync();
        return (access, me.GetProperty("profileId").GetInt64());
    }

    public static async Task<string> SignUpAsync(HttpClient browser, LoginBrand b, string email, string password, Pkce pkce)
    {
        var returnUrl = await ToSignInPageAsync(browser, AuthorizeUrl(b.ClientId, b.RedirectUri, pkce));
        using var signedUp = await browser.PostAsync("/login/sign-up", Form(("returnUrl", returnUrl), ("email", email), ("password", password)));
        Assert.True(signedUp.StatusCode == HttpStatusCode.Redirect, $"{(int)signedUp.StatusCode}: {await signedUp.Content.ReadAsStringAsync()}");
        return await FollowToCodeAsync(browser, signedUp.Headers.Location!.OriginalString, b.RedirectUri);
    }

    /// <summary>The sign-in page's return URL for an authorization request from a browser with no session.</summary>
    public static async Task<string> ToSignInPageAsync(HttpClient browser, string authorizeUrl)
    {
        using var response = await browser.GetAsync(authorizeUrl);
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        var location = response.Headers.Location!.OriginalString;
        Assert.StartsWith("/login/sign-in?returnUrl=", location);
        return QueryHelpers.ParseQuery(new Uri(new Uri("http://x"), location).Query)["returnUrl"].ToString();
    }

    public static async Task<string> FollowToCodeAsync(HttpClient browser, string authorizeUrl, string redirectUri)
    {
        using var response = await browser.GetAsync(authorizeUrl);
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        var location = response.Headers.Location!;
        Assert.StartsWith(redirectUri + "?", location.OriginalString);
        var query = QueryHelpers.ParseQuery(location.Query);
        Assert.Equal("st-1", query["state"].ToString());
        return query["code"].ToString();
    }

    public static async Task<string> SmsCodeAsync(LoginApp app, string phone, int after)
    {
        static bool To(WebhookReceiver.Call c, string phone) => JsonDocument.Parse(c.Body).RootElement.GetProperty("to").GetString() == phone;
        await app.Sms.WaitForAsync(calls => calls.Skip(after).Any(c => To(c, phone)), TimeSpan.FromSeconds(10));
        var body = app.Sms.Calls.Skip(after).Last(c => To(c, phone)).Body;
        return Regex.Match(JsonDocument.Parse(body).RootElement.GetProperty("text").GetString()!, @"\b\d{6}\b").Value;
    }

    public static FormUrlEncodedContent Form(params (string Key, string Value)[] fields) =>
        new(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));

    public static Task<HttpResponseMessage> RedeemAsync(HttpClient http, string clientId, string code, string redirectUri, string? verifier) =>
        http.PostAsync("/connect/token", Form([("grant_type", "authorization_code"), ("client_id", clientId), ("code", code), ("redirect_uri", redirectUri),
            .. verifier is null ? Array.Empty<(string, string)>() : [("code_verifier", verifier)]]));

    public static Task<HttpResponseMessage> RefreshAsync(HttpClient http, string clientId, string refreshToken) =>
        http.PostAsync("/connect/token", Form(("grant_type", "refresh_token"), ("client_id", clientId), ("refresh_token", refreshToken)));

    public static async Task<JsonElement> JsonAsync(this Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>An OAuth error response: its status and <c>error</c> code.</summary>
    public static async Task<JsonElement> OAuthErrorAsync(this Task<HttpResponseMessage> call, string error)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode is 400 or 401 or 403, $"expected an error, got {(int)response.StatusCode}: {body}");
        var json = JsonDocument.Parse(body).RootElement.Clone();
        Assert.True(error == json.GetProperty("error").GetString(), body);
        return json;
    }

    public static HttpRequestMessage WithBearer(HttpMethod method, string path, string token)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new("Bearer", token);
        return request;
    }
}
