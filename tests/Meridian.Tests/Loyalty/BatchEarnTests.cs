using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Loyalty;

/// <summary><c>POST /api/v1/loyalty/postings/earn-batch</c>: many earnings in one request, by the single earn's rules, safe to resend.</summary>
public abstract class BatchEarnTests(LoyaltyApp app)
{
    private const string Path = "/api/v1/loyalty/postings/earn-batch";

    [Fact]
    public async Task A_batch_posts_every_good_item_and_rejects_the_bad_ones_with_reasons()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var second = await EnrolAsync(b, "member-2");
        var foreign = await LoyaltyTestBrand.CreateAsync(app);

        var results = await BatchAsync(b,
            new { memberId = b.MemberId, points = 100, sourceKey = "pos-1", reference = "till 4" },
            new { memberId = second, points = 40, sourceKey = "pos-2" },
            new { memberId = 999_999_999L, points = 10, sourceKey = "pos-3" },
            new { memberId = foreign.MemberId, points = 10, sourceKey = "pos-4" },
            new { memberId = second, points = 0, sourceKey = "pos-5" },
            new { memberId = second, points = -5, sourceKey = "pos-6" },
            new { memberId = second, points = 10 },
            new { memberId = second, points = 10, sourceKey = "  " },
            new { memberId = b.MemberId, points = 25, sourceKey = "pos-7" },
            new { memberId = b.MemberId, points = 999, sourceKey = "pos-1" });

