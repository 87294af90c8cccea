using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Offers;

namespace Meridian.Tests.Messaging;

/// <summary>
/// Two real server processes on one PostgreSQL share the delivery work through leases: every queued message reaches the
/// SMS gateway exactly once, and the marketing cap holds for a customer whose messages both nodes send at the same time.
/// </summary>
public sealed class TwoNodeDeliveryTests
{
    [Fact]
    public async Task Two_server_processes_send_every_message_exactly_once_and_keep_the_frequency_cap()
    {
        await using var nodes = await TwoNodes.StartAsync("twonodemsg", node =>
        [
            new("Meridian:Messaging:Delivery:NodeName", node),
            new("Meridian:Messaging:Delivery:PollInterval", "00:00:00.050"),
            new("Meridian:Messaging:Delivery:BatchSize", "10"),
        ]);
        using var gateway = new SmsGatewayListener();
        using var a = TwoNodes.Client(nodes.A);
        using var b = TwoNodes.Client(nodes.B);

        var source = await a.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        using var tracker = new HttpClient { BaseAddress = nodes.A.BaseAddress };
        tracker.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(source.GetProperty("writeKey").GetString() + ":")));
        const int customers = 40;
        var phones = Enumerable.Range(0, customers).Select(_ => MessagingTestBrand.NewPhone()).ToArray();
        await tracker.PostAsJsonAsync("/v1/batch", new { batch = phones.Select((phone, i) => new { type = "identify", userId = $"two-{i}", traits = new { phone } }) })
            .ReadAsync<JsonElement>();
        var profiles = TwoNodeClaimTests.ProfilesAsync(nodes.Database);
        Dictionary<string, long> byUser;
        for (var attempt = 0; (byUser = await profiles("two-")).Count < customers; attempt++)
        {
            Assert.True(attempt < 600, $"only {byUser.Count} profiles resolved");
            await Task.Delay(100);
        }
        await a.PutAsJsonAsync("/api/v1/messaging/channels/sms", new { settings = new { gatewayUrl = gateway.Url, token = "two-node-token" } }).ReadAsync<JsonElement>();
        var template = (await a.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "Hi", channel = "sms", body = "Hello from the two nodes" })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

        // 200 service messages, each sent to both nodes with the same key: one message each, sent once.
        const int messages = 200;
        var ids = new long[messages];
        await Parallel.ForAsync(0, messages * 2, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            var n = i / 2;
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messaging/messages")
            {
                Content = JsonContent.Create(new { profileId = byUser[$"two-{n % customers}"], channel = "sms", templateId = template, purpose = "service" }),
            };
            request.Headers.Add("Idempotency-Key", $"two-{n}");
            using var response = await (i % 2 == 0 ? a : b).SendAsync(request, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}\n{nodes.Output}");
            ids[n] = JsonDocument.Parse(body).RootElement.GetProperty("id").GetInt64();
        });

        // The cap: ten marketing messages to one customer, asked of both nodes at once; three may go.
        var capped = byUser["two-0"];
        await a.PutAsJsonAsync("/api/v1/messaging/policy", new { marketingCap = 3, capDays = 7 }).ReadAsync<JsonElement>();
        await a.PostAsJsonAsync($"/api/v1/profiles/{capped}/consents", new { channel = "sms", purpose = "marketing", granted = true }).ReadAsync<JsonElement>();
        var marketing = await Task.WhenAll(Enumerable.Range(0, 10).Select(async i =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messaging/messages")
            {
                Content = JsonContent.Create(new { profileId = capped, channel = "sms", templateId = template, purpose = "marketing" }),
            };
            request.Headers.Add("Idempotency-Key", $"cap-{i}");
            return (await (i % 2 == 0 ? a : b).SendAsync(request).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        }));

        var expected = ids.Concat(marketing).ToHashSet();
        for (var attempt = 0; ; attempt++)
        {
            var page = await a.GetAsync($"/api/v1/messaging/messages?status=queued&limit=200").ReadAsync<JsonElement>();
            if (page.GetProperty("items").GetArrayLength() == 0) break;
            Assert.True(attempt < 600, $"{page.GetProperty("items").GetArrayLength()} messages still queued");
            await Task.Delay(100);
        }
        await Task.Delay(500); // a duplicate, if any, would arrive now

        Assert.Equal(messages, ids.Distinct().Count());
        var sent = gateway.Received.ToArray();
        Assert.Equal(messages + 3, sent.Length);
        Assert.Equal(sent.Length, sent.Select(s => s.Reference).Distinct().Count());
        Assert.All(sent, s => Assert.Contains(long.Parse(s.Reference!["msg_".Length..]), expected));
        var outcomes = await Task.WhenAll(marketing.Select(async id => (await a.GetAsync($"/api/v1/messaging/messages/{id}").ReadAsync<JsonElement>())));
        Assert.Equal(3, outcomes.Count(m => m.GetProperty("status").GetString() == "sent"));
        Assert.Equal(7, outcomes.Count(m => m.GetProperty("reason").GetString()?.StartsWith("Frequency cap") == true));
    }
}
