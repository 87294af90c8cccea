using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Orders;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Meridian.Tests.Loyalty;

/// <summary>A host whose clock the tests move (lots expire by it), with the loyalty jobs' own timers off: tests run them.</summary>
public abstract class LoyaltyApp : MeridianAppFixture
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);
    protected override IEnumerable<KeyValuePair<string, string>> Settings =>
        [new("Meridian:Loyalty:Expiry:Enabled", "false"), new("Meridian:Loyalty:Release:Enabled", "false"), new("Meridian:Loyalty:TierReview:Enabled", "false"), new("Meridian:Loyalty:Orders:Enabled", "false")];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(Clock));
    }
}

public sealed class LoyaltySqliteApp : LoyaltyApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
    protected override Task<string> CreateDatabaseAsync() => Task.FromResult($"Data Source={Path.Combine(Path.GetTempPath(), $"meridian-loyalty-{Guid.NewGuid():N}.db")}");
}

public sealed class LoyaltyPostgresApp : LoyaltyApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}

/// <summary>A fresh brand running a programme, with one enrolled member made from a real profile.</summary>
public sealed record LoyaltyTestBrand(ProfileTestBrand Brand, long ProgrammeId, long MemberId, long ProfileId)
{
    public TestBrand Test => Brand.Test;
    public HttpClient Client => Test.Client;
    public const string MemberUserId = "member-1";

    public static async Task<LoyaltyTestBrand> CreateAsync(MeridianAppFixture app, object? programme = null)
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var created = await b.Test.Client.PostAsJsonAsync("/api/v1/loyalty/programmes",
            programme ?? new { name = "Club", expiry = "after_days", expiryDays = 365, expiringNoticeDays = 30 }).ReadAsync<JsonElement>();
        var programmeId = created.GetProperty("id").GetInt64();
        var profileId = await NewProfileAsync(b, MemberUserId);
        var member = await b.Test.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programmeId}/members", new { profileId }).ReadAsync<JsonElement>();
        return new LoyaltyTestBrand(b, programmeId, member.GetProperty("id").GetInt64(), profileId);
    }

    public static async Task<long> NewProfileAsync(ProfileTestBrand b, string userId)
    {
        await b.SendAsync(new { type = "identify", userId, traits = new { plan = "member" } });
        return (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", userId)).GetProperty("id").GetInt64();
    }

    /// <summary>POSTs with an Idempotency-Key (a new one unless given).</summary>
    public Task<HttpResponseMessage> PostAsync(string path, object body, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString("N"));
        return Client.SendAsync(request);
    }

    public Task<JsonElement> EarnAsync(long points, string? key = null) =>
        PostAsync($"/api/v1/loyalty/members/{MemberId}/earn", new { points }, key).ReadAsync<JsonElement>();

    public Task<JsonElement> SpendAsync(long points, string? key = null) =>
        PostAsync($"/api/v1/loyalty/members/{MemberId}/spend", new { points }, key).ReadAsync<JsonElement>();

    public async Task<long> BalanceAsync() =>
        (await Client.GetAsync($"/api/v1/loyalty/members/{MemberId}/balance").ReadAsync<JsonElement>()).GetProperty("balance").GetInt64();

    public async Task<List<JsonElement>> EntriesAsync()
    {
        var all = new List<JsonElement>();
        for (string? cursor = null; ;)
        {
            var page = await Client.GetAsync($"/api/v1/loyalty/members/{MemberId}/entries?limit=200" + (cursor is null ? "" : $"&cursor={cursor}")).ReadAsync<JsonElement>();
            all.AddRange(page.GetProperty("items").EnumerateArray());
            if (page.GetProperty("nextCursor").ValueKind == JsonValueKind.Null) return all;
            cursor = page.GetProperty("nextCursor").GetString();
        }
    }

    public Task<JsonElement> BalanceDtoAsync() => Client.GetAsync($"/api/v1/loyalty/members/{MemberId}/balance").ReadAsync<JsonElement>();

    /// <summary>Runs the order-earning follower until the member's balance (as <c>GET .../balance</c> shows it) is as expected.</summary>
    public async Task FollowUntilAsync(MeridianAppFixture app, Func<JsonElement, bool> done)
    {
        var follower = app.Services.GetRequiredService<OrderEarning>();
        var balance = default(JsonElement);
        for (var attempt = 0; attempt < 150; attempt++)
        {
            if (attempt > 0) await Task.Delay(100);
            await follower.RunOnceAsync(default);
            balance = await BalanceDtoAsync();
            if (done(balance)) return;
        }
        Assert.Fail($"The balance never got there: {balance}");
    }

    public Task FollowUntilBalanceAsync(MeridianAppFixture app, long expected) =>
        FollowUntilAsync(app, b => b.GetProperty("balance").GetInt64() == expected);

    /// <summary>The domain events of this brand in the outbox, by type.</summary>
    public Task<List<JsonElement>> EventsAsync(MeridianAppFixture app, string type) => EventsOfAsync(app, Test.Id, type);

    /// <summary>The domain events published under a brand (where they happened), by type.</summary>
    public static async Task<List<JsonElement>> EventsOfAsync(MeridianAppFixture app, long brandId, string type)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var payloads = await db.Set<OutboxMessage>().Where(m => m.BrandId == brandId && m.Type == type).OrderBy(m => m.Id).Select(m => m.Payload).ToListAsync();
        return payloads.Select(p => JsonDocument.Parse(p).RootElement.Clone()).ToList();
    }
}
