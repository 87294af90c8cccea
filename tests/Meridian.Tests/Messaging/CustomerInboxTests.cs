using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Login;

namespace Meridian.Tests.Messaging;

/// <summary>The in-app inbox as the signed-in customer reads it, with the access token their app got.</summary>
public abstract class CustomerInboxTests(LoginApp app)
{
    [Fact]
    public async Task A_customer_reads_their_inbox_with_their_access_token_and_marks_a_message_read()
    {
        var b = await LoginBrand.CreateAsync(app);
        using var browser = app.Browser();
        var pkce = Pkce.New();
        var code = await Flow.SignInWithSmsAsync(app, browser, b, LoginBrand.NewPhone(), pkce);
        var access = (await Flow.RedeemAsync(browser, b.ClientId, code, b.RedirectUri, pkce.Verifier).JsonAsync()).GetProperty("access_token").GetString()!;
        var profileId = (await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me", access)).JsonAsync()).GetProperty("profileId").GetInt64();

        var staff = b.Brand.Client;
        var template = (await staff.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "Hello", channel = "inbox", subject = "Hello", body = "Your parcel is on its way." })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var send = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messaging/messages") { Content = JsonContent.Create(new { profileId, channel = "inbox", templateId = template, purpose = "service" }) };
        send.Headers.Add("Idempotency-Key", "parcel-1");
        var id = (await staff.SendAsync(send).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

        JsonElement inbox;
        for (var attempt = 0; ; attempt++)
        {
            inbox = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/inbox", access)).JsonAsync();
            if (inbox.GetArrayLength() > 0) break;
            Assert.True(attempt < 200, "the inbox message was not delivered");
            await Task.Delay(50);
        }
        var item = Assert.Single(inbox.EnumerateArray());
        Assert.Equal((id, "Your parcel is on its way."), (item.GetProperty("id").GetInt64(), item.GetProperty("body").GetString()));
        Assert.Equal(JsonValueKind.Null, item.GetProperty("readAt").ValueKind);

        var read = await browser.SendAsync(Flow.WithBearer(HttpMethod.Post, $"/api/v1/me/inbox/{id}/read", access)).JsonAsync();
        Assert.NotEqual(JsonValueKind.Null, read.GetProperty("readAt").ValueKind);
        var after = await browser.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/inbox", access)).JsonAsync();
        Assert.NotEqual(JsonValueKind.Null, after[0].GetProperty("readAt").ValueKind);

        // Another customer of the brand cannot read or mark it.
        using var stranger = app.Browser();
        var pkce2 = Pkce.New();
        var code2 = await Flow.SignInWithSmsAsync(app, stranger, b, LoginBrand.NewPhone(), pkce2);
        var access2 = (await Flow.RedeemAsync(stranger, b.ClientId, code2, b.RedirectUri, pkce2.Verifier).JsonAsync()).GetProperty("access_token").GetString()!;
        Assert.Equal(0, (await stranger.SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/inbox", access2)).JsonAsync()).GetArrayLength());
        await stranger.SendAsync(Flow.WithBearer(HttpMethod.Post, $"/api/v1/me/inbox/{id}/read", access2)).ProblemAsync(404, ProblemTypes.NotFound);
        // A staff key is not a customer's token.
        await staff.GetAsync("/api/v1/me/inbox").ProblemAsync(401, ProblemTypes.Unauthorized);
    }
}

public sealed class CustomerInboxTestsOnSqlite(LoginSqliteApp app) : CustomerInboxTests(app), IClassFixture<LoginSqliteApp>;

public sealed class CustomerInboxTestsOnPostgres(LoginPostgresApp app) : CustomerInboxTests(app), IClassFixture<LoginPostgresApp>;
