using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Journeys.Engine;
using Meridian.Journeys.Triggers;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Offers;
using Meridian.Tests.Profiles;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Meridian.Tests.Journeys;

/// <summary>A host whose clock the tests move; the engine polls every 50 ms, failed actions retry after 1 minute, 2 minutes...</summary>
public abstract class JourneysApp : MeridianAppFixture
{
    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 6, 1, 8, 0, 0, TimeSpan.Zero));

    protected override IEnumerable<KeyValuePair<string, string>> Settings =>
    [
        .. ClockPollingJobsOff,
        new("Meridian:Messaging:Delivery:PollInterval", "00:00:00.100"),
        new("Meridian:Journeys:PollInterval", "00:00:00.050"), new("Meridian:Journeys:RetryBase", "00:01:00"), new("Meridian:Journeys:MaxAttempts", "3"),
    ];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(Clock));
    }

    /// <summary>Moves the clock and wakes the engine, as time passing would.</summary>
    public void Advance(TimeSpan by)
    {
        Clock.Advance(by);
        Services.GetRequiredService<JourneySignal>().Notify();
    }

    public Task<int> RunDateTriggersAsync() => Services.GetRequiredService<DateTrigger>().RunOnceAsync(default);
}

public sealed class JourneysSqliteApp : JourneysApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
    protected override Task<string> CreateDatabaseAsync() => Task.FromResult($"Data Source={Path.Combine(Path.GetTempPath(), $"meridian-journeys-{Guid.NewGuid():N}.db")}");
}

public sealed class JourneysPostgresApp : JourneysApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}

/// <summary>A fresh brand with a tracking source, and helpers for the journeys API.</summary>
public sealed record JourneysTestBrand(ProfileTestBrand Brand, JourneysApp App)
{
    public HttpClient Client => Brand.Test.Client;
    public long Id => Brand.Test.Id;

    public static async Task<JourneysTestBrand> CreateAsync(JourneysApp app) => new(await ProfileTestBrand.CreateAsync(app), app);

    /// <summary>A customer made through the tracking API (identify with traits); returns the profile id.</summary>
    public async Task<long> CustomerAsync(string userId, object? traits = null)
    {
        await Brand.SendAsync(new { type = "identify", userId, traits = traits ?? new { } });
        return (await ProfileTestBrand.LookupAsync(Client, "user_id", userId)).GetProperty("id").GetInt64();
    }

    /// <summary>Creates and publishes a journey; returns its id.</summary>
    public async Task<long> PublishedAsync(object graph, string? name = null)
    {
        var created = await Client.PostAsJsonAsync("/api/v1/journeys", new { name = name ?? "J " + Guid.NewGuid().ToString("N")[..8], graph }).ReadAsync<JsonElement>();
        var id = created.GetProperty("id").GetInt64();
        await Client.PostAsync($"/api/v1/journeys/{id}/publish", null).ReadAsync<JsonElement>();
        return id;
    }

    public async Task<JsonElement> EnterAsync(long journey, long profileId, object? properties = null, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/journeys/{journey}/entries") { Content = JsonContent.Create(new { profileId, properties }) };
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        return (await Client.SendAsync(request).ReadAsync<JsonElement>())[0];
    }

    public async Task<List<JsonElement>> InstancesAsync(long journey, long? profileId = null) =>
        (await Client.GetAsync($"/api/v1/journeys/{journey}/instances?limit=200" + (profileId is { } p ? $"&profileId={p}" : "")).ReadAsync<JsonElement>())
            .GetProperty("items").EnumerateArray().ToList();

    public Task<JsonElement> InstanceAsync(long journey, long instance) => Client.GetAsync($"/api/v1/journeys/{journey}/instances/{instance}").ReadAsync<JsonElement>();

    /// <summary>Waits (on the machine's clock: the engine runs in the background) until the instance satisfies <paramref name="done"/>.</summary>
    public async Task<JsonElement> UntilAsync(long journey, long instance, Func<JsonElement, bool> done, string what)
    {
        for (var attempt = 0; ; attempt++)
        {
            var found = await InstanceAsync(journey, instance);
            if (done(found)) return found;
            Assert.True(attempt < 600, $"instance {instance} never got {what}: {found}");
            await Task.Delay(50);
        }
    }

    public Task<JsonElement> UntilAtAsync(long journey, long instance, string node, string state) =>
        UntilAsync(journey, instance, i => i.GetProperty("currentNode").GetString() == node && i.GetProperty("state").GetString() == state, $"to {node} ({state})");

    public Task<JsonElement> UntilStateAsync(long journey, long instance, string state) =>
        UntilAsync(journey, instance, i => i.GetProperty("state").GetString() == state, $"state {state}");

    public Task<JsonElement> StatsAsync(long journey) => Client.GetAsync($"/api/v1/journeys/{journey}/stats").ReadAsync<JsonElement>();

    public static IEnumerable<string> Path(JsonElement instance) =>
        instance.GetProperty("steps").EnumerateArray().Select(s => $"{s.GetProperty("node").GetString()}:{s.GetProperty("outcome").GetString()}");

    public Task<List<JsonElement>> EventsAsync(string type) => new OffersTestBrand(Brand) { App = App }.EventsAsync(type);
}
