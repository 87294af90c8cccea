using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Meridian.Tests.Offers;

/// <summary>A host whose clock the tests move (coupons expire by it), with the expiry job's own timer off: tests run it.</summary>
public abstract class OffersApp : MeridianAppFixture
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);
    protected override IEnumerable<KeyValuePair<string, string>> Settings =>
        [new("Meridian:Offers:Expiry:Enabled", "false"), new("Meridian:Loyalty:Expiry:Enabled", "false"), new("Meridian:Offers:CodeGuessing:MaxMisses", "5")];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(Clock));
    }
}

public sealed class OffersSqliteApp : OffersApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
    protected override Task<string> CreateDatabaseAsync() => Task.FromResult($"Data Source={Path.Combine(Path.GetTempPath(), $"meridian-offers-{Guid.NewGuid():N}.db")}");
}

public sealed class OffersPostgresApp : OffersApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}

/// <summary>A fresh brand with customers made through the tracking API, and helpers for the offers API.</summary>
public sealed record OffersTestBrand(ProfileTestBrand Brand)
{
    public HttpClient Client => Brand.Test.Client;
    public long Id => Brand.Test.Id;

    public static async Task<OffersTestBrand> CreateAsync(MeridianAppFixture app) => new(await ProfileTestBrand.CreateAsync(app)) { App = app };

    /// <summary>Makes <paramref name="count"/> customers (<c>{prefix}-{i}</c>) and returns their profile ids in order.</summary>
    public Task<long[]> CustomersAsync(int count, string prefix = "c") => CustomersAsync(Brand.SendAsync, Client, count, prefix, ProfilesOfBrandAsync);

    public static async Task<long[]> CustomersAsync(Func<object[], Task> send, HttpClient client, int count, string prefix, Func<string, Task<Dictionary<string, long>>> profiles)
    {
        foreach (var chunk in Enumerable.Range(0, count).Chunk(500))
            await send(chunk.Select(i => (object)new { type = "identify", userId = $"{prefix}-{i}" }).ToArray());
        for (var attempt = 0; ; attempt++)
        {
            var status = await client.GetAsync("/api/v1/identity/status").ReadAsync<JsonElement>();
            if (status.GetProperty("eventsBehind").GetInt64() == 0)
            {
                var byUser = await profiles(prefix + "-");
                if (byUser.Count >= count) return Enumerable.Range(0, count).Select(i => byUser[$"{prefix}-{i}"]).ToArray();
            }
            Assert.True(attempt < 1200, "identity resolution did not catch up within two minutes");
            await Task.Delay(100);
        }
    }

    /// <summary>user_id → profile id of this brand's live profiles whose user id starts with the prefix.</summary>
    public Func<string, Task<Dictionary<string, long>>> ProfilesOfBrandAsync => async prefix =>
    {
        await using var scope = App.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var rows = await (from i in db.Set<ProfileIdentifier>()
                          join p in db.Set<Profile>() on i.ProfileId equals p.Id
                          where i.TenantId == Id && i.Type == "user_id" && i.Value.StartsWith(prefix) && p.MergedIntoId == null
                          select new { i.Value, p.Id }).ToListAsync();
        return rows.GroupBy(r => r.Value).ToDictionary(g => g.Key, g => g.First().Id);
    };

    public MeridianAppFixture App { get; init; } = null!;

    public async Task<JsonElement> TemplateAsync(object template) =>
        await Client.PostAsJsonAsync("/api/v1/offers/templates", template).ReadAsync<JsonElement>();

    public static Task<HttpResponseMessage> PostAsync(HttpClient client, string path, object body, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        return client.SendAsync(request);
    }

    public Task<HttpResponseMessage> PostAsync(string path, object body, string? key = null) => PostAsync(Client, path, body, key);

    public Task<JsonElement> IssueAsync(long templateId, long profileId) =>
        PostAsync($"/api/v1/offers/templates/{templateId}/issue", new { profileId }, Guid.NewGuid().ToString("N")).ReadAsync<JsonElement>();

    /// <summary>The domain events of this brand in the outbox, by type.</summary>
    public async Task<List<JsonElement>> EventsAsync(string type)
    {
        await using var scope = App.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var payloads = await db.Set<OutboxMessage>().Where(m => m.BrandId == Id && m.Type == type).OrderBy(m => m.Id).Select(m => m.Payload).ToListAsync();
        return payloads.Select(p => JsonDocument.Parse(p).RootElement.Clone()).ToList();
    }

    public static async Task<(int Status, JsonElement Body)> ReadAnyAsync(Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }
}
