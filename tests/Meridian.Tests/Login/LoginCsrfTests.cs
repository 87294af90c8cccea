using System.Net;

namespace Meridian.Tests.Login;

/// <summary>Login CSRF: the hosted sign-in forms refuse posts a page on another site made the visitor's browser send.</summary>
public abstract class LoginCsrfTests(LoginApp app)
{
    private async Task<(HttpClient Browser, string ReturnUrl, int SmsBefore)> AtSignInPageAsync(LoginBrand b)
    {
        var browser = app.Browser();
        var returnUrl = await Flow.ToSignInPageAsync(browser, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, Pkce.New()));
        return (browser, returnUrl, app.Sms.Calls.Count);
    }

    private static HttpRequestMessage Post(string path, string returnUrl, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Flow.Form(("returnUrl", returnUrl), ("phone", LoginBrand.NewPhone())) };
        foreach (var (name, value) in headers) request.Headers.Add(name, value);
        return request;
    }

    [Theory]
    [InlineData("Sec-Fetch-Site", "cross-site")]
    [InlineData("Sec-Fetch-Site", "same-site")]
    [InlineData("Origin", "https://evil.example")]
    public async Task A_form_posted_from_another_site_is_refused_and_sends_no_sms(string header, string value)
    {
        var b = await LoginBrand.CreateAsync(app);
        var (browser, returnUrl, before) = await AtSignInPageAsync(b);
        using (browser)
        {
            using var refused = await browser.SendAsync(Post("/login/sms/send", returnUrl, (header, value)));
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Contains("sign-in page itself", await refused.Content.ReadAsStringAsync());
            await Task.Delay(200);
            Assert.Equal(before, app.Sms.Calls.Count);
        }
    }

    [Fact]
    public async Task The_sign_in_pages_own_posts_pass_same_origin_with_a_null_origin_or_from_the_same_host()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (browser, returnUrl, _) = await AtSignInPageAsync(b);
        using (browser)
        {
            foreach (var headers in new[] { [("Sec-Fetch-Site", "same-origin"), ("Origin", "null")], new[] { ("Origin", app.Address.GetLeftPart(UriPartial.Authority)) } })
            {
                using var sent = await browser.SendAsync(Post("/login/sms/send", returnUrl, headers));
                Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
            }
        }
    }
}

public sealed class LoginCsrfTestsOnSqlite(LoginSqliteApp app) : LoginCsrfTests(app), IClassFixture<LoginSqliteApp>;

public sealed class LoginCsrfTestsOnPostgres(LoginPostgresApp app) : LoginCsrfTests(app), IClassFixture<LoginPostgresApp>;
