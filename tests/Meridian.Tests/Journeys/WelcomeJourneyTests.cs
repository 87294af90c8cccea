using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Messaging;
using Meridian.Tests.Offers;

namespace Meridian.Tests.Journeys;

/// <summary>
/// The welcome journey of issue 7, as a business would draw it: <c>Signed Up</c> (sent through the tracking API) → an SMS
/// welcome → wait 1 hour → a "first order 10% off" coupon → branch on the sign-up channel → for the store channel, a
/// service agent assigned and an in-app message. Every effect is checked, with the clock moved by the test.
/// </summary>
public abstract class WelcomeJourneyTests(JourneysApp app)
{
    [Fact]
    public async Task The_welcome_journey_runs_as_drawn_for_a_store_sign_up_and_a_web_sign_up()
    {
        using var gateway = new SmsGatewayListener();
        var b = await JourneysTestBrand.CreateAsync(app);
        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/sms", new { settings = new { gatewayUrl = gateway.Url, token = "gw-welcome-token-1" } }).ReadAsync<JsonElement>();
        var storePhone = MessagingTestBrand.NewPhone();
        var webPhone = MessagingTestBrand.NewPhone();
        var storeCustomer = await b.CustomerAsync("welcome-store", new { name = "Ann", phone = storePhone, signup_channel = "store" });
        var webCustomer = await b.CustomerAsync("welcome-web", new { name = "Bo", phone = webPhone, signup_channel = "web" });

        var sms = await TemplateAsync(b, "sms", "Welcome to the club, {{ name }}!");
        var note = await TemplateAsync(b, "inbox", "Your store advisor will call you soon.", "Meet your advisor");
        var coupon = (await new OffersTestBrand(b.Brand) { App = app }.TemplateAsync(new { name = "First order 10% off", kind = "percent_off", value = 10, perCustomerLimit = 1 }))
            .GetProperty("id").GetInt64();
        var agent = (await b.Client.PostAsJsonAsync("/api/v1/service/agents", new { name = "Lin", queue = "store" }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "event", @event = "Signed Up" }, reentry = "once", start = "welcome_sms",
            nodes = new object[]
            {
                new { id = "welcome_sms", type = "send_message", channel = "sms", templateId = sms, purpose = "service" },
                new { id = "one_hour", type = "wait", duration = "1h" },
                new { id = "first_order", type = "issue_coupon", templateId = coupon },
                new { id = "channel", type = "condition", rule = new { trait = "signup_channel", op = "eq", value = "store" } },
                new { id = "advisor", type = "open_ticket", subject = "Welcome call for a new store member", queue = "store" },
                new { id = "advisor_note", type = "send_message", channel = "inbox", templateId = note, purpose = "service" },
                new { id = "welcomed", type = "goal" },
                new { id = "done", type = "exit" },
            },
            edges = new object[]
            {
                new { from = "welcome_sms", to = "one_hour" }, new { from = "one_hour", to = "first_order" }, new { from = "first_order", to = "channel" },
                new { from = "channel", to = "advisor", on = "true" }, new { from = "channel", to = "done", on = "false" },
                new { from = "advisor", to = "advisor_note" }, new { from = "advisor_note", to = "welcomed" },
            },
        }, "Welcome");

        await b.Brand.SendAsync(
            new { type = "track", userId = "welcome-store", @event = "Signed Up", properties = new { channel = "store" } },
            new { type = "track", userId = "welcome-web", @event = "Signed Up", properties = new { channel = "web" } });

        // Both are welcomed by SMS at once and wait an hour.
        var storeRun = await EnteredAsync(b, journey, storeCustomer);
        var webRun = await EnteredAsync(b, journey, webCustomer);
        await b.UntilAtAsync(journey, storeRun, "one_hour", "waiting");
        await b.UntilAtAsync(journey, webRun, "one_hour", "waiting");
        await UntilAsync(() => gateway.Received.Count >= 2, "two welcome SMS");
        Assert.Equal(
            [(storePhone, "Welcome to the club, Ann!"), (webPhone, "Welcome to the club, Bo!")],
            gateway.Received.Select(m => (m.To, m.Text)).OrderBy(m => m.Text, StringComparer.Ordinal).ToList());
        Assert.Empty(await CouponsAsync(b, storeCustomer));

