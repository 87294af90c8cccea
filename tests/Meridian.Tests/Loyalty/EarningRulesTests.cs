using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Orders;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Meridian.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Loyalty;

/// <summary>Earning rules: per-event points with caps, SKU/category exclusions, rounding, tier and campaign multipliers and how they combine.</summary>
public abstract class EarningRulesTests(LoyaltyApp app)
{
    private OrderEarning Follower => app.Services.GetRequiredService<OrderEarning>();

    [Fact]
    public async Task An_event_with_a_rule_earns_its_points_within_the_caps_per_day_and_per_member()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        var rule = await b.Client.PutAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/earning-rules",
            new { @event = "Review Posted", points = 20, perDayCap = 2, perMemberCap = 3 }).ReadAsync<JsonElement>();
        var buyer = LoyaltyTestBrand.MemberUserId;

        await b.Brand.SendAsync(Enumerable.Range(0, 4).Select(i => (object)new { type = "track", userId = buyer, @event = "Review Posted", properties = new { review_id = i } }).ToArray());
        await b.FollowUntilBalanceAsync(app, 40);
        await SettleAsync(b);
        Assert.Equal(40, await b.BalanceAsync());

        app.Clock.Advance(TimeSpan.FromDays(1));
        await b.Brand.SendAsync(
            new { type = "track", userId = buyer, @event = "Review Posted" },
            new { type = "track", userId = buyer, @event = "Review Posted" },
            new { type = "track", userId = buyer, @event = "Checked In" });
        await b.FollowUntilBalanceAsync(app, 60);
        await SettleAsync(b);

        var entries = await b.EntriesAsync();
        Assert.Equal(60, await b.BalanceAsync());
        Assert.Equal(3, entries.Count);
        Assert.All(entries, e => Assert.StartsWith($"rule {rule.GetProperty("id").GetInt64()} (Review Posted): 20 points", e.GetProperty("rule").GetString()));
    }

    [Fact]
    public async Task Excluded_skus_and_categories_earn_nothing_and_points_are_rounded_as_configured()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", rounding = "up" });
        var settings = await b.Client.PatchAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/earning",
            new { excludedSkus = new[] { "GIFT-CARD" }, excludedCategories = new[] { "tobacco" } }).ReadAsync<JsonElement>();
        Assert.Equal("up", settings.GetProperty("rounding").GetString());

        await b.Brand.SendAsync(new
        {
            type = "track", userId = LoyaltyTestBrand.MemberUserId, @event = "Order Completed",
            properties = new
            {
                order_id = "x-1", total = 180.50,
                products = new object[]
                {
                    new { sku = "GIFT-CARD", price = 50, quantity = 2 },
                    new { sku = "CIG-1", category = "Tobacco", price = 30 },
                    new { sku = "TEE", category = "apparel", price = 50.50 },
                },
            },
        });
        await b.FollowUntilBalanceAsync(app, 51);

        var entry = Assert.Single(await b.EntriesAsync());
        Assert.Contains("130 of 180.5 excluded", entry.GetProperty("rule").GetString());
    }

    [Fact]
    public async Task Tier_and_campaign_multipliers_combine_as_configured_and_the_entry_explains_how()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        var gold = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers",
            new { name = "Gold", rank = 1, qualifyingPoints = 0, multiplierPercent = 150 }).ReadAsync<JsonElement>();
        await b.EarnAsync(1);
        var now = app.Clock.GetUtcNow().UtcDateTime;
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns",
            new { name = "Double weekend", multiplierPercent = 200, startsAt = now.AddHours(-1), endsAt = now.AddDays(2) }).ReadAsync<JsonElement>();
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns",
            new { name = "Gold week", multiplierPercent = 120, startsAt = now.AddHours(-1), endsAt = now.AddDays(2), tierId = gold.GetProperty("id").GetInt64() }).ReadAsync<JsonElement>();
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns",
            new { name = "Over", multiplierPercent = 500, startsAt = now.AddDays(-9), endsAt = now.AddDays(-2) }).ReadAsync<JsonElement>();

        var multiplied = await b.EarnAsync(100);
        Assert.Equal(360, multiplied.GetProperty("points").GetInt64());
        Assert.Contains("150% (tier Gold), 200% (campaign Double weekend), 120% (campaign Gold week); multiplied", multiplied.GetProperty("rule").GetString());

        await b.Client.PatchAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/earning", new { combination = "add" }).ReadAsync<JsonElement>();
        Assert.Equal(270, (await b.EarnAsync(100)).GetProperty("points").GetInt64());
        await b.Client.PatchAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/earning", new { combination = "highest" }).ReadAsync<JsonElement>();
        var highest = await b.EarnAsync(100);
        Assert.Equal(200, highest.GetProperty("points").GetInt64());
        Assert.Contains("highest applies", highest.GetProperty("rule").GetString());

        app.Clock.Advance(TimeSpan.FromDays(3));
        Assert.Equal(150, (await b.EarnAsync(100)).GetProperty("points").GetInt64());
    }

    /// <summary>Runs the follower until it has read the brand's last logged event (events past a cap must be read, and earn nothing).</summary>
    private async Task SettleAsync(LoyaltyTestBrand b)
    {
        for (var attempt = 0; attempt < 150; attempt++)
        {
            await Follower.RunOnceAsync(default);
            await using var scope = app.Services.CreateAsyncScope();
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
            var job = await db.Set<LoyaltyJob>().AsNoTracking().SingleAsync(j => j.Name == OrderEarning.Name);
            await db.Database.OpenConnectionAsync();
            await using var command = db.Database.GetDbConnection().CreateCommand();
            // SQLite's log has no transaction ids (one writer: ids become visible in order).
            command.CommandText = db.Database.IsNpgsql()
                ? $"SELECT tx_id, id FROM events WHERE tenant_id = {b.Test.Id} ORDER BY tx_id DESC, id DESC LIMIT 1"
                : $"SELECT 0, id FROM events WHERE tenant_id = {b.Test.Id} ORDER BY id DESC LIMIT 1";
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            var (lastTx, lastId) = (reader.GetInt64(0), reader.GetInt64(1));
            if (job.PositionTx > lastTx || (job.PositionTx == lastTx && job.PositionId >= lastId)) return;
            await Task.Delay(100);
        }
        Assert.Fail("The follower never read the brand's last event.");
    }
}

public sealed class EarningRulesTestsOnSqlite(LoyaltySqliteApp app) : EarningRulesTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class EarningRulesTestsOnPostgres(LoyaltyPostgresApp app) : EarningRulesTests(app), IClassFixture<LoyaltyPostgresApp>;
