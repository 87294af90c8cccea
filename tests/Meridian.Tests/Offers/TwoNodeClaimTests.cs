using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Npgsql;

namespace Meridian.Tests.Offers;

/// <summary>
/// The flash sale on two real server processes over one PostgreSQL: each node commits its claims in groups, and the
/// stock row and the customers' count rows in the database, not either process, keep the total exact.
/// </summary>
public sealed class TwoNodeClaimTests
{
    [Fact]
    public async Task Ten_thousand_claims_from_distinct_customers_sent_to_two_server_processes_give_out_exactly_a_stock_of_a_thousand()
    {
        await using var nodes = await TwoNodes.StartAsync("twonodeoffers", node =>
            [new("Meridian:Offers:Expiry:NodeName", node), new("Meridian:Loyalty:Expiry:NodeName", node), new("Meridian:Loyalty:Orders:NodeName", node)]);
        using var a = Client(nodes.A);
        using var b = Client(nodes.B);

        var source = await a.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        using var tracker = new HttpClient { BaseAddress = nodes.A.BaseAddress };
        tracker.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(source.GetProperty("writeKey").GetString() + ":")));
        var customers = await OffersTestBrand.CustomersAsync(
            async batch => await tracker.PostAsJsonAsync("/v1/batch", new { batch }).ReadAsync<JsonElement>(), a, 10_000, "fan", ProfilesAsync(nodes.Database));
        var template = await a.PostAsJsonAsync("/api/v1/offers/templates", new { name = "Flash", kind = "amount_off", value = 2000, stock = 1000, perCustomerLimit = 1 })
            .ReadAsync<JsonElement>();
        var id = template.GetProperty("id").GetInt64();

        var outcomes = await Task.WhenAll(customers.Select((p, i) => OffersTestBrand.ReadAnyAsync(
            OffersTestBrand.PostAsync(i % 2 == 0 ? a : b, $"/api/v1/offers/templates/{id}/claim", new { profileId = p }))));

        Assert.DoesNotContain(outcomes, o => o.Status >= 500);
        Assert.Equal(1000, outcomes.Count(o => o.Status == 200));
        Assert.Equal(9000, outcomes.Count(o => o.Status == 409 && o.Body.GetProperty("type").GetString() == ProblemTypes.OutOfStock));
        var won = outcomes.Where(o => o.Status == 200).Select(o => o.Body.GetProperty("id").GetInt64()).ToHashSet();
        Assert.Equal(1000, outcomes.Where(o => o.Status == 200).Select(o => o.Body.GetProperty("profileId").GetInt64()).Distinct().Count());

        await using var db = new NpgsqlConnection(nodes.Database);
        await db.OpenAsync();
        await using (var stock = new NpgsqlCommand("SELECT remaining, issued, (SELECT count(*) FROM offer_coupons WHERE template_id = @id) FROM offer_templates WHERE id = @id", db))
        {
            stock.Parameters.AddWithValue("id", id);
            await using var reader = await stock.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal((0L, 1000L, 1000L), (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
        }
        await using var ids = new NpgsqlCommand("SELECT id FROM offer_coupons WHERE template_id = @id", db);
        ids.Parameters.AddWithValue("id", id);
        var stored = new HashSet<long>();
        await using (var reader = await ids.ExecuteReaderAsync())
            while (await reader.ReadAsync()) stored.Add(reader.GetInt64(0));
        Assert.Equal(won, stored);
    }

    private static HttpClient Client(ServerProcess node)
    {
        // Many connections at once, and time to spare on a loaded machine: this proves exactness, not speed.
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TwoNodes.AdminKey);
        client.DefaultRequestHeaders.Add("Meridian-Brand", "demo");
        return client;
    }

    internal static Func<string, Task<Dictionary<string, long>>> ProfilesAsync(string database) => async prefix =>
    {
        await using var db = new NpgsqlConnection(database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT i.value, p.id FROM profile_identifiers i JOIN profiles p ON p.id = i.profile_id
            WHERE i.type = 'user_id' AND i.value LIKE @prefix AND p.merged_into_id IS NULL
            """, db);
        command.Parameters.AddWithValue("prefix", prefix + "%");
        var result = new Dictionary<string, long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) result[reader.GetString(0)] = reader.GetInt64(1);
        return result;
    };
}
