using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Meridian.Tests.Infrastructure;

/// <summary>
/// One Meridian host on a real database of its own, shared by the tests of one class. Tests create the brands,
/// keys and rows they need through the API (see <see cref="NewBrandAsync"/>), so none depends on another's data.
/// </summary>
public abstract class MeridianAppFixture : WebApplicationFactory<Program>, IAsyncLifetime
{
    public const string AdminKey = "mdn_sk_TestAdminKey0000000000000000000";
    public const string WriteKey = "mdn_wk_TestWriteKey000000000000000000";
    public static readonly JsonSerializerOptions Json = MeridianJson.Options;

    public abstract DatabaseProvider Provider { get; }
    public string ConnectionString { get; private set; } = "";
    public HttpClient Admin { get; private set; } = null!;

    protected abstract Task<string> CreateDatabaseAsync();

    /// <summary>Extra settings a test class needs (e.g. a low rate limit).</summary>
    protected virtual IEnumerable<KeyValuePair<string, string>> Settings => [];

    /// <summary>
    /// For hosts on a fake clock: the jobs that poll on it, off. Moving such a clock by days steps through every tick of
    /// each of them (a one-second poll is 86,400 database rounds a day), which on a loaded machine takes minutes.
    /// </summary>
    protected static readonly KeyValuePair<string, string>[] ClockPollingJobsOff =
    [
        new("Meridian:Offers:Expiry:Enabled", "false"), new("Meridian:Loyalty:Expiry:Enabled", "false"), new("Meridian:Loyalty:Release:Enabled", "false"),
        new("Meridian:Loyalty:TierReview:Enabled", "false"), new("Meridian:Loyalty:Orders:Enabled", "false"), new("Meridian:Profiles:Scoring:Enabled", "false"),
    ];

    public async Task InitializeAsync()
    {
        ConnectionString = await CreateDatabaseAsync();
        Admin = ClientWithKey(AdminKey);
    }

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        // The stopped host's connections stay open, idle in their pool, for minutes (Npgsql prunes them after 300 s); over
        // a run of many test classes on one server they add up to its connection limit.
        if (Provider == DatabaseProvider.Postgres && ConnectionString.Length > 0) await PostgresServer.DropDatabaseAsync(ConnectionString);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Meridian:Database:Provider", Provider.ToString());
        builder.UseSetting("Meridian:Database:ConnectionString", ConnectionString);
        builder.UseSetting("Meridian:Bootstrap:AdminApiKey", AdminKey);
        builder.UseSetting("Meridian:Bootstrap:WriteKey", WriteKey);
        builder.UseSetting("Meridian:RateLimit:PermitsPerSecond", "100000");
        builder.UseSetting("Meridian:RateLimit:Burst", "100000");
        builder.UseSetting("Meridian:Outbox:PollInterval", "00:00:00.100");
        foreach (var (key, value) in Settings) builder.UseSetting(key, value);
    }

    public HttpClient ClientWithKey(string key, string? brand = null)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (brand is not null) client.DefaultRequestHeaders.Add("Meridian-Brand", brand);
        return client;
    }

    /// <summary>A client of the tracking API: the source's write key as the HTTP Basic user name, as Segment's SDKs send it.</summary>
    public HttpClient WriteKeyClient(string writeKey)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(writeKey + ":")));
        return client;
    }

    /// <summary>A brand of its own for the calling test, with a brand-scoped key of the given role.</summary>
    public async Task<TestBrand> NewBrandAsync(string role = "admin")
    {
        var slug = "b-" + Guid.NewGuid().ToString("N")[..12];
        var brand = await Admin.PostAsJsonAsync("/api/v1/brands", new { slug, name = "Brand " + slug }).ReadAsync<JsonElement>();
        var key = await NewKeyAsync(role, slug);
        return new TestBrand(brand.GetProperty("id").GetInt64(), slug, key, ClientWithKey(key));
    }

    /// <summary>A new key (shown once) of the given role, scoped to a brand slug or (null) to the group.</summary>
    public async Task<string> NewKeyAsync(string role, string? brand)
    {
        var created = await Admin.PostAsJsonAsync("/api/v1/keys", new { name = $"{role} key", role, brand }).ReadAsync<JsonElement>();
        return created.GetProperty("key").GetString()!;
    }
}

public sealed record TestBrand(long Id, string Slug, string Key, HttpClient Client);

public class SqliteApp : MeridianAppFixture
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;

    protected override Task<string> CreateDatabaseAsync()
    {
        var dir = Path.Combine(Path.GetTempPath(), "meridian-tests");
        Directory.CreateDirectory(dir);
        return Task.FromResult($"Data Source={Path.Combine(dir, Guid.NewGuid().ToString("N") + ".db")}");
    }
}

public class PostgresApp : MeridianAppFixture
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;

    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}

public static class HttpTestExtensions
{
    /// <summary>Reads a success body, failing the test with the response text if the call did not succeed.</summary>
    public static async Task<T> ReadAsync<T>(this Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: {body}");
        return JsonSerializer.Deserialize<T>(body, MeridianAppFixture.Json)!;
    }

    /// <summary>Asserts a problem-details response: status, media type and stable type; returns the body.</summary>
    public static async Task<JsonElement> ProblemAsync(this Task<HttpResponseMessage> call, int status, string type)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonSerializer.Deserialize<JsonElement>(body);
        Assert.Equal(type, problem.GetProperty("type").GetString());
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        return problem;
    }
}
