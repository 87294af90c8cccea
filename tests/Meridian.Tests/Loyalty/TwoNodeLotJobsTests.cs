using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Npgsql;

namespace Meridian.Tests.Loyalty;

/// <summary>
/// The release and expiry jobs running in two real server processes on one PostgreSQL: every due lot is released once
/// and expired once, and when the node doing the work is killed mid-way the other takes over once its lease lapses.
/// </summary>
public sealed class TwoNodeLotJobsTests
{
    private const int Lots = 300;

    [Fact]
    public async Task Two_server_processes_release_and_expire_each_lot_exactly_once_and_survive_the_working_node_being_killed()
    {
        await using var nodes = await TwoNodes.StartAsync("twonodelots", node =>
        [
            new("Meridian:Loyalty:Release:NodeName", node), new("Meridian:Loyalty:Release:PollInterval", "00:00:00.2"),
            new("Meridian:Loyalty:Release:Lease", "00:00:03"), new("Meridian:Loyalty:Release:BatchSize", "40"),
            new("Meridian:Loyalty:Expiry:NodeName", node), new("Meridian:Loyalty:Expiry:PollInterval", "00:00:00.2"),
            new("Meridian:Loyalty:Expiry:Lease", "00:00:03"), new("Meridian:Loyalty:Expiry:BatchSize", "40"),
            new("Meridian:Loyalty:Orders:NodeName", node),
        ]);
        var a = TwoNodes.Client(nodes.A);
        var b = TwoNodes.Client(nodes.B);
        var memberId = await MemberAsync(nodes, a);
        await Parallel.ForAsync(0, Lots, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            await Post(i % 2 == 0 ? a : b, $"/api/v1/loyalty/members/{memberId}/earn", new { points = 10, pendingDays = 1 }).ReadAsync<JsonElement>());

        await using var db = new NpgsqlConnection(nodes.Database);
        await db.OpenAsync();
        Assert.Equal((0L, Lots * 10L), await BalancesAsync(db, memberId));

        // The return window ends for every lot at once; both nodes' release jobs see them due.
        await ExecuteAsync(db, "UPDATE loyalty_lots SET held_until = now() - interval '1 minute' WHERE member_id = @id", memberId);
        await UntilAsync(db, memberId, "release", Lots);
        Assert.Equal((Lots * 10L, 0L), await BalancesAsync(db, memberId));

        // Every lot falls due to expire; the node that holds the expiry lease is killed after its first expiries.
        await ExecuteAsync(db, "UPDATE loyalty_lots SET expires_at = now() - interval '1 minute' WHERE member_id = @id", memberId);
        await UntilAsync(db, memberId, "expire", 1);
        var owner = await ScalarAsync<string>(db, "SELECT lease_owner FROM loyalty_jobs WHERE name = 'points-expiry'");
        (owner == "node-a" ? nodes.A : nodes.B).Kill();
        await UntilAsync(db, memberId, "expire", Lots);
        await Task.Delay(1000);

        Assert.Equal((0L, 0L), await BalancesAsync(db, memberId));
        Assert.Equal(Lots, await ScalarAsync<long>(db, $"SELECT count(DISTINCT source_key) FROM loyalty_entries WHERE member_id = {memberId} AND kind = 'release'"));
        Assert.Equal(Lots, await ScalarAsync<long>(db, $"SELECT count(*) FROM loyalty_entries WHERE member_id = {memberId} AND kind = 'release'"));
        Assert.Equal(Lots, await ScalarAsync<long>(db, $"SELECT count(DISTINCT d.lot_id) FROM loyalty_lot_draws d JOIN loyalty_entries e ON e.id = d.entry_id WHERE e.member_id = {memberId} AND e.kind = 'expire'"));
        Assert.Equal(Lots, await ScalarAsync<long>(db, $"SELECT count(*) FROM loyalty_entries WHERE member_id = {memberId} AND kind = 'expire'"));
        Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT coalesce(sum(points), 0)::bigint FROM loyalty_entries WHERE member_id = {memberId}"));
        Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT coalesce(sum(remaining), 0)::bigint FROM loyalty_lots WHERE member_id = {memberId}"));
    }

    private static async Task<long> MemberAsync(TwoNodes nodes, HttpClient a)
    {
        var programme = await a.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Club", expiry = "after_days", expiryDays = 365 }).ReadAsync<JsonElement>();
        var source = await a.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        using var tracker = new HttpClient { BaseAddress = nodes.A.BaseAddress };
        tracker.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(source.GetProperty("writeKey").GetString() + ":")));
        await tracker.PostAsJsonAsync("/v1/identify", new { userId = "lot-member" }).ReadAsync<JsonElement>();
        var profile = await ProfileTestBrand.LookupAsync(a, "user_id", "lot-member");
        var member = await a.PostAsJsonAsync($"/api/v1/loyalty/programmes/{programme.GetProperty("id").GetInt64()}/members",
            new { profileId = profile.GetProperty("id").GetInt64() }).ReadAsync<JsonElement>();
        return member.GetProperty("id").GetInt64();
    }

    private static async Task UntilAsync(NpgsqlConnection db, long memberId, string kind, long count)
    {
        for (var attempt = 0; attempt < 600; attempt++)
        {
            if (await ScalarAsync<long>(db, $"SELECT count(*) FROM loyalty_entries WHERE member_id = {memberId} AND kind = '{kind}'") >= count) return;
            await Task.Delay(100);
        }
        Assert.Fail($"Fewer than {count} {kind} entries after a minute.");
    }

    private static async Task<(long Balance, long Pending)> BalancesAsync(NpgsqlConnection db, long memberId)
    {
        await using var command = new NpgsqlCommand("SELECT balance, pending FROM loyalty_members WHERE id = @id", db);
        command.Parameters.AddWithValue("id", memberId);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static async Task ExecuteAsync(NpgsqlConnection db, string sql, long memberId)
    {
        await using var command = new NpgsqlCommand(sql, db);
        command.Parameters.AddWithValue("id", memberId);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection db, string sql)
    {
        await using var command = new NpgsqlCommand(sql, db);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private static Task<HttpResponseMessage> Post(HttpClient client, string path, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        return client.SendAsync(request);
    }
}