        app.Advance(TimeSpan.FromMinutes(59));
        await Task.Delay(300);
        Assert.Equal("one_hour", (await b.InstanceAsync(journey, storeRun)).GetProperty("currentNode").GetString());
        Assert.Empty(await CouponsAsync(b, storeCustomer));

        app.Advance(TimeSpan.FromMinutes(1));
        var store = await b.UntilStateAsync(journey, storeRun, "converted");
        var web = await b.UntilStateAsync(journey, webRun, "completed");
        Assert.Equal(["welcome_sms:passed", "one_hour:passed", "first_order:passed", "channel:passed", "advisor:passed", "advisor_note:passed", "welcomed:converted"],
            JourneysTestBrand.Path(store));
        Assert.Equal(["welcome_sms:passed", "one_hour:passed", "first_order:passed", "channel:passed", "done:exited"], JourneysTestBrand.Path(web));

        foreach (var customer in new[] { storeCustomer, webCustomer })
            Assert.Equal(coupon, Assert.Single(await CouponsAsync(b, customer)).GetProperty("templateId").GetInt64());
        var ticket = Assert.Single((await b.Client.GetAsync($"/api/v1/service/tickets?profileId={storeCustomer}").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Equal(agent, ticket.GetProperty("agentId").GetInt64());
        Assert.Equal("store", ticket.GetProperty("queue").GetString());
        Assert.Empty((await b.Client.GetAsync($"/api/v1/service/tickets?profileId={webCustomer}").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        var inbox = await UntilAsync(async () => await b.Client.GetAsync($"/api/v1/profiles/{storeCustomer}/inbox").ReadAsync<JsonElement>() is var found
            && found.GetArrayLength() > 0 ? (JsonElement?)found : null, "the advisor's inbox message");
        Assert.Equal("Your store advisor will call you soon.", Assert.Single(inbox.EnumerateArray()).GetProperty("body").GetString());
        Assert.Equal(2, gateway.Received.Count);

        var stats = await b.StatsAsync(journey);
        Assert.Equal(2, stats.GetProperty("entered").GetInt64());
        Assert.Equal(0.5, stats.GetProperty("conversionRate").GetDouble());
        var nodes = stats.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("node").GetString()!);
        Assert.Equal((2L, 2L, 0L), (nodes["first_order"].GetProperty("entered").GetInt64(), nodes["first_order"].GetProperty("passed").GetInt64(), nodes["first_order"].GetProperty("failed").GetInt64()));
        Assert.Equal(1, nodes["advisor"].GetProperty("passed").GetInt64());
        Assert.Equal(1, nodes["done"].GetProperty("entered").GetInt64());
    }

    private static async Task<long> TemplateAsync(JourneysTestBrand b, string channel, string body, string? subject = null) =>
        (await b.Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = $"{channel} {Guid.NewGuid():N}", channel, subject, body }).ReadAsync<JsonElement>())
            .GetProperty("id").GetInt64();

    private static async Task<List<JsonElement>> CouponsAsync(JourneysTestBrand b, long customer) =>
        (await b.Client.GetAsync($"/api/v1/offers/customers/{customer}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray().ToList();

    private static async Task<long> EnteredAsync(JourneysTestBrand b, long journey, long customer)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (await b.InstancesAsync(journey, customer) is [var instance]) return instance.GetProperty("id").GetInt64();
            Assert.True(attempt < 600, $"customer {customer} never entered");
            await Task.Delay(50);
        }
    }

    private static async Task UntilAsync(Func<bool> done, string what)
    {
        for (var attempt = 0; !done(); attempt++)
        {
            Assert.True(attempt < 600, $"never saw {what}");
            await Task.Delay(50);
        }
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T?>> probe, string what) where T : struct
    {
        for (var attempt = 0; ; attempt++)
        {
            if (await probe() is { } found) return found;
            Assert.True(attempt < 600, $"never saw {what}");
            await Task.Delay(50);
        }
    }
}

public sealed class WelcomeJourneyTestsOnSqlite(JourneysSqliteApp app) : WelcomeJourneyTests(app), IClassFixture<JourneysSqliteApp>;

public sealed class WelcomeJourneyTestsOnPostgres(JourneysPostgresApp app) : WelcomeJourneyTests(app), IClassFixture<JourneysPostgresApp>;
