using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Meridian.Tests.Messaging;

/// <summary>A host whose clock the tests move (retries, quiet hours, caps), with the delivery worker polling often.</summary>
public abstract class MessagingApp : MeridianAppFixture
{
    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 30, 4, 0, 0, TimeSpan.Zero));

    protected override IEnumerable<KeyValuePair<string, string>> Settings =>
    [
        new("Meridian:Messaging:Delivery:PollInterval", "00:00:00.100"),
        new("Meridian:Messaging:Delivery:MaxAttempts", "3"),
        new("Meridian:Messaging:Delivery:RetryBackoff", "00:01:00"),
        .. ClockPollingJobsOff,
    ];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(Clock));
    }
}

public sealed class MessagingSqliteApp : MessagingApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
    protected override Task<string> CreateDatabaseAsync() => Task.FromResult($"Data Source={Path.Combine(Path.GetTempPath(), $"meridian-messaging-{Guid.NewGuid():N}.db")}");
}

public sealed class MessagingPostgresApp : MessagingApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}

/// <summary>A real HTTP SMS gateway: records what it is asked to send, answers with its own id, or fails as the test says.</summary>
public sealed class SmsGatewayListener : IDisposable
{
    public sealed record Sms(string To, string Text, string Brand, string? Reference, string? Authorization);

    private readonly HttpListener listener = new();
    private int next;

    public ConcurrentQueue<Sms> Received { get; } = new();
    /// <summary>When set, every call is answered with this status and nothing is recorded.</summary>
    public int? FailWith { get; set; }
    public string Url { get; }

    public SmsGatewayListener()
    {
        Url = $"http://127.0.0.1:{PostgresServer.FreePort()}/sms/";
        listener.Prefixes.Add(Url);
        listener.Start();
        _ = Task.Run(LoopAsync);
    }

    private async Task LoopAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception) when (!listener.IsListening)
            {
                return;
            }
            using var body = await JsonDocument.ParseAsync(context.Request.InputStream);
            if (FailWith is { } status)
            {
                context.Response.StatusCode = status;
            }
            else
            {
                var r = body.RootElement;
                Received.Enqueue(new Sms(r.GetProperty("to").GetString()!, r.GetProperty("text").GetString()!, r.GetProperty("brand").GetString()!,
                    r.TryGetProperty("reference", out var reference) ? reference.GetString() : null, context.Request.Headers["Authorization"]));
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/json";
                await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes($$"""{"id":"gw-{{Interlocked.Increment(ref next)}}"}"""));
            }
            context.Response.Close();
        }
    }

    public void Dispose() => listener.Close();
}

/// <summary>A fresh brand with customers made through the tracking API, and helpers for the messaging API.</summary>
public sealed record MessagingTestBrand(ProfileTestBrand Brand, MessagingApp App)
{
    public HttpClient Client => Brand.Test.Client;
    public long Id => Brand.Test.Id;

    public static async Task<MessagingTestBrand> CreateAsync(MessagingApp app) => new(await ProfileTestBrand.CreateAsync(app), app);

    /// <summary>A customer identified with the given traits (a phone, an email, a name...); returns the profile id once resolved.</summary>
    public async Task<long> CustomerAsync(object traits)
    {
        var userId = "u-" + Guid.NewGuid().ToString("N")[..10];
        await Brand.SendAsync(new { type = "identify", userId, traits });
        var profile = await ProfileTestBrand.LookupAsync(Client, "user_id", userId);
        return profile.GetProperty("id").GetInt64();
    }

    public static string NewPhone() => "+86139" + Random.Shared.Next(0, 100_000_000).ToString("D8");

    public async Task SmsGatewayAsync(string url, string token = "gw-secret-token-1") =>
        await Client.PutAsJsonAsync("/api/v1/messaging/channels/sms", new { settings = new { gatewayUrl = url, token } }).ReadAsync<JsonElement>();

    public async Task<long> TemplateAsync(string channel, string body, string? subject = null) =>
        (await Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = $"{channel} template", channel, subject, body }).ReadAsync<JsonElement>())
            .GetProperty("id").GetInt64();

    public Task<HttpResponseMessage> SendAsync(long profileId, string channel, long templateId, string purpose = "service", string? key = null, object? @event = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messaging/messages")
        {
            Content = JsonContent.Create(new { profileId, channel, templateId, purpose, @event }),
        };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString("N"));
        return Client.SendAsync(request);
    }

    public async Task<long> QueueAsync(long profileId, string channel, long templateId, string purpose = "service", object? @event = null) =>
        (await SendAsync(profileId, channel, templateId, purpose, null, @event).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

    public async Task ConsentAsync(long profileId, string channel, string purpose, bool granted) =>
        await Client.PostAsJsonAsync($"/api/v1/profiles/{profileId}/consents", new { channel, purpose, granted }).ReadAsync<JsonElement>();

    public Task<JsonElement> MessageAsync(long id) => Client.GetAsync($"/api/v1/messaging/messages/{id}").ReadAsync<JsonElement>();

    /// <summary>Waits (the worker runs on its own) until the message has left the queue or has the wanted status.</summary>
    public async Task<JsonElement> WaitForAsync(long id, Func<JsonElement, bool>? until = null)
    {
        until ??= m => m.GetProperty("status").GetString() != "queued";
        for (var attempt = 0; ; attempt++)
        {
            var message = await MessageAsync(id);
            if (until(message)) return message;
            Assert.True(attempt < 300, $"message {id} stayed {message}");
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until the worker has tried the message as often as given (a retry is scheduled, or it is done).</summary>
    public Task<JsonElement> WaitForAttemptsAsync(long id, int attempts) =>
        WaitForAsync(id, m => m.GetProperty("attempts").GetInt32() >= attempts || m.GetProperty("status").GetString() != "queued");

    public static string Status(JsonElement message) => message.GetProperty("status").GetString()!;
    public static string Reason(JsonElement message) => message.GetProperty("reason").GetString() ?? "";
}
