using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Messaging;
using Meridian.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Messaging;

/// <summary>The send contract (<see cref="MessageDispatch"/>), the SMS gateway channel, the inbox, retries, dead letters and receipts.</summary>
public abstract class SendAndDeliverTests(MessagingApp app)
{
    private MessageDispatch Dispatch => app.Services.GetRequiredService<MessageDispatch>();

    [Fact]
    public async Task SendAsync_is_idempotent_per_brand_and_key_and_rejects_what_can_never_be_sent()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var other = await MessagingTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync(new { name = "Ann" });
        var inbox = await b.TemplateAsync("inbox", "Hello {{ name }}");
        var sms = await b.TemplateAsync("sms", "Hello");
        var foreign = await other.TemplateAsync("inbox", "Not yours");

        var first = await Dispatch.SendAsync(new SendRequest(b.Id, customer, "inbox", inbox, "service", "journey:1/v1/node:a", "journey:1/v1/node:a"), CancellationToken.None);
        var again = await Dispatch.SendAsync(new SendRequest(b.Id, customer, "inbox", inbox, "service", "journey:1/v1/node:a", "journey:1/v1/node:a"), CancellationToken.None);
        Assert.Equal(SendStatus.Queued, first.Status);
        Assert.Equal(first, again);
        // The same key in another brand is another message.
        var otherCustomer = await other.CustomerAsync(new { name = "Bo" });
        var elsewhere = await Dispatch.SendAsync(new SendRequest(other.Id, otherCustomer, "inbox", foreign, "service", "journey:1/v1/node:a", "j"), CancellationToken.None);
        Assert.Equal(SendStatus.Queued, elsewhere.Status);
        Assert.NotEqual(first.MessageId, elsewhere.MessageId);

        async Task<SendOutcome> Send(long profile, string channel, long template, string key) =>
            await Dispatch.SendAsync(new SendRequest(b.Id, profile, channel, template, "service", key, "test"), CancellationToken.None);
        var unknownTemplate = await Send(customer, "inbox", 999_999, "k1");
        var foreignTemplate = await Send(customer, "inbox", foreign, "k2");
        var noProfile = await Send(otherCustomer, "inbox", inbox, "k3");
        var mismatch = await Send(customer, "inbox", sms, "k4");
        Assert.All(new[] { unknownTemplate, foreignTemplate, noProfile, mismatch }, o => Assert.Equal(SendStatus.Rejected, o.Status));
        Assert.Contains("does not exist", unknownTemplate.Reason);
        Assert.Contains("does not exist", foreignTemplate.Reason);
        Assert.Contains($"Profile {otherCustomer}", noProfile.Reason);
        Assert.Contains("is for sms, not inbox", mismatch.Reason);
        Assert.Equal(mismatch, await Send(customer, "inbox", sms, "k4"));

