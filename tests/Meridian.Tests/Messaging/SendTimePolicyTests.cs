using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Messaging;

/// <summary>What is decided when a message is sent, not when it was asked for: consent, quiet hours, the frequency cap, the variables.</summary>
public abstract class SendTimePolicyTests(MessagingApp app)
{
    private static bool Left(JsonElement m) => MessagingTestBrand.Status(m) != "queued";

    [Fact]
    public async Task Marketing_needs_an_explicit_grant_while_service_messages_stop_only_at_a_withdrawal()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync(new { name = "Gu" });
        var template = await b.TemplateAsync("inbox", "News for {{ name }}");

        var noConsent = await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "marketing"));
        Assert.Equal(("suppressed", "No in_app consent for marketing is recorded for the customer."), (MessagingTestBrand.Status(noConsent), MessagingTestBrand.Reason(noConsent)));
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "service"))));

        await b.ConsentAsync(customer, "in_app", "marketing", true);
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "marketing"))));

        await b.ConsentAsync(customer, "in_app", "service", false);
        var withdrawn = await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "service"));
        Assert.Equal("suppressed", MessagingTestBrand.Status(withdrawn));
        Assert.StartsWith("The customer withdrew in_app consent for service", MessagingTestBrand.Reason(withdrawn));
        // Consent of another channel does not count.
        await b.ConsentAsync(customer, "sms", "service", true);
        Assert.Equal("suppressed", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "service"))));
    }

    [Fact]
    public async Task Marketing_due_in_quiet_hours_waits_for_their_end_and_consent_is_checked_again_then()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var stays = await b.CustomerAsync(new { name = "Hu" });
        var leaves = await b.CustomerAsync(new { name = "Ji" });
        foreach (var c in new[] { stays, leaves }) await b.ConsentAsync(c, "in_app", "marketing", true);
        var template = await b.TemplateAsync("inbox", "Tonight only, {{ name }}");
        // Quiet from an hour ago to two hours from now, in the brand's time zone (Asia/Shanghai).
        var now = app.Clock.GetUtcNow().UtcDateTime;
        var local = now.AddHours(8);
        var policy = await b.Client.PutAsJsonAsync("/api/v1/messaging/policy",
            new { quietHours = new { start = local.AddHours(-1).ToString("HH:mm"), end = local.AddHours(2).ToString("HH:mm") } }).ReadAsync<JsonElement>();
        Assert.Equal("Asia/Shanghai", policy.GetProperty("timeZone").GetString());

        var kept = await b.QueueAsync(stays, "inbox", template, "marketing");
        var withdrawn = await b.QueueAsync(leaves, "inbox", template, "marketing");
        foreach (var id in new[] { kept, withdrawn })
        {
            var waiting = await b.WaitForAsync(id, m => MessagingTestBrand.Reason(m).Contains("quiet hours"));
            Assert.Equal("queued", MessagingTestBrand.Status(waiting));
            Assert.Equal(now.AddHours(2), waiting.GetProperty("nextAttemptAt").GetDateTime());
        }
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(stays, "inbox", template, "service"))));

        await b.ConsentAsync(leaves, "in_app", "marketing", false);
        app.Clock.Advance(TimeSpan.FromMinutes(119));
        await Task.Delay(300);
        Assert.Equal("queued", MessagingTestBrand.Status(await b.MessageAsync(kept)));
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(kept, Left)));
        var suppressed = await b.WaitForAsync(withdrawn, Left);
        Assert.Equal("suppressed", MessagingTestBrand.Status(suppressed));
        Assert.StartsWith("The customer withdrew in_app consent for marketing", MessagingTestBrand.Reason(suppressed));
    }

    [Fact]
    public async Task The_frequency_cap_lets_exactly_the_allowed_marketing_messages_through_even_when_they_are_sent_at_once()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync(new { name = "Ko" });
        await b.ConsentAsync(customer, "in_app", "marketing", true);
        var template = await b.TemplateAsync("inbox", "Offer for {{ name }}");
        // Quiet hours hold the six back, so that they fall due together: one claim, delivered side by side on separate connections.
        var local = app.Clock.GetUtcNow().UtcDateTime.AddHours(8);
        await b.Client.PutAsJsonAsync("/api/v1/messaging/policy", new
        {
            quietHours = new { start = local.AddHours(-1).ToString("HH:mm"), end = local.AddHours(1).ToString("HH:mm") }, marketingCap = 3, capDays = 7,
        }).ReadAsync<JsonElement>();
        var ids = new List<long>();
        for (var i = 0; i < 6; i++) ids.Add(await b.QueueAsync(customer, "inbox", template, "marketing"));
        foreach (var id in ids) await b.WaitForAsync(id, m => MessagingTestBrand.Reason(m).Contains("quiet hours"));
        app.Clock.Advance(TimeSpan.FromHours(1));
        var outcomes = new List<JsonElement>();
        foreach (var id in ids) outcomes.Add(await b.WaitForAsync(id, Left));
        Assert.Equal(3, outcomes.Count(m => MessagingTestBrand.Status(m) == "sent"));
        var capped = outcomes.Where(m => MessagingTestBrand.Status(m) == "suppressed").ToList();
        Assert.Equal(3, capped.Count);
        Assert.All(capped, m => Assert.StartsWith("Frequency cap: the customer had 3 marketing messages in the last 7 days", MessagingTestBrand.Reason(m)));
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "service"))));

        app.Clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(1));
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template, "marketing"))));
    }

    [Fact]
    public async Task A_variable_missing_at_send_time_takes_its_fallback_or_fails_the_message_with_a_clear_reason()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync(new { name = "Lu", city = "Suzhou" });
        var strict = await b.TemplateAsync("inbox", "Hi {{ name }} from {{ traits.city }}, your {{ traits.tier }} gift: {{ event.gift }}");
        var lenient = await b.TemplateAsync("inbox", "Hi {{ traits.nickname | default: \"friend\" }} from {{ traits.city }}: {{ event.gift | default: \"a surprise\" }}");

        var failed = await b.WaitForAsync(await b.QueueAsync(customer, "inbox", strict, @event: new { gift = "tea" }));
        Assert.Equal(("failed", "No value and no default for this customer: traits.tier."), (MessagingTestBrand.Status(failed), MessagingTestBrand.Reason(failed)));
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("body").ValueKind);

        var fallback = await b.WaitForAsync(await b.QueueAsync(customer, "inbox", lenient));
        Assert.Equal(("sent", "Hi friend from Suzhou: a surprise"), (MessagingTestBrand.Status(fallback), fallback.GetProperty("body").GetString()));

        await b.Client.PatchAsJsonAsync($"/api/v1/profiles/{customer}/traits", new { tier = "Gold" }).ReadAsync<JsonElement>();
        var rendered = await b.WaitForAsync(await b.QueueAsync(customer, "inbox", strict, @event: new { gift = "tea" }));
        Assert.Equal("Hi Lu from Suzhou, your Gold gift: tea", rendered.GetProperty("body").GetString());
    }
}

public sealed class SendTimePolicyTestsOnSqlite(MessagingSqliteApp app) : SendTimePolicyTests(app), IClassFixture<MessagingSqliteApp>;

public sealed class SendTimePolicyTestsOnPostgres(MessagingPostgresApp app) : SendTimePolicyTests(app), IClassFixture<MessagingPostgresApp>;
