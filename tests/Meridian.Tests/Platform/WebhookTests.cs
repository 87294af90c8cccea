using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Platform.Webhooks;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Platform;

/// <summary>Domain events reach a brand's webhook endpoints through the outbox: signed, retried, never for another brand.</summary>
public abstract class WebhookTests(MeridianAppFixture app)
{
    [Fact]
    public async Task A_source_created_event_reaches_the_brands_webhook_signed()
    {
        var brand = await app.NewBrandAsync();
        using var receiver = new WebhookReceiver();
        var hook = await brand.Client.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url }).ReadAsync<JsonElement>();
        var secret = hook.GetProperty("secret").GetString()!;

        var source = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();

        await receiver.WaitForAsync(c => c.Count >= 1, TimeSpan.FromSeconds(20));
        var call = Assert.Single(receiver.Calls);
        var body = JsonDocument.Parse(call.Body).RootElement;
        Assert.Equal("source.created", body.GetProperty("type").GetString());
        Assert.Equal(brand.Id, body.GetProperty("brandId").GetInt64());
        Assert.Equal(source.GetProperty("source").GetProperty("id").GetInt64(), body.GetProperty("data").GetProperty("sourceId").GetInt64());
        Assert.Equal(call.Id, body.GetProperty("id").GetString());
        Assert.Equal("v1," + WebhookSubscriber.Sign(secret, $"{call.Id}.{call.Timestamp}.{call.Body}"), call.Signature);
    }

    [Fact]
    public async Task A_failing_endpoint_is_retried_and_the_delivery_is_recorded()
    {
        var brand = await app.NewBrandAsync();
        using var receiver = new WebhookReceiver(failFirst: 1);
        var hook = await brand.Client.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url, eventTypes = new[] { "source.updated" } }).ReadAsync<JsonElement>();
        var hookId = hook.GetProperty("endpoint").GetProperty("id").GetInt64();
        var source = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "till", channel = "pos" }).ReadAsync<JsonElement>();
        await brand.Client.PatchAsJsonAsync($"/api/v1/sources/{source.GetProperty("source").GetProperty("id").GetInt64()}", new { enabled = false }).ReadAsync<JsonElement>();

        await receiver.WaitForAsync(c => c.Count >= 1, TimeSpan.FromSeconds(30));
        var call = Assert.Single(receiver.Calls); // source.created was filtered out; source.updated arrived after one retry
        Assert.Equal("source.updated", JsonDocument.Parse(call.Body).RootElement.GetProperty("type").GetString());

        JsonElement delivery = default;
        for (var i = 0; i < 50; i++)
        {
            var page = await brand.Client.GetAsync($"/api/v1/webhooks/{hookId}/deliveries").ReadAsync<JsonElement>();
            delivery = page.GetProperty("items").EnumerateArray().Single();
            if (delivery.GetProperty("status").GetString() == "delivered") break;
            await Task.Delay(100);
        }
        Assert.Equal("delivered", delivery.GetProperty("status").GetString());
        Assert.Equal(2, delivery.GetProperty("attempts").GetInt32());
    }

    [Fact]
    public async Task Another_brands_events_never_reach_a_brands_webhook()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        using var receiverA = new WebhookReceiver();
        using var receiverB = new WebhookReceiver();
        await a.Client.PostAsJsonAsync("/api/v1/webhooks", new { url = receiverA.Url }).ReadAsync<JsonElement>();
        await b.Client.PostAsJsonAsync("/api/v1/webhooks", new { url = receiverB.Url }).ReadAsync<JsonElement>();

        await b.Client.PostAsJsonAsync("/api/v1/sources", new { name = "b-only", channel = "web" }).ReadAsync<JsonElement>();
        await receiverB.WaitForAsync(c => c.Count >= 1, TimeSpan.FromSeconds(20));
        await Task.Delay(500);

        Assert.Empty(receiverA.Calls);
    }

    [Fact]
    public async Task A_webhook_url_must_be_absolute_http()
    {
        var brand = await app.NewBrandAsync();
        var problem = await brand.Client.PostAsJsonAsync("/api/v1/webhooks", new { url = "ftp://example.com/x" }).ProblemAsync(400, Meridian.Hosting.ProblemTypes.Validation);
        Assert.True(problem.GetProperty("errors").TryGetProperty("url", out _));
    }
}

public sealed class WebhookTestsOnSqlite(SqliteApp app) : WebhookTests(app), IClassFixture<SqliteApp>;

public sealed class WebhookTestsOnPostgres(PostgresApp app) : WebhookTests(app), IClassFixture<PostgresApp>;
