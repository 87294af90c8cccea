using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Hosting;

/// <summary>Each API key has its own request budget; past it, 429 with Retry-After, and other keys are unaffected.</summary>
public abstract class RateLimitTests(MeridianAppFixture app)
{
    [Fact]
    public async Task A_key_over_its_rate_gets_429_with_Retry_After_while_another_key_is_served()
    {
        var greedy = await app.NewBrandAsync("analyst");
        var other = await app.NewBrandAsync("analyst");

        HttpResponseMessage? limited = null;
        for (var i = 0; i < 20 && limited is null; i++)
        {
            var response = await greedy.Client.GetAsync("/api/v1/brands");
            if ((int)response.StatusCode == 429) limited = response;
        }
        Assert.NotNull(limited);
        Assert.True(int.Parse(limited.Headers.GetValues("Retry-After").Single()) >= 1);
        await Task.FromResult(limited).ProblemAsync(429, ProblemTypes.RateLimited);

        using var served = await other.Client.GetAsync("/api/v1/brands");
        Assert.True(served.IsSuccessStatusCode);
    }
}

/// <summary>Hosts with a tiny budget: 1 request per second, bursts of 5.</summary>
public sealed class RateLimitedSqliteApp : SqliteApp
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings => [new("Meridian:RateLimit:PermitsPerSecond", "1"), new("Meridian:RateLimit:Burst", "5")];
}

public sealed class RateLimitedPostgresApp : PostgresApp
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings => [new("Meridian:RateLimit:PermitsPerSecond", "1"), new("Meridian:RateLimit:Burst", "5")];
}

public sealed class RateLimitTestsOnSqlite(RateLimitedSqliteApp app) : RateLimitTests(app), IClassFixture<RateLimitedSqliteApp>;

public sealed class RateLimitTestsOnPostgres(RateLimitedPostgresApp app) : RateLimitTests(app), IClassFixture<RateLimitedPostgresApp>;
