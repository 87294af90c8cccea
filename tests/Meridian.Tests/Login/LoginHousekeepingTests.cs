using Meridian.Data;
using Meridian.Login.Data;
using Meridian.Login.Housekeeping;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.EntityFrameworkCore.Models;

namespace Meridian.Tests.Login;

/// <summary>Expired SMS codes and spent tokens are removed once they can no longer matter, and nothing that still can.</summary>
public abstract class LoginHousekeepingTests(LoginApp app)
{
    private async Task<(int Codes, int UsedCodes, int RefreshTokens)> CountAsync()
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var tokens = db.Set<OpenIddictEntityFrameworkCoreToken>();
        return (await db.Set<SmsChallenge>().CountAsync(),
            await tokens.CountAsync(t => t.Type == "urn:openiddict:params:oauth:token-type:authorization_code"),
            await tokens.CountAsync(t => t.Type == "urn:ietf:params:oauth:token-type:refresh_token" && t.Status == "valid"));
    }

    private async Task SignInAsync(LoginBrand b)
    {
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync();
    }

    [Fact]
    public async Task Expired_codes_go_after_a_day_and_used_authorization_codes_after_the_refresh_lifetime_while_a_refresh_token_still_valid_stays()
    {
        var b = await LoginBrand.CreateAsync(app);
        await SignInAsync(b);
        var housekeeping = app.Services.GetRequiredService<LoginHousekeeping>();
        Assert.Equal((1, 1, 1), await CountAsync());

        try
        {
            app.Clock.Advance(TimeSpan.FromDays(2));
            await SignInAsync(b); // a second customer, today: their code is not yet expired
            var first = await housekeeping.RunOnceAsync(default);
            Assert.Equal(1, first.Codes);
            Assert.Equal((1, 2, 2), await CountAsync());

            app.Clock.Advance(TimeSpan.FromDays(29.5));
            await housekeeping.RunOnceAsync(default);
            // The first sign-in's used code is older than the refresh lifetime now; the second's is not, nor is its refresh token
            // (the first's has expired by the test's clock; OpenIddict judges expiry by its own).
            var (_, usedCodes, refresh) = await CountAsync();
            Assert.Equal(1, usedCodes);
            Assert.InRange(refresh, 1, 2);
        }
        finally
        {
            app.Clock.Advance(-TimeSpan.FromDays(31.5));
        }
    }
}

public sealed class LoginHousekeepingTestsOnSqlite(LoginSqliteApp app) : LoginHousekeepingTests(app), IClassFixture<LoginSqliteApp>;

public sealed class LoginHousekeepingTestsOnPostgres(LoginPostgresApp app) : LoginHousekeepingTests(app), IClassFixture<LoginPostgresApp>;
