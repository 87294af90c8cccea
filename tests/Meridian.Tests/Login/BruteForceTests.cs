using System.Net;
using System.Net.Http.Json;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Meridian.Tests.Login;

/// <summary>Password guessing against one account: nothing gets in, every answer reads the same, and the customer still has a way in.</summary>
public abstract class BruteForceTests(LoginApp app)
{
    [Fact]
    public async Task A_thousand_wrong_passwords_from_many_addresses_get_in_zero_times_with_identical_answers_and_the_customer_still_signs_in_by_SMS()
    {
        var b = await LoginBrand.CreateAsync(app);
        var phone = LoginBrand.NewPhone();
        var email = $"victim.{Guid.NewGuid():N}@example.com";
        const string password = "a real passphrase 42";

        // The customer: signed in once by SMS, then gave the account an email and a password.
        using var customer = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, customer, b, phone, pkce);
        var tokens = await Flow.RedeemAsync(customer, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
        var sub = new JsonWebToken(tokens.GetProperty("id_token").GetString()).Subject;
        var set = Flow.WithBearer(HttpMethod.Put, "/api/v1/me/credentials", tokens.GetProperty("access_token").GetString()!);
        set.Content = JsonContent.Create(new { email, password });
        using (var done = await customer.SendAsync(set)) Assert.Equal(HttpStatusCode.NoContent, done.StatusCode);

        using var attacker = app.Browser();
        var returnUrl = await Flow.ToSignInPageAsync(attacker, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New()));
        async Task<(HttpStatusCode Status, string Body)> TryAsync(string who, string secret, string address)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/login/password") { Content = Flow.Form(("returnUrl", returnUrl), ("email", who), ("password", secret)) };
            request.Headers.Add("X-Forwarded-For", address);
            using var response = await attacker.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        // Unknown account and wrong password read the same.
        var unknown = await TryAsync($"nobody.{Guid.NewGuid():N}@example.com", "wrong password 1", "198.51.100.1");
        var wrong = await TryAsync(email, "wrong password 1", "198.51.100.2");
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.Status);
        Assert.Equal(unknown, wrong);

        var answers = new List<(HttpStatusCode Status, string Body)>();
        for (var i = 0; i < 1000; i++)
            answers.Add(await TryAsync(email, $"guess-{i:D4}-password", $"203.0.{i % 250 / 250 + (i / 250)}.{i % 250 + 1}"));
        Assert.Equal(0, answers.Count(a => a.Status != HttpStatusCode.Unauthorized));
        Assert.All(answers, a => Assert.Equal(wrong, a));

        // The account is now delayed: even the right password gets the same refusal (from a fresh address)...
        Assert.Equal(wrong, await TryAsync(email, password, "192.0.2.77"));

        // ...but the customer's phone still gets them in, as the same customer.
        using var phoneBrowser = app.Browser();
        var pkce2 = Pkce.New();
        var code2 = await Flow.SignInWithSmsAsync(app, phoneBrowser, b, phone, pkce2);
        var tokens2 = await Flow.RedeemAsync(phoneBrowser, b.ClientId, code2, b.RedirectUri, pkce2.Verifier).JsonAsync();
        Assert.Equal(sub, new JsonWebToken(tokens2.GetProperty("id_token").GetString()).Subject);
        // Proving the phone lifted the delay: the password works again.
        var after = await TryAsync(email, password, "192.0.2.78");
        Assert.Equal(HttpStatusCode.Redirect, after.Status);
    }

    [Fact]
    public async Task Failures_from_one_address_delay_that_address_for_every_account_and_the_delay_grows()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var attacker = app.Browser();
        var returnUrl = await Flow.ToSignInPageAsync(attacker, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New()));
        var address = $"10.9.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}";
        async Task<HttpStatusCode> TryAsync(string who, string secret)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/login/password") { Content = Flow.Form(("returnUrl", returnUrl), ("email", who), ("password", secret)) };
            request.Headers.Add("X-Forwarded-For", address);
            using var response = await attacker.SendAsync(request);
            return response.StatusCode;
        }
        // Spraying one password over many accounts from one address: the address is delayed after its free failures.
        for (var i = 0; i < 25; i++) Assert.Equal(HttpStatusCode.Unauthorized, await TryAsync($"user{i}.{Guid.NewGuid():N}@example.com", "Summer2026!"));

        // A real customer signing up elsewhere then signing in from that address is delayed too; once the delay passes, in.
        using var customer = app.Browser();
        var email = $"c.{Guid.NewGuid():N}@example.com";
        await Flow.SignUpAsync(customer, b, email, "a fine passphrase", Pkce.New());
        Assert.Equal(HttpStatusCode.Unauthorized, await TryAsync(email, "a fine passphrase"));
        app.Clock.Advance(TimeSpan.FromMinutes(16)); // past the longest delay
        Assert.Equal(HttpStatusCode.Redirect, await TryAsync(email, "a fine passphrase"));
    }
}

public sealed class BruteForceTestsOnSqlite(LoginSqliteApp app) : BruteForceTests(app), IClassFixture<LoginSqliteApp>;

public sealed class BruteForceTestsOnPostgres(LoginPostgresApp app) : BruteForceTests(app), IClassFixture<LoginPostgresApp>;
