using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Loyalty.Expiry;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Offers;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Journeys;

/// <summary>Journeys as a business would draw them, end to end, every effect checked with the clock moved by the test.</summary>
public abstract class ProofJourneyTests(JourneysApp app)
{
    private static object[] Edges(params (string From, string To, string On)[] edges) => edges.Select(e => (object)new { from = e.From, to = e.To, on = e.On }).ToArray();

    [Fact]
    public async Task A_birthday_journey_gives_a_coupon_on_the_day_at_nine_in_the_brands_time_zone_once_a_year()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        await app.Admin.PatchAsJsonAsync($"/api/v1/brands/{b.Id}", new { timeZone = "Europe/London" }).ReadAsync<JsonElement>();
        var today = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime);
        var birthday = today.AddDays(2);
        var celebrating = await b.CustomerAsync("bday-1", new { birthday = $"1990-{birthday:MM-dd}" });
        var tomorrow = await b.CustomerAsync("bday-2", new { birthday = $"1985-{birthday.AddDays(1):MM-dd}" });
        var offers = new OffersTestBrand(b.Brand) { App = app };
        var gift = (await offers.TemplateAsync(new { name = "Birthday gift", kind = "amount_off", value = 1000 })).GetProperty("id").GetInt64();
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "date", trait = "birthday", at = "09:00" }, reentry = "once_per_days", reentryDays = 300, start = "gift",
            nodes = new object[] { new { id = "gift", type = "issue_coupon", templateId = gift }, new { id = "end", type = "exit" } },
            edges = Edges(("gift", "end", "next")),
        });

        await app.RunDateTriggersAsync();
        Assert.Empty(await b.InstancesAsync(journey));

        // The birthday, 07:30 UTC: 08:30 in London (summer time), not yet nine.
        var morning = birthday.ToDateTime(new TimeOnly(7, 30), DateTimeKind.Utc);
        app.Advance(morning - app.Clock.GetUtcNow().UtcDateTime);
        await app.RunDateTriggersAsync();
        Assert.Empty(await b.InstancesAsync(journey));

        app.Advance(TimeSpan.FromMinutes(30));
        await app.RunDateTriggersAsync();
        await app.RunDateTriggersAsync();
        var instance = Assert.Single(await b.InstancesAsync(journey));
        Assert.Equal(celebrating, instance.GetProperty("profileId").GetInt64());
        await b.UntilStateAsync(journey, instance.GetProperty("id").GetInt64(), "completed");
        var coupon = Assert.Single((await b.Client.GetAsync($"/api/v1/offers/customers/{celebrating}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Equal(gift, coupon.GetProperty("templateId").GetInt64());

        // The next day is the other customer's; the first is not let in again.
        app.Advance(TimeSpan.FromDays(1));
        await app.RunDateTriggersAsync();
        var all = await b.InstancesAsync(journey);
        Assert.Equal(2, all.Count);
        Assert.Equal(tomorrow, all[1].GetProperty("profileId").GetInt64());
    }

    [Fact]
    public async Task A_points_about_to_expire_journey_reminds_the_member_and_tags_them()
    {
        var b = await JourneysTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync("expiring-1");
        using var receiver = new Infrastructure.WebhookReceiver();
        var programme = (await b.Client.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Club", expiry = "after_days", expiryDays = 60, expiringNoticeDays = 7 })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var member = (await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programme}/members", new { profileId = customer }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/loyalty/members/{member}/earn") { Content = JsonContent.Create(new { points = 120 }) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        await b.Client.SendAsync(request).ReadAsync<JsonElement>();
        var tag = (await b.Client.PostAsJsonAsync("/api/v1/tags", new { name = "points-expiring" }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var journey = await b.PublishedAsync(new
        {
            trigger = new { type = "domain_event", @event = "points.expiring", where = new[] { new { property = "points", op = "gte", value = 100 } } },
            reentry = "every_time", start = "mark",
            nodes = new object[]
            {
                new { id = "mark", type = "add_tag", tagId = tag },
                new { id = "remind", type = "webhook", url = receiver.Url, secret = "whsec_" + Convert.ToBase64String(new byte[24]) },
                new { id = "end", type = "exit" },
            },
            edges = Edges(("mark", "remind", "next"), ("remind", "end", "next")),
        });

        var expiry = app.Services.GetRequiredService<PointsExpiryJob>();
        await expiry.RunOnceAsync(default);
        app.Advance(TimeSpan.FromDays(54));
        await expiry.RunOnceAsync(default);

        var entered = await UntilAsync(async () => await b.InstancesAsync(journey) is { Count: 1 } found ? found : null, "the member to enter");
        var id = entered[0].GetProperty("id").GetInt64();
        // On a loaded machine the call can outlast the client's timeout; the step then waits for its retry (a minute, then
        // two, on the test's clock), as it would in production. The reminder must still arrive, under one webhook id.
        var instance = await b.UntilAsync(journey, id, i => i.GetProperty("state").GetString() != "active" || i.GetProperty("attempts").GetInt32() > 0, "an outcome");
        for (var retry = 1; instance.GetProperty("state").GetString() == "active" && retry <= 2; retry++)
        {
            app.Advance(TimeSpan.FromMinutes(retry));
            var attempts = instance.GetProperty("attempts").GetInt32();
            instance = await b.UntilAsync(journey, id, i => i.GetProperty("state").GetString() != "active" || i.GetProperty("attempts").GetInt32() > attempts, "an outcome of the retry");
        }
        Assert.Equal("completed", instance.GetProperty("state").GetString());
        Assert.Equal(120, instance.GetProperty("context").GetProperty("event").GetProperty("points").GetInt64());
        var tags = await b.Client.GetAsync($"/api/v1/profiles/{customer}/tags").ReadAsync<JsonElement>();
        Assert.Equal("points-expiring", Assert.Single(tags.EnumerateArray()).GetProperty("name").GetString());
        var call = Assert.Single(receiver.Calls.DistinctBy(c => c.Id));
        Assert.Equal(120, JsonDocument.Parse(call.Body).RootElement.GetProperty("event").GetProperty("points").GetInt64());
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T?>> probe, string what) where T : class
    {
        for (var attempt = 0; ; attempt++)
        {
            if (await probe() is { } found) return found;
            Assert.True(attempt < 600, $"never saw {what}");
            await Task.Delay(50);
        }
    }
}

public sealed class ProofJourneyTestsOnSqlite(JourneysSqliteApp app) : ProofJourneyTests(app), IClassFixture<JourneysSqliteApp>;

public sealed class ProofJourneyTestsOnPostgres(JourneysPostgresApp app) : ProofJourneyTests(app), IClassFixture<JourneysPostgresApp>;