        Assert.Equal(Enumerable.Range(0, 10), results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(["posted", "posted", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected", "posted", "duplicate"],
            results.Select(r => r.GetProperty("status").GetString()));
        Assert.Equal([ProblemTypes.NotFound, ProblemTypes.NotFound, ProblemTypes.Validation, ProblemTypes.Validation, ProblemTypes.Validation, ProblemTypes.Validation],
            results[2..8].Select(r => r.GetProperty("problem").GetProperty("type").GetString()));
        Assert.Contains("999999999", results[2].GetProperty("problem").GetProperty("detail").GetString());
        Assert.Contains("sourceKey", results[6].GetProperty("problem").GetProperty("detail").GetString());
        Assert.All(results.Where(r => r.GetProperty("status").GetString() == "rejected"), r => Assert.Equal(JsonValueKind.Null, r.GetProperty("entry").ValueKind));

        var first = results[0].GetProperty("entry");
        Assert.Equal(100, first.GetProperty("points").GetInt64());
        Assert.Equal("till 4", first.GetProperty("reference").GetString());
        Assert.Equal("api: 100 points", first.GetProperty("rule").GetString());
        Assert.Equal(b.Test.Id, first.GetProperty("brandId").GetInt64());
        Assert.Equal(100, first.GetProperty("lot").GetProperty("granted").GetInt64());
        Assert.Equal(125, results[8].GetProperty("entry").GetProperty("balanceAfter").GetInt64());
        Assert.Equal(first.GetProperty("id").GetInt64(), results[9].GetProperty("entry").GetProperty("id").GetInt64());
        Assert.Equal(125, await b.BalanceAsync());
        Assert.Equal(40, await BalanceOfAsync(b, second));
        Assert.Equal(0, await foreign.BalanceAsync());
        var earned = await b.EventsAsync(app, "points.earned");
        Assert.Equal([100L, 40, 25], earned.Select(e => e.GetProperty("points").GetInt64()).Order().Reverse());

        // The rejects are kept with their reasons, for the brand that sent them only.
        var stored = (await b.Client.GetAsync("/api/v1/loyalty/postings/rejected?limit=200").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal([2, 3, 4, 5, 6, 7], stored.Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(results[2..8].Select(r => r.GetProperty("problem").GetProperty("type").GetString()),
            stored.Select(r => r.GetProperty("problem").GetProperty("type").GetString()));
        Assert.Equal(results[2..8].Select(r => r.GetProperty("problem").GetProperty("detail").GetString()),
            stored.Select(r => r.GetProperty("problem").GetProperty("detail").GetString()));
        Assert.Equal(("pos-3", 999_999_999L, 10L), (stored[0].GetProperty("sourceKey").GetString(), stored[0].GetProperty("memberId").GetInt64(), stored[0].GetProperty("points").GetInt64()));
        Assert.Empty((await foreign.Client.GetAsync("/api/v1/loyalty/postings/rejected").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
        Assert.Contains(earned, e => e.GetProperty("entryId").GetInt64() == first.GetProperty("id").GetInt64() && e.GetProperty("balance").GetInt64() == 100
            && e.GetProperty("profileId").GetInt64() == b.ProfileId);
    }

    [Fact]
    public async Task Resending_the_same_batch_credits_nothing_more_and_returns_the_first_entries()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var second = await EnrolAsync(b, "member-2");
        object[] batch =
        [
            new { memberId = b.MemberId, points = 100, sourceKey = "eod-1" },
            new { memberId = second, points = 30, sourceKey = "eod-2", pendingDays = 14 },
            new { memberId = b.MemberId, points = 5, sourceKey = "eod-3" },
        ];

        var first = await BatchAsync(b, batch);
        var again = await BatchAsync(b, batch);

        Assert.All(first, r => Assert.Equal("posted", r.GetProperty("status").GetString()));
        Assert.All(again, r => Assert.Equal("duplicate", r.GetProperty("status").GetString()));
        Assert.Equal(first.Select(r => r.GetProperty("entry").GetProperty("id").GetInt64()), again.Select(r => r.GetProperty("entry").GetProperty("id").GetInt64()));
        Assert.Equal(105, await b.BalanceAsync());
        Assert.Equal(3, (await b.EntriesAsync()).Count + (await EntriesOfAsync(b, second)).Count);
        Assert.Equal(3, (await b.EventsAsync(app, "points.earned")).Count);
    }

    [Fact]
    public async Task An_idempotency_key_replays_the_first_response_byte_for_byte_and_refuses_another_body_with_422()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var body = new { postings = new[] { new { memberId = b.MemberId, points = 10, sourceKey = "k-1" } } };

        using var first = await b.PostAsync(Path, body, "batch-1");
        using var again = await b.PostAsync(Path, body, "batch-1");
        var other = await b.PostAsync(Path, new { postings = new[] { new { memberId = b.MemberId, points = 11, sourceKey = "k-2" } } }, "batch-1")
            .ProblemAsync(422, ProblemTypes.IdempotencyKeyReused);

        Assert.Equal(200, (int)first.StatusCode);
        Assert.Equal(await first.Content.ReadAsByteArrayAsync(), await again.Content.ReadAsByteArrayAsync());
        Assert.Contains("different request", other.GetProperty("detail").GetString());
        Assert.Equal(10, await b.BalanceAsync());
    }

    [Fact]
    public async Task Multipliers_holds_and_expiry_match_what_the_single_earn_gives_for_twin_members()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "after_days", expiryDays = 90, rounding = "nearest" });
        var twin = await EnrolAsync(b, "member-twin");
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers",
            new { name = "Gold", rank = 1, qualifyingPoints = 0, multiplierPercent = 150 }).ReadAsync<JsonElement>();
        var now = app.Clock.GetUtcNow().UtcDateTime;
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns",
            new { name = "Double weekend", multiplierPercent = 200, startsAt = now.AddHours(-1), endsAt = now.AddDays(2) }).ReadAsync<JsonElement>();
        (long Points, int PendingDays)[] postings = [(1, 0), (100, 0), (33, 14), (7, 0), (1, 30)];

        foreach (var (points, pendingDays) in postings)
            await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/earn", new { points, pendingDays, reference = $"r-{points}" }).ReadAsync<JsonElement>();
        // The first posting moves the twin up to Gold (the ledger's path); the rest go in one batch (the set-based path).
        await BatchAsync(b, new { memberId = twin, points = postings[0].Points, sourceKey = "t-0", reference = "r-1", pendingDays = 0 });
        var rest = await BatchAsync(b, [.. postings.Skip(1).Select((p, i) => (object)new { memberId = twin, points = p.Points, sourceKey = $"t-{i + 1}", reference = $"r-{p.Points}", pendingDays = p.PendingDays })]);

        Assert.All(rest, r => Assert.Equal("posted", r.GetProperty("status").GetString()));
        var single = await b.EntriesAsync();
        var batched = await EntriesOfAsync(b, twin);
        Assert.Equal(postings.Length, batched.Count);
        Assert.Equal(single.Select(Comparable), batched.Select(Comparable));
        Assert.Contains("150% (tier Gold), 200% (campaign Double weekend); multiplied", batched[2].GetProperty("rule").GetString());
        Assert.Equal(300, batched[1].GetProperty("points").GetInt64());
        Assert.Equal(99, batched[2].GetProperty("pending").GetInt64());
        var singleMember = await b.Client.GetAsync($"/api/v1/loyalty/members/{b.MemberId}").ReadAsync<JsonElement>();
        var twinMember = await b.Client.GetAsync($"/api/v1/loyalty/members/{twin}").ReadAsync<JsonElement>();
        foreach (var field in new[] { "balance", "pending", "owed", "qualifyingPoints" })
            Assert.Equal(singleMember.GetProperty(field).GetInt64(), twinMember.GetProperty(field).GetInt64());
        Assert.Equal("Gold", twinMember.GetProperty("tier").GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_posting_that_credits_nothing_is_rejected_as_the_single_earn_refuses_it()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers",
            new { name = "Slow", rank = 1, qualifyingPoints = 0, multiplierPercent = 50 }).ReadAsync<JsonElement>();
        await b.EarnAsync(10);

        var results = await BatchAsync(b, new { memberId = b.MemberId, points = 1, sourceKey = "tiny" }, new { memberId = b.MemberId, points = 4, sourceKey = "tiny" });

        Assert.Equal("rejected", results[0].GetProperty("status").GetString());
        Assert.Equal(ProblemTypes.BusinessRule, results[0].GetProperty("problem").GetProperty("type").GetString());
        Assert.Contains("nothing to credit", results[0].GetProperty("problem").GetProperty("detail").GetString());
        Assert.Equal("posted", results[1].GetProperty("status").GetString());
        Assert.Equal(10 + 2, await b.BalanceAsync());
    }

    [Fact]
    public async Task A_member_who_owes_points_pays_them_back_first_as_the_single_earn_does()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never", refundShortfall = "go_negative", negativeLimit = 100 });
        var earned = await b.EarnAsync(50);
        await b.SpendAsync(50);
        await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/entries/{earned.GetProperty("id").GetInt64()}/reverse", new { applyRefundPolicy = true })
            .ReadAsync<JsonElement>();
        Assert.Equal(-50, await b.BalanceAsync());

        var results = await BatchAsync(b, new { memberId = b.MemberId, points = 80, sourceKey = "after-refund" }, new { memberId = b.MemberId, points = 5, sourceKey = "later" });

        Assert.Equal(["posted", "posted"], results.Select(r => r.GetProperty("status").GetString()));
        Assert.Equal(30, results[0].GetProperty("entry").GetProperty("balanceAfter").GetInt64());
        Assert.Equal(50, Assert.Single(results[0].GetProperty("entry").GetProperty("draws").EnumerateArray()).GetProperty("points").GetInt64());
        var balance = await b.BalanceDtoAsync();
        Assert.Equal(35, balance.GetProperty("balance").GetInt64());
        Assert.Equal(0, balance.GetProperty("owed").GetInt64());
        Assert.Equal(35, (await b.EntriesAsync()).Sum(e => e.GetProperty("points").GetInt64()));
    }

    [Fact]
    public async Task Each_members_balance_equals_the_sum_of_its_entries_after_batches_with_several_postings_per_member()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var members = await MembersAsync(b, 5);

        for (var round = 0; round < 3; round++)
            await BatchAsync(b, [.. Enumerable.Range(0, 20).Select(i => (object)new
            {
                memberId = members[i % members.Count], points = 10 + i, sourceKey = $"r{round}-{i}", pendingDays = i % 3 == 0 ? 7 : 0,
            })]);

        foreach (var member in members)
        {
            var entries = await EntriesOfAsync(b, member);
            var balance = await b.Client.GetAsync($"/api/v1/loyalty/members/{member}/balance").ReadAsync<JsonElement>();
            Assert.Equal(12, entries.Count);
            Assert.Equal(entries.Sum(e => e.GetProperty("points").GetInt64()), balance.GetProperty("balance").GetInt64());
            Assert.Equal(entries.Sum(e => e.GetProperty("pending").GetInt64()), balance.GetProperty("pending").GetInt64());
            Assert.Equal(balance.GetProperty("balance").GetInt64(), entries[^1].GetProperty("balanceAfter").GetInt64());
        }
    }

    [Fact]
    public async Task Two_batches_on_overlapping_members_sent_at_once_both_commit_exactly()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var members = await MembersAsync(b, 12);

        for (var round = 0; round < 5; round++)
        {
            var up = BatchAsync(b, [.. members.Select(m => (object)new { memberId = m, points = 3, sourceKey = $"up-{round}" })]);
            var down = BatchAsync(b, [.. members.AsEnumerable().Reverse().Select(m => (object)new { memberId = m, points = 5, sourceKey = $"down-{round}" })]);
            var both = await Task.WhenAll(up, down);
            Assert.All(both.SelectMany(r => r), r => Assert.Equal("posted", r.GetProperty("status").GetString()));
        }

        foreach (var member in members)
        {
            Assert.Equal(5 * (3 + 5), await BalanceOfAsync(b, member));
            var entries = await EntriesOfAsync(b, member);
            Assert.Equal(10, entries.Count);
            // Oldest first, each entry's balance is the one before it plus its points: no posting worked from a stale balance.
            var running = 0L;
            Assert.All(entries, e => Assert.Equal(running += e.GetProperty("points").GetInt64(), e.GetProperty("balanceAfter").GetInt64()));
        }
    }

    [Fact]
    public async Task In_a_shared_programme_a_batch_earns_at_the_acting_brand_under_the_members_profile_there()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        var posting = new { postings = new[] { new { memberId = member, points = 70, sourceKey = "b-till-1" } } };

        var atB = (await club.B.Test.Client.PostAsJsonAsync(Path, posting).ReadAsync<JsonElement>()).GetProperty("results")[0];
        var atC = (await club.C.Test.Client.PostAsJsonAsync(Path, posting).ReadAsync<JsonElement>()).GetProperty("results")[0];

        Assert.Equal("posted", atB.GetProperty("status").GetString());
        Assert.Equal(club.B.Test.Id, atB.GetProperty("entry").GetProperty("brandId").GetInt64());
        Assert.Equal("rejected", atC.GetProperty("status").GetString());
        Assert.Equal(ProblemTypes.NotFound, atC.GetProperty("problem").GetProperty("type").GetString());
        Assert.Equal(70, await SharedClub.BalanceAsync(club.A, member));
        var earned = Assert.Single(await SharedClub.EventsAsync(app, club.B, "points.earned"));
        Assert.Equal(club.ProfileAtB, earned.GetProperty("profileId").GetInt64());
        Assert.Empty(await SharedClub.EventsAsync(app, club.A, "points.earned"));
    }

    [Fact]
    public async Task A_malformed_batch_is_a_400_with_field_errors()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);

        var empty = await b.Client.PostAsJsonAsync(Path, new { postings = Array.Empty<object>() }).ProblemAsync(400, ProblemTypes.Validation);
        var missing = await b.Client.PostAsJsonAsync(Path, new { }).ProblemAsync(400, ProblemTypes.Validation);
        var tooMany = await b.Client.PostAsJsonAsync(Path, new { postings = Enumerable.Range(0, 1001).Select(i => new { memberId = b.MemberId, points = 1, sourceKey = $"k{i}" }) })
            .ProblemAsync(400, ProblemTypes.Validation);
        var fields = await b.Client.PostAsJsonAsync(Path, new
        {
            postings = new object?[]
            {
                new { memberId = b.MemberId, points = 1, sourceKey = "ok" },
                null,
                new { memberId = b.MemberId, sourceKey = "no-points", pendingDays = 400 },
                new { points = 1_000_000_000_001, sourceKey = new string('k', 251), reference = new string('r', 201) },
            },
        }).ProblemAsync(400, ProblemTypes.Validation);
        await b.Client.PostAsync(Path, new StringContent("""{"postings":[{"memberId":1,"points":"ten","sourceKey":"x"}]}""", System.Text.Encoding.UTF8, "application/json"))
            .ProblemAsync(400, ProblemTypes.MalformedRequest);

        Assert.True(empty.GetProperty("errors").TryGetProperty("postings", out _));
        Assert.True(missing.GetProperty("errors").TryGetProperty("postings", out _));
        Assert.True(tooMany.GetProperty("errors").TryGetProperty("postings", out _));
        var errors = fields.GetProperty("errors").EnumerateObject().Select(p => p.Name).Order().ToList();
        Assert.Equal(["postings[1]", "postings[2].pendingDays", "postings[2].points", "postings[3].memberId", "postings[3].points", "postings[3].reference", "postings[3].sourceKey"], errors);
        Assert.Equal(0, await b.BalanceAsync());
    }

    private static object Comparable(JsonElement e)
    {
        var lot = e.GetProperty("lot");
        return string.Join('|', e.GetProperty("kind"), e.GetProperty("points"), e.GetProperty("pending"), e.GetProperty("account"), e.GetProperty("balanceAfter"),
            e.GetProperty("rule"), e.GetProperty("reference"), lot.GetProperty("granted"), lot.GetProperty("remaining"), lot.GetProperty("expiresAt"), lot.GetProperty("heldUntil"));
    }

    private static async Task<JsonElement[]> BatchAsync(LoyaltyTestBrand b, params object[] postings)
    {
        var response = await b.Client.PostAsJsonAsync(Path, new { postings }).ReadAsync<JsonElement>();
        return [.. response.GetProperty("results").EnumerateArray()];
    }

    private static async Task<List<long>> MembersAsync(LoyaltyTestBrand b, int count)
    {
        List<long> members = [b.MemberId];
        for (var i = 2; i <= count; i++) members.Add(await EnrolAsync(b, $"member-{i}"));
        return members;
    }

    private static async Task<long> EnrolAsync(LoyaltyTestBrand b, string userId)
    {
        var profileId = await LoyaltyTestBrand.NewProfileAsync(b.Brand, userId);
        var member = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/members", new { profileId }).ReadAsync<JsonElement>();
        return member.GetProperty("id").GetInt64();
    }

    private static async Task<long> BalanceOfAsync(LoyaltyTestBrand b, long member) =>
        (await b.Client.GetAsync($"/api/v1/loyalty/members/{member}/balance").ReadAsync<JsonElement>()).GetProperty("balance").GetInt64();

    private static Task<List<JsonElement>> EntriesOfAsync(LoyaltyTestBrand b, long member) => (b with { MemberId = member }).EntriesAsync();
}

public sealed class BatchEarnTestsOnSqlite(LoyaltySqliteApp app) : BatchEarnTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class BatchEarnTestsOnPostgres(LoyaltyPostgresApp app) : BatchEarnTests(app), IClassFixture<LoyaltyPostgresApp>;
