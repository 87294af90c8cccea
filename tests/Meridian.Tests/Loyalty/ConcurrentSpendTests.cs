using System.Text.Json;
using Meridian.Hosting;

namespace Meridian.Tests.Loyalty;

/// <summary>Many spends at once against one member: the database keeps the balance exact.</summary>
public abstract class ConcurrentSpendTests(LoyaltyApp app)
{
    [Fact]
    public async Task Two_hundred_parallel_spends_never_overdraw_and_every_accepted_spend_is_in_the_ledger()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.EarnAsync(1000);

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ =>
        {
            using var response = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 7 });
            return ((int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
        }));

        Assert.All(responses, r => Assert.True(r.Item1 == 200 || (r.Item1 == 409 && r.Item2.GetProperty("type").GetString() == ProblemTypes.InsufficientPoints), r.Item2.ToString()));
        var accepted = responses.Where(r => r.Item1 == 200).Select(r => r.Item2.GetProperty("id").GetInt64()).ToHashSet();
        Assert.Equal(1000 / 7, accepted.Count);
        Assert.Equal(1000 % 7, await b.BalanceAsync());
        var entries = await b.EntriesAsync();
        Assert.Equal(accepted, entries.Where(e => e.GetProperty("kind").GetString() == "spend").Select(e => e.GetProperty("id").GetInt64()).ToHashSet());
        Assert.Equal(1000 % 7, entries.Sum(e => e.GetProperty("points").GetInt64()));
        Assert.All(responses.Where(r => r.Item1 == 409), r => Assert.True(r.Item2.GetProperty("shortfall").GetInt64() > 0));
    }

    [Fact]
    public async Task Parallel_retries_with_one_key_move_the_points_once_and_all_get_the_same_answer()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.EarnAsync(100);

        var bodies = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
        {
            using var response = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/spend", new { points = 30 }, "one-key");
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));

        Assert.All(bodies, r => Assert.Equal((200, bodies[0].Item2), r));
        Assert.Equal(70, await b.BalanceAsync());
    }
}

public sealed class ConcurrentSpendTestsOnSqlite(LoyaltySqliteApp app) : ConcurrentSpendTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class ConcurrentSpendTestsOnPostgres(LoyaltyPostgresApp app) : ConcurrentSpendTests(app), IClassFixture<LoyaltyPostgresApp>;
