using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Npgsql;

namespace Meridian.Tests.Loyalty;

/// <summary>
/// Two real server processes on one PostgreSQL spend from one member at once: the balance row in the database, not a
/// lock in either process, keeps the balance exact.
/// </summary>
public sealed class TwoNodeSpendTests
{
    [Fact]
    public async Task A_thousand_spends_from_two_server_processes_never_overdraw_and_every_accepted_spend_is_in_the_ledger()
    {
        await using var nodes = await TwoNodes.StartAsync("twonodeloyalty", node =>
            [new("Meridian:Loyalty:Expiry:NodeName", node), new("Meridian:Loyalty:Orders:NodeName", node)]);
        var a = TwoNodes.Client(nodes.A);
        var b = TwoNodes.Client(nodes.B);

        var programme = await a.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Club", expiry = "never" }).ReadAsync<JsonElement>();
        var source = await a.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        using var tracker = new HttpClient { BaseAddress = nodes.A.BaseAddress };
        tracker.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(source.GetProperty("writeKey").GetString() + ":")));
        await tracker.PostAsJsonAsync("/v1/identify", new { userId = "hot-member" }).ReadAsync<JsonElement>();
        var profile = await ProfileTestBrand.LookupAsync(a, "user_id", "hot-member");
        var member = await a.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programme.GetProperty("id").GetInt64()}/members",
            new { profileId = profile.GetProperty("id").GetInt64() }).ReadAsync<JsonElement>();
        var memberId = member.GetProperty("id").GetInt64();
        await Post(a, $"/api/v1/loyalty/members/{memberId}/earn", new { points = 1000 }).ReadAsync<JsonElement>();

        var outcomes = new (int Status, JsonElement Body)[1000];
        await Parallel.ForAsync(0, outcomes.Length, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            using var response = await Post(i % 2 == 0 ? a : b, $"/api/v1/loyalty/members/{memberId}/spend", new { points = 3 });
            outcomes[i] = ((int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement.Clone());
        });

        Assert.All(outcomes, o => Assert.True(o.Status == 200 || (o.Status == 409 && o.Body.GetProperty("type").GetString() == ProblemTypes.InsufficientPoints), o.Body.ToString()));
        var accepted = outcomes.Where(o => o.Status == 200).Select(o => o.Body.GetProperty("id").GetInt64()).ToHashSet();
        Assert.Equal(1000 / 3, accepted.Count);

        await using var db = new NpgsqlConnection(nodes.Database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT m.balance, (SELECT sum(points) FROM loyalty_entries WHERE member_id = m.id), (SELECT sum(remaining) FROM loyalty_lots WHERE member_id = m.id) FROM loyalty_members m WHERE m.id = @id", db);
        command.Parameters.AddWithValue("id", memberId);
        await using (var reader = await command.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal((1000L % 3, 1000L % 3, 1000L % 3), (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2)));
        }
        await using var spends = new NpgsqlCommand("SELECT id FROM loyalty_entries WHERE member_id = @id AND kind = 'spend'", db);
        spends.Parameters.AddWithValue("id", memberId);
        var inLedger = new HashSet<long>();
        await using (var reader = await spends.ExecuteReaderAsync())
            while (await reader.ReadAsync()) inLedger.Add(reader.GetInt64(0));
        Assert.Equal(accepted, inLedger);
    }

    private static Task<HttpResponseMessage> Post(HttpClient client, string path, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        return client.SendAsync(request);
    }
}
