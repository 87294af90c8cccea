using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Playwright;

namespace Meridian.Tests.Login;

/// <summary>
/// The hosted sign-in in a real browser (Debian's Chromium driven by Playwright) on a phone-sized screen: an app's
/// authorization request, the brand's page, an SMS code typed in, and the code back at the app's redirect URI.
/// </summary>
public abstract class BrowserSignInTests(LoginApp app)
{
    public const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task A_customer_signs_in_with_an_sms_code_on_a_phone_sized_screen_and_the_app_gets_its_code()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: ./test.sh installs Debian's chromium package.");
        var b = await LoginBrand.CreateAsync(app);
        var pkce = Pkce.New();
        var phone = LoginBrand.NewPhone();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 390, Height = 844 }, IsMobile = true, HasTouch = true });
        var page = await context.NewPageAsync();
        // The app's redirect URI is not on this network: the browser hands the redirect to the test instead.
        var redirected = new TaskCompletionSource<string>();
        await page.RouteAsync(b.RedirectUri + "**", async route =>
        {
            redirected.TrySetResult(route.Request.Url);
            await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/html", Body = "<p>app</p>" });
        });

        await page.GotoAsync(new Uri(app.Address, Flow.AuthorizeUrl(b.ClientId, b.RedirectUri, pkce)).ToString());
        Assert.Equal("Tea House", await page.Locator("h1").InnerTextAsync());
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), "the sign-in page scrolls sideways on a phone");
        var before = app.Sms.Calls.Count;
        await page.FillAsync("input[name=phone]", phone);
        await page.ClickAsync("text=Send me a code");
        var code = await Flow.SmsCodeAsync(app, phone, before);
        await page.FillAsync("input[name=code]", code);
        await page.ClickAsync("button:has-text('Sign in')");

        var landed = await redirected.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var query = QueryHelpers.ParseQuery(new Uri(landed).Query);
        using var http = app.Browser();
        var tokens = await Flow.RedeemAsync(http, b.ClientId, query["code"].ToString(), b.RedirectUri, pkce.Verifier).JsonAsync();
        Assert.False(string.IsNullOrEmpty(tokens.GetProperty("access_token").GetString()));
    }
}

public sealed class BrowserSignInTestsOnSqlite(LoginSqliteApp app) : BrowserSignInTests(app), IClassFixture<LoginSqliteApp>;

public sealed class BrowserSignInTestsOnPostgres(LoginPostgresApp app) : BrowserSignInTests(app), IClassFixture<LoginPostgresApp>;
