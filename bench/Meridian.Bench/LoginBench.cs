using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;

namespace Meridian.Bench;

/// <summary>
/// The OpenID Connect provider under load, over real HTTP. Set-up: a brand's sign-in and a public client through the
/// admin API, one customer signed up with email and password, and one grant per worker (code + PKCE, redeemed).
/// Then each worker (1) refreshes its grant again and again, each time with the refresh token the previous call
/// returned (rotation: every call writes the redeemed token and a new one), and (2) calls userinfo with its access token.
/// </summary>
internal static class LoginBench
{
    public sealed record Result(LoadResult Refresh, LoadResult UserInfo);

    private const string Redirect = "https://bench.example.com/callback";

    public static async Task<Result> RunAsync(ServerProcess server, BenchOptions options, CancellationToken ct)
    {
        var brand = "login-bench";
        using var admin = server.AdminClient(brand);
        admin.DefaultRequestHeaders.Remove("Meridian-Brand");
        await Ok(admin.PostAsJsonAsync("/api/v1/brands", new { slug = brand, name = "Login bench" }, ct));
        admin.DefaultRequestHeaders.Add("Meridian-Brand", brand);
        await Ok(admin.PutAsJsonAsync("/api/v1/login/brand", new { displayName = "Login bench" }, ct));
        var client = await Ok(admin.PostAsJsonAsync("/api/v1/login/clients", new { name = "bench app", channel = "app", type = "public", redirectUris = new[] { Redirect } }, ct));
        var clientId = client.GetProperty("client").GetProperty("clientId").GetString()!;

        using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = server.BaseAddress };
        var grants = new (string Refresh, string Access)[options.Concurrency];
        for (var i = 0; i < grants.Length; i++) grants[i] = await GrantAsync(browser, clientId, signUp: i == 0, ct);

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency, UseCookies = false }) { BaseAddress = server.BaseAddress };
        var refresh = await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, async worker =>
        {
            using var response = await http.PostAsync("/connect/token", Form(("grant_type", "refresh_token"), ("client_id", clientId), ("refresh_token", grants[worker].Refresh)), ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (response.StatusCode != HttpStatusCode.OK) return false;
            using var json = JsonDocument.Parse(body);
            grants[worker] = (json.RootElement.GetProperty("refresh_token").GetString()!, json.RootElement.GetProperty("access_token").GetString()!);
            return true;
        }, ct);

        var userinfo = await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, async worker =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
            request.Headers.Authorization = new("Bearer", grants[worker].Access);
            using var response = await http.SendAsync(request, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.StatusCode == HttpStatusCode.OK;
        }, ct);
        return new Result(refresh, userinfo);
    }

    /// <summary>One authorization (code + PKCE S256), the customer signing up the first time and then riding the session.</summary>
    private static async Task<(string Refresh, string Access)> GrantAsync(HttpClient browser, string clientId, bool signUp, CancellationToken ct)
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var authorize = QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = clientId, ["redirect_uri"] = Redirect, ["response_type"] = "code", ["scope"] = "openid profile email offline_access",
            ["state"] = "s", ["code_challenge"] = challenge, ["code_challenge_method"] = "S256",
        });
        var location = await LocationAsync(browser.GetAsync(authorize, ct));
        if (signUp)
        {
            var returnUrl = QueryHelpers.ParseQuery(new Uri(server(browser), location).Query)["returnUrl"].ToString();
            location = await LocationAsync(browser.PostAsync("/login/sign-up", Form(("returnUrl", returnUrl), ("email", "bench@example.com"), ("password", "bench passphrase 1")), ct));
            location = await LocationAsync(browser.GetAsync(location, ct));
        }
        var code = QueryHelpers.ParseQuery(new Uri(location).Query)["code"].ToString();
        using var response = await browser.PostAsync("/connect/token",
            Form(("grant_type", "authorization_code"), ("client_id", clientId), ("code", code), ("redirect_uri", Redirect), ("code_verifier", verifier)), ct);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement;
        if (response.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"code redemption answered {(int)response.StatusCode}: {json}");
        return (json.GetProperty("refresh_token").GetString()!, json.GetProperty("access_token").GetString()!);

        static Uri server(HttpClient http) => http.BaseAddress!;
    }

    private static async Task<string> LocationAsync(Task<HttpResponseMessage> call)
    {
        using var response = await call;
        if (response.StatusCode != HttpStatusCode.Redirect)
            throw new InvalidOperationException($"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return response.Headers.Location!.OriginalString;
    }

    private static async Task<JsonElement> Ok(Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static FormUrlEncodedContent Form(params (string Key, string Value)[] fields) => new(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