        var listed = await b.Client.GetAsync($"/api/v1/messaging/messages?profileId={customer}").ReadAsync<JsonElement>();
        Assert.Equal(4, listed.GetProperty("items").GetArrayLength()); // the one rejected for another brand's profile is listed under that id
    }

    [Fact]
    public async Task An_sms_goes_through_the_brands_gateway_and_its_receipt_marks_it_delivered()
    {
        using var gateway = new SmsGatewayListener();
        var b = await MessagingTestBrand.CreateAsync(app);
        await b.SmsGatewayAsync(gateway.Url, "tok-abcdef-123456");
        var phone = MessagingTestBrand.NewPhone();
        var customer = await b.CustomerAsync(new { name = "Ann", phone });
        var template = await b.TemplateAsync("sms", "Hi {{ name }}, your order {{ event.orderId }} has shipped.");

        var queued = await b.SendAsync(customer, "sms", template, key: "ship-1", @event: new { orderId = "A-42" }).ReadAsync<JsonElement>();
        // Accepted: queued, or on a quiet machine already sent by the worker the send woke before the answer was read back.
        Assert.Contains(MessagingTestBrand.Status(queued), new[] { "queued", "sent" });
        var sent = await b.WaitForAsync(queued.GetProperty("id").GetInt64());

        Assert.Equal("sent", MessagingTestBrand.Status(sent));
        var sms = Assert.Single(gateway.Received);
        Assert.Equal((phone, "Hi Ann, your order A-42 has shipped.", b.Brand.Test.Slug, "Bearer tok-abcdef-123456"), (sms.To, sms.Text, sms.Brand, sms.Authorization));
        Assert.Equal("Hi Ann, your order A-42 has shipped.", sent.GetProperty("body").GetString());
        // A retry of the staff request answers with the same message and sends nothing more.
        var replay = await b.SendAsync(customer, "sms", template, key: "ship-1", @event: new { orderId = "A-42" }).ReadAsync<JsonElement>();
        Assert.Equal(queued.GetProperty("id").GetInt64(), replay.GetProperty("id").GetInt64());
        var reused = await b.SendAsync(customer, "sms", template, purpose: "marketing", key: "ship-1").ProblemAsync(422, ProblemTypes.IdempotencyKeyReused);

        var anonymous = app.CreateClient();
        var receipt = new { id = "gw-1", status = "delivered" };
        await anonymous.PostAsJsonAsync($"/api/v1/messaging/receipts/sms/{b.Id}", receipt).ProblemAsync(401, ProblemTypes.Unauthorized);
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", "tok-abcdef-123456");
        using (var ok = await anonymous.PostAsJsonAsync($"/api/v1/messaging/receipts/sms/{b.Id}", receipt)) Assert.Equal(204, (int)ok.StatusCode);
        var delivered = await b.MessageAsync(sent.GetProperty("id").GetInt64());
        Assert.Equal("delivered", MessagingTestBrand.Status(delivered));
        Assert.NotEqual(JsonValueKind.Null, delivered.GetProperty("deliveredAt").ValueKind);
        await anonymous.PostAsJsonAsync($"/api/v1/messaging/receipts/sms/{b.Id}", new { id = "gw-nope", status = "delivered" }).ProblemAsync(404, ProblemTypes.NotFound);

        var settings = await b.Client.GetAsync("/api/v1/messaging/channels/sms").ReadAsync<JsonElement>();
        Assert.Equal("tok-…56", settings.GetProperty("settings").GetProperty("token").GetString());
    }

    [Fact]
    public async Task A_failing_gateway_is_retried_with_backoff_then_dead_lettered_and_staff_can_retry_it()
    {
        using var gateway = new SmsGatewayListener { FailWith = 503 };
        var b = await MessagingTestBrand.CreateAsync(app);
        await b.SmsGatewayAsync(gateway.Url);
        var customer = await b.CustomerAsync(new { name = "Cy", phone = MessagingTestBrand.NewPhone() });
        var template = await b.TemplateAsync("sms", "Your code is ready");
        var id = await b.QueueAsync(customer, "sms", template);

        var first = await b.WaitForAttemptsAsync(id, 1);
        Assert.Equal(("queued", 1), (MessagingTestBrand.Status(first), first.GetProperty("attempts").GetInt32()));
        Assert.Contains("answered 503", MessagingTestBrand.Reason(first));
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var second = await b.WaitForAttemptsAsync(id, 2);
        Assert.Equal("queued", MessagingTestBrand.Status(second));
        // The wait doubles: a minute after the second attempt is too early for the third.
        Assert.Equal(second.GetProperty("nextAttemptAt").GetDateTime() - app.Clock.GetUtcNow().UtcDateTime, TimeSpan.FromMinutes(2));
        app.Clock.Advance(TimeSpan.FromMinutes(2));
        var dead = await b.WaitForAsync(id);
        Assert.Equal("failed", MessagingTestBrand.Status(dead));
        Assert.Contains("Gave up after 3 attempts", MessagingTestBrand.Reason(dead));
        Assert.Empty(gateway.Received);

        var letters = await b.Client.GetAsync("/api/v1/messaging/dead-letters").ReadAsync<JsonElement>();
        Assert.Equal([id], letters.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("id").GetInt64()));

        gateway.FailWith = null;
        await b.Client.PostAsync($"/api/v1/messaging/dead-letters/{id}/retry", null).ReadAsync<JsonElement>();
        Assert.Equal("sent", MessagingTestBrand.Status(await b.WaitForAsync(id)));
        Assert.Single(gateway.Received);
        Assert.Empty((await b.Client.GetAsync("/api/v1/messaging/dead-letters").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        await b.Client.PostAsync($"/api/v1/messaging/dead-letters/{id}/retry", null).ProblemAsync(409, ProblemTypes.Conflict);
    }

    [Fact]
    public async Task A_refusal_by_the_gateway_or_a_customer_without_a_phone_is_a_dead_letter_with_the_reason_at_once()
    {
        using var gateway = new SmsGatewayListener { FailWith = 400 };
        var b = await MessagingTestBrand.CreateAsync(app);
        var template = await b.TemplateAsync("sms", "Hello");
        var customer = await b.CustomerAsync(new { name = "Di", phone = MessagingTestBrand.NewPhone() });
        var noGateway = await b.WaitForAsync(await b.QueueAsync(customer, "sms", template));
        Assert.Equal("failed", MessagingTestBrand.Status(noGateway));
        Assert.Contains("gatewayUrl", MessagingTestBrand.Reason(noGateway));

        await b.SmsGatewayAsync(gateway.Url);
        var refused = await b.WaitForAsync(await b.QueueAsync(customer, "sms", template));
        Assert.Equal(("failed", 1), (MessagingTestBrand.Status(refused), refused.GetProperty("attempts").GetInt32()));
        Assert.Contains("answered 400", MessagingTestBrand.Reason(refused));

        var phoneless = await b.CustomerAsync(new { name = "Ed" });
        var noPhone = await b.WaitForAsync(await b.QueueAsync(phoneless, "sms", template));
        Assert.Equal("failed", MessagingTestBrand.Status(noPhone));
        Assert.Equal("The customer has no phone identifier.", MessagingTestBrand.Reason(noPhone));
    }

    [Fact]
    public async Task An_inbox_message_is_readable_by_staff_and_masked_without_pii_read()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync(new { name = "Fay" });
        var template = await b.TemplateAsync("inbox", "Welcome, {{ name }}!", subject: "Welcome");
        var sent = await b.WaitForAsync(await b.QueueAsync(customer, "inbox", template));
        Assert.Equal("sent", MessagingTestBrand.Status(sent));

        var inbox = await b.Client.GetAsync($"/api/v1/profiles/{customer}/inbox").ReadAsync<JsonElement>();
        var item = Assert.Single(inbox.EnumerateArray());
        Assert.Equal(("Welcome", "Welcome, Fay!"), (item.GetProperty("subject").GetString(), item.GetProperty("body").GetString()));

        var analyst = app.ClientWithKey(await app.NewKeyAsync("analyst", b.Brand.Test.Slug));
        var masked = Assert.Single((await analyst.GetAsync($"/api/v1/profiles/{customer}/inbox").ReadAsync<JsonElement>()).EnumerateArray());
        Assert.Equal(JsonValueKind.Null, masked.GetProperty("body").ValueKind);
        Assert.Equal(JsonValueKind.Null, (await analyst.GetAsync($"/api/v1/messaging/messages/{item.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>()).GetProperty("body").ValueKind);
    }
}

public sealed class SendAndDeliverTestsOnSqlite(MessagingSqliteApp app) : SendAndDeliverTests(app), IClassFixture<MessagingSqliteApp>;

public sealed class SendAndDeliverTestsOnPostgres(MessagingPostgresApp app) : SendAndDeliverTests(app), IClassFixture<MessagingPostgresApp>;
