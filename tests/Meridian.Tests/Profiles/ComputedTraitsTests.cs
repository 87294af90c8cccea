using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Profiles.Data;
using Meridian.Profiles.Identity;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>Order count, spend and lifecycle stage follow the customer's orders as they arrive.</summary>
public abstract class ComputedTraitsTests(MeridianAppFixture app)
{
    [Fact]
    public async Task Orders_and_refunds_keep_count_and_spend_in_minor_units()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "track", userId = "buyer", @event = "Order Completed", timestamp = "2026-05-01T00:00:00Z", properties = new { order_id = "o1", total = 129.00, currency = "CNY" } },
            new { type = "track", userId = "buyer", @event = "Order Completed", timestamp = "2026-06-18T00:00:00Z", properties = new { order_id = "o2", revenue = 59.9 } },
            new { type = "track", userId = "buyer", @event = "Order Refunded", timestamp = "2026-06-20T00:00:00Z", properties = new { order_id = "o2", total = 59.9 } });

        var profile = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "buyer", p => p.GetProperty("eventCount").GetInt64() == 3);
        var computed = profile.GetProperty("computed");
        Assert.Equal(2, computed.GetProperty("orderCount").GetInt64());
        Assert.Equal(12900, computed.GetProperty("totalSpendMinor").GetInt64());
        Assert.Equal(new DateTime(2026, 6, 18, 0, 0, 0, DateTimeKind.Utc), computed.GetProperty("lastOrderAt").GetDateTime().ToUniversalTime());
    }

    [Fact]
    public async Task Merging_profiles_adds_their_orders_and_splitting_gives_them_back()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(
            new { type = "track", userId = "m-a", @event = "Order Completed", properties = new { total = 10 } },
            new { type = "track", userId = "m-b", @event = "Order Completed", properties = new { total = 20 } });
        var a = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "m-a");
        var other = await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", "m-b");

        var merged = await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{a.GetProperty("id").GetInt64()}/merge", new { profileId = other.GetProperty("id").GetInt64() }).ReadAsync<JsonElement>();
        Assert.Equal(3000, merged.GetProperty("computed").GetProperty("totalSpendMinor").GetInt64());

        var merges = await b.Test.Client.GetAsync($"/api/v1/identity/merges?profileId={a.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        await b.Test.Client.PostAsync($"/api/v1/identity/merges/{merges.GetProperty("items")[0].GetProperty("id").GetInt64()}/undo", null).ReadAsync<JsonElement>();
        var back = await b.Test.Client.GetAsync($"/api/v1/profiles/{other.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        Assert.Equal(2000, back.GetProperty("computed").GetProperty("totalSpendMinor").GetInt64());
        Assert.Equal(1, back.GetProperty("computed").GetProperty("orderCount").GetInt64());
    }
}

public sealed class ComputedTraitsTestsOnSqlite(SqliteApp app) : ComputedTraitsTests(app), IClassFixture<SqliteApp>;

public sealed class ComputedTraitsTestsOnPostgres(PostgresApp app) : ComputedTraitsTests(app), IClassFixture<PostgresApp>;

public sealed class LifecycleStageTests
{
    private static readonly DateTime Now = new(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly LifecycleThresholds Defaults = new();

    private static Profile Customer(int firstSeenDaysAgo, int? lastOrderDaysAgo, int? previousOrderDaysAgo = null, int orders = 1) => new()
    {
        TenantId = 1,
        FirstSeenAt = Now.AddDays(-firstSeenDaysAgo),
        LastSeenAt = Now.AddDays(-(lastOrderDaysAgo ?? firstSeenDaysAgo)),
        LastOrderAt = lastOrderDaysAgo is { } l ? Now.AddDays(-l) : null,
        PreviousOrderAt = previousOrderDaysAgo is { } p ? Now.AddDays(-p) : null,
        OrderCount = lastOrderDaysAgo is null ? 0 : orders,
    };

    [Theory]
    [InlineData(10, 5, null, 1, "new")]
    [InlineData(400, 20, 60, 5, "active")]
    [InlineData(400, 120, null, 3, "at_risk")]
    [InlineData(400, 200, null, 3, "lapsed")]
    [InlineData(600, 10, 300, 4, "won_back")]
    public void The_lifecycle_stage_follows_the_thresholds(int firstSeen, int lastOrder, int? previousOrder, int orders, string stage) =>
        Assert.Equal(stage, OrderFacts.LifecycleStage(Customer(firstSeen, lastOrder, previousOrder, orders), Now, Defaults));

    [Fact]
    public void A_customer_who_never_ordered_is_judged_by_their_last_visit() =>
        Assert.Equal("lapsed", OrderFacts.LifecycleStage(Customer(365, null), Now, Defaults));
}
