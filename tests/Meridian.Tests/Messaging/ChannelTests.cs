using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using MimeKit;

namespace Meridian.Tests.Messaging;

/// <summary>Email over a real SMTP conversation, the signed webhook channel with retries, and channel settings that never show a secret.</summary>
public abstract class ChannelTests(MessagingApp app)
{
    [Fact]
    public async Task An_email_is_delivered_over_a_real_smtp_conversation()
    {
        using var smtp = new SmtpListener();
        var b = await MessagingTestBrand.CreateAsync(app);
        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/email", new
        {
            settings = new { host = "127.0.0.1", port = smtp.Port, tls = "none", from = "hello@teahouse.example", fromName = "Tea House", username = (string?)null, password = "p4ssw0rd-very-secret" },
        }).ReadAsync<JsonElement>();
        var customer = await b.CustomerAsync(new { name = "Mei", email = "Mei.Lin@Example.com" });
        var template = await b.TemplateAsync("email", "Dear {{ name }},\nyour {{ event.item }} is ready. 日本茶 🙂", subject: "{{ event.item }} for {{ name }}");

        var sent = await b.WaitForAsync(await b.QueueAsync(customer, "email", template, @event: new { item = "matcha" }));

        Assert.Equal("sent", MessagingTestBrand.Status(sent));
        var mail = Assert.Single(smtp.Received);
        Assert.Equal(("hello@teahouse.example", "mei.lin@example.com"), (mail.From, Assert.Single(mail.To)));
        var mime = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(mail.Data)));
        Assert.Equal("matcha for Mei", mime.Subject);
        Assert.Equal("Tea House", ((MailboxAddress)mime.From[0]).Name);
        Assert.Equal("Dear Mei,\nyour matcha is ready. 日本茶 🙂", mime.TextBody!.ReplaceLineEndings("\n").TrimEnd('\n'));

        var settings = await b.Client.GetAsync("/api/v1/messaging/channels/email").ReadAsync<JsonElement>();
        Assert.Equal("p4ss…et", settings.GetProperty("settings").GetProperty("password").GetString());
        Assert.DoesNotContain("p4ssw0rd-very-secret", settings.GetRawText());
    }

    [Fact]
    public async Task A_refused_mailbox_is_a_dead_letter_and_an_unreachable_server_is_retried()
    {
        using var smtp = new SmtpListener { RefuseRecipients = true };
        var b = await MessagingTestBrand.CreateAsync(app);
        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/email", new { settings = new { host = "127.0.0.1", port = smtp.Port, tls = "none", from = "a@b.example" } })
            .ReadAsync<JsonElement>();
        var customer = await b.CustomerAsync(new { email = "nobody@example.com" });
        var template = await b.TemplateAsync("email", "Hi", subject: "Hi");
        var refused = await b.WaitForAsync(await b.QueueAsync(customer, "email", template));
        Assert.Equal("failed", MessagingTestBrand.Status(refused));
        Assert.Contains("answered 550", MessagingTestBrand.Reason(refused));

        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/email", new { settings = new { host = "127.0.0.1", port = PostgresServer.FreePort(), tls = "none", from = "a@b.example" } })
            .ReadAsync<JsonElement>();
        var unreachable = await b.WaitForAttemptsAsync(await b.QueueAsync(customer, "email", template), 1);
        Assert.Equal("queued", MessagingTestBrand.Status(unreachable));
        Assert.Contains("could not be reached", MessagingTestBrand.Reason(unreachable));

        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/email", new { settings = new { host = "", from = "a@b.example" } }).ProblemAsync(400, ProblemTypes.Validation);
        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/fax", new { settings = new { } }).ProblemAsync(404, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task A_webhook_message_is_signed_retried_after_failures_and_sent_once()
    {
        using var receiver = new WebhookReceiver(failFirst: 1);
        var b = await MessagingTestBrand.CreateAsync(app);
        var secret = "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/webhook", new { settings = new { url = receiver.Url, secret, consentChannel = "wechat" } }).ReadAsync<JsonElement>();
        // The secret is kept when a change leaves it out, and never shown.
        var changed = await b.Client.PutAsJsonAsync("/api/v1/messaging/channels/webhook", new { settings = new { url = receiver.Url, consentChannel = "wechat" } }).ReadAsync<JsonElement>();
        Assert.DoesNotContain(secret, changed.GetRawText());
        var customer = await b.CustomerAsync(new { name = "Nan" });
        await b.ConsentAsync(customer, "wechat", "marketing", true);
        var template = await b.TemplateAsync("webhook", "Flash sale for {{ name }}");

        var id = await b.QueueAsync(customer, "webhook", template, "marketing");
        var first = await b.WaitForAttemptsAsync(id, 1);
        Assert.Contains("answered 503", MessagingTestBrand.Reason(first));
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(id)));

        var call = Assert.Single(receiver.Calls);
        Assert.Equal($"msg_{id}", call.Id);
        var expected = Convert.ToBase64String(HMACSHA256.HashData(Convert.FromBase64String(secret["whsec_".Length..]), Encoding.UTF8.GetBytes($"{call.Id}.{call.Timestamp}.{call.Body}")));
        Assert.Equal("v1," + expected, call.Signature);
        var body = JsonDocument.Parse(call.Body).RootElement;
        Assert.Equal(("Flash sale for Nan", customer), (body.GetProperty("body").GetString(), body.GetProperty("profileId").GetInt64()));

        // Its consent channel is the one its settings name.
        await b.ConsentAsync(customer, "wechat", "marketing", false);
        Assert.Equal("suppressed", MessagingTestBrand.Status(await b.WaitForAsync(await b.QueueAsync(customer, "webhook", template, "marketing"))));
    }
}

public sealed class ChannelTestsOnSqlite(MessagingSqliteApp app) : ChannelTests(app), IClassFixture<MessagingSqliteApp>;

public sealed class ChannelTestsOnPostgres(MessagingPostgresApp app) : ChannelTests(app), IClassFixture<MessagingPostgresApp>;
