using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Loyalty.Orders;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Loyalty;

/// <summary>
/// A programme shared by two brands of the group (A and B), one person (same phone) with a profile at each, and a third
/// brand of the group (C) outside the programme. The programme is created by the group-level admin key.
/// </summary>
public sealed record SharedClub(ProfileTestBrand A, ProfileTestBrand B, ProfileTestBrand C, long ProgrammeId, string Phone, long ProfileAtA, long ProfileAtB)
{
    public static async Task<SharedClub> CreateAsync(MeridianAppFixture app, object? settings = null)
    {
        var a = await ProfileTestBrand.CreateAsync(app);
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = await ProfileTestBrand.CreateAsync(app);
        var phone = "+861380" + Random.Shared.Next(1000000, 9999999);
        await a.SendAsync(new { type = "identify", userId = "a-" + phone, traits = new { phone } });
        // Written as a customer types it at the other brand: matching is on the normalised phone.
        await b.SendAsync(new { type = "identify", userId = "b-" + phone, traits = new { phone = phone[3..7] + " " + phone[7..] } });
        var atA = (await ProfileTestBrand.LookupAsync(a.Test.Client, "phone", phone)).GetProperty("id").GetInt64();
        var atB = (await ProfileTestBrand.LookupAsync(b.Test.Client, "phone", phone)).GetProperty("id").GetInt64();
        var programme = await app.Admin.PostAsJsonAsync("/api/v1/loyalty/programmes", settings ?? new
        {
            name = "Group Club", expiry = "never", shared = true, brands = new[] { a.Test.Id, b.Test.Id },
        }).ReadAsync<JsonElement>();
        return new SharedClub(a, b, c, programme.GetProperty("id").GetInt64(), phone, atA, atB);
    }

    public Task<HttpResponseMessage> EnrolAsync(ProfileTestBrand at, long profileId) =>
        at.Test.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{ProgrammeId}/members", new { profileId });

    /// <summary>The person enrolled at A, then at B (linked): the member's id.</summary>
    public async Task<long> EnrolBothAsync()
    {
        var id = (await EnrolAsync(A, ProfileAtA).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        await EnrolAsync(B, ProfileAtB).ReadAsync<JsonElement>();
        return id;
    }

    /// <summary>The domain events published under a brand, by type.</summary>
    public static Task<List<JsonElement>> EventsAsync(MeridianAppFixture app, ProfileTestBrand at, string type) => LoyaltyTestBrand.EventsOfAsync(app, at.Test.Id, type);

    public static Task<HttpResponseMessage> PostAsync(ProfileTestBrand at, string path, object body, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString("N"));
        return at.Test.Client.SendAsync(request);
    }

    public static Task<JsonElement> EarnAsync(ProfileTestBrand at, long member, long points) =>
        PostAsync(at, $"/api/v1/loyalty/members/{member}/earn", new { points }).ReadAsync<JsonElement>();

    public static Task<JsonElement> SpendAsync(ProfileTestBrand at, long member, long points) =>
        PostAsync(at, $"/api/v1/loyalty/members/{member}/spend", new { points }).ReadAsync<JsonElement>();

    public static async Task<long> BalanceAsync(ProfileTestBrand at, long member) =>
        (await at.Test.Client.GetAsync($"/api/v1/loyalty/members/{member}/balance").ReadAsync<JsonElement>()).GetProperty("balance").GetInt64();

    public static async Task<List<JsonElement>> EntriesAsync(ProfileTestBrand at, long member) =>
        (await at.Test.Client.GetAsync($"/api/v1/loyalty/members/{member}/entries?limit=200").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray().ToList();
}

/// <summary>A loyalty programme shared by brands of a group: one member per person, earned at one brand and spent at another.</summary>
public abstract class SharedProgrammeTests(LoyaltyApp app)
{
    [Fact]
    public async Task A_shared_programme_is_open_to_the_listed_brands_and_owned_by_the_first()
    {
        var club = await SharedClub.CreateAsync(app);

        var programme = await club.B.Test.Client.GetAsync($"/api/v1/loyalty/programmes/{club.ProgrammeId}").ReadAsync<JsonElement>();

        Assert.True(programme.GetProperty("shared").GetBoolean());
        Assert.Equal(club.A.Test.Id, programme.GetProperty("brandId").GetInt64());
        Assert.Equal([club.A.Test.Id, club.B.Test.Id], programme.GetProperty("brands").EnumerateArray().Select(b => b.GetInt64()));
        // A brand of a shared programme runs no programme of its own.
        await club.B.Test.Client.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "Own", expiry = "never" }).ProblemAsync(409, ProblemTypes.Conflict);
    }

    [Fact]
    public async Task Enrolling_at_a_second_brand_links_the_same_person_by_phone_to_the_existing_member()
    {
        var club = await SharedClub.CreateAsync(app);

        using var atA = await club.EnrolAsync(club.A, club.ProfileAtA);
        Assert.Equal(201, (int)atA.StatusCode);
        var memberId = JsonDocument.Parse(await atA.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetInt64();
        using var atB = await club.EnrolAsync(club.B, club.ProfileAtB);
        var linked = JsonDocument.Parse(await atB.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(200, (int)atB.StatusCode);
        Assert.Equal(memberId, linked.GetProperty("id").GetInt64());
        Assert.Equal([(club.A.Test.Id, club.ProfileAtA), (club.B.Test.Id, club.ProfileAtB)],
            linked.GetProperty("profiles").EnumerateArray().Select(p => (p.GetProperty("brandId").GetInt64(), p.GetProperty("profileId").GetInt64())));
        var found = await club.B.Test.Client.GetAsync($"/api/v1/loyalty/members?profileId={club.ProfileAtB}").ReadAsync<JsonElement>();
        Assert.Equal(memberId, found.GetProperty("id").GetInt64());
        await club.EnrolAsync(club.B, club.ProfileAtB).ProblemAsync(409, ProblemTypes.Conflict);
        Assert.Single(await SharedClub.EventsAsync(app, club.A, "member.enrolled"));
        Assert.Empty(await SharedClub.EventsAsync(app, club.B, "member.enrolled"));
    }

    [Fact]
    public async Task The_same_person_enrolling_at_two_brands_at_once_becomes_one_member()
    {
        for (var round = 0; round < 3; round++)
        {
            var club = await SharedClub.CreateAsync(app);
            var answers = await Task.WhenAll(club.EnrolAsync(club.A, club.ProfileAtA), club.EnrolAsync(club.B, club.ProfileAtB));
            Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Created], answers.Select(r => r.StatusCode).Order());
            var ids = new List<long>();
            foreach (var answer in answers) ids.Add((await Task.FromResult(answer).ReadAsync<JsonElement>()).GetProperty("id").GetInt64());
            Assert.Single(ids.Distinct());
        }
    }

    [Fact]
    public async Task An_order_earns_at_one_brand_is_spent_at_another_and_a_refund_at_the_first_takes_back_its_own_lot()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        var (userA, userB) = ("a-" + club.Phone, "b-" + club.Phone);

        // The same order number at both brands: two orders, each earning once.
        await club.A.SendAsync(new { type = "track", userId = userA, @event = "Order Completed", properties = new { order_id = "o-1", total = 100 } });
        await club.B.SendAsync(new { type = "track", userId = userB, @event = "Order Completed", properties = new { order_id = "o-1", total = 50 } });
        await FollowUntilBalanceAsync(club.B, member, 150);
        var spent = await SharedClub.SpendAsync(club.B, member, 30);
        await club.A.SendAsync(new { type = "track", userId = userA, @event = "Order Refunded", properties = new { order_id = "o-1", total = 50 } });
        await FollowUntilBalanceAsync(club.A, member, 70);

        var entries = await SharedClub.EntriesAsync(club.A, member);
        Assert.Equal([("earn", club.A.Test.Id, 100L), ("earn", club.B.Test.Id, 50L), ("spend", club.B.Test.Id, -30L), ("reverse", club.A.Test.Id, -50L)],
            entries.Select(e => (e.GetProperty("kind").GetString(), e.GetProperty("brandId").GetInt64(), e.GetProperty("points").GetInt64())));
        var lotOfA = entries[0].GetProperty("lot").GetProperty("id").GetInt64();
        Assert.Equal(entries[0].GetProperty("id").GetInt64(), entries[3].GetProperty("reversesEntryId").GetInt64());
        Assert.All(entries[3].GetProperty("draws").EnumerateArray(), d => Assert.Equal(lotOfA, d.GetProperty("lotId").GetInt64()));
        // The spend at B drew from the lot A's order granted (oldest first); reversing it at B puts those points back there.
        Assert.Equal(lotOfA, spent.GetProperty("draws")[0].GetProperty("lotId").GetInt64());
        var back = await SharedClub.PostAsync(club.B, $"/api/v1/loyalty/members/{member}/entries/{spent.GetProperty("id").GetInt64()}/reverse", new { reason = "till error" })
            .ReadAsync<JsonElement>();
        Assert.Equal([(lotOfA, -30L)], back.GetProperty("draws").EnumerateArray().Select(d => (d.GetProperty("lotId").GetInt64(), d.GetProperty("points").GetInt64())));
        Assert.Equal(100, await SharedClub.BalanceAsync(club.B, member));

        // Events carry the brand where it happened, naming the member's profile there.
        var earnedAtB = Assert.Single(await SharedClub.EventsAsync(app, club.B, "points.earned"));
        Assert.Equal(club.ProfileAtB, earnedAtB.GetProperty("profileId").GetInt64());
        var spentAtB = Assert.Single(await SharedClub.EventsAsync(app, club.B, "points.spent"));
        Assert.Equal(club.ProfileAtB, spentAtB.GetProperty("profileId").GetInt64());
        var earnedAtA = Assert.Single(await SharedClub.EventsAsync(app, club.A, "points.earned"));
        Assert.Equal(club.ProfileAtA, earnedAtA.GetProperty("profileId").GetInt64());
    }

    [Fact]
    public async Task Two_brands_spending_one_members_points_at_once_never_take_it_below_zero()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        await SharedClub.EarnAsync(club.A, member, 1000);

        // 16 in flight at a time: every spend queues on the member's row, and a queue of 200 on a loaded machine outlasts
        // the 30 s command timeout (the concurrency is what is tested, not the queue's length).
        var responses = new (long, int, JsonElement)[200];
        await Parallel.ForAsync(0, responses.Length, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var at = i % 2 == 0 ? club.A : club.B;
            using var response = await SharedClub.PostAsync(at, $"/api/v1/loyalty/members/{member}/spend", new { points = 7 });
            responses[i] = (at.Test.Id, (int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement.Clone());
        });

        Assert.All(responses, r => Assert.True(r.Item2 == 200 || (r.Item2 == 409 && r.Item3.GetProperty("type").GetString() == ProblemTypes.InsufficientPoints), r.Item3.ToString()));
        var accepted = responses.Where(r => r.Item2 == 200).ToList();
        Assert.Equal(1000 / 7, accepted.Count);
        Assert.Equal(1000 % 7, await SharedClub.BalanceAsync(club.B, member));
        var spends = (await SharedClub.EntriesAsync(club.A, member)).Where(e => e.GetProperty("kind").GetString() == "spend")
            .ToDictionary(e => e.GetProperty("id").GetInt64(), e => e.GetProperty("brandId").GetInt64());
        Assert.Equal(accepted.Select(r => (r.Item3.GetProperty("id").GetInt64(), r.Item1)).ToHashSet(), spends.Select(s => (s.Key, s.Value)).ToHashSet());
    }

    [Fact]
    public async Task An_Idempotency_Key_replays_at_the_brand_that_used_it_and_is_the_other_brands_own()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        await SharedClub.EarnAsync(club.A, member, 100);

        using var first = await SharedClub.PostAsync(club.B, $"/api/v1/loyalty/members/{member}/spend", new { points = 10 }, "till-1");
        using var replay = await SharedClub.PostAsync(club.B, $"/api/v1/loyalty/members/{member}/spend", new { points = 10 }, "till-1");
        using var atA = await SharedClub.PostAsync(club.A, $"/api/v1/loyalty/members/{member}/spend", new { points = 10 }, "till-1");

        Assert.Equal(await first.Content.ReadAsStringAsync(), await replay.Content.ReadAsStringAsync());
        Assert.Equal(200, (int)atA.StatusCode);
        Assert.Equal(80, await SharedClub.BalanceAsync(club.A, member));
        await SharedClub.PostAsync(club.B, $"/api/v1/loyalty/members/{member}/spend", new { points = 11 }, "till-1").ProblemAsync(422, ProblemTypes.IdempotencyKeyReused);
    }

    [Fact]
    public async Task A_brand_of_the_group_outside_the_programme_gets_404_for_it_and_its_members()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        await SharedClub.EarnAsync(club.A, member, 100);
        var c = club.C;

        await c.Test.Client.GetAsync($"/api/v1/loyalty/programmes/{club.ProgrammeId}").ProblemAsync(404, ProblemTypes.NotFound);
        await c.Test.Client.GetAsync($"/api/v1/loyalty/programmes/{club.ProgrammeId}/settlement").ProblemAsync(404, ProblemTypes.NotFound);
        await c.Test.Client.GetAsync($"/api/v1/loyalty/members/{member}").ProblemAsync(404, ProblemTypes.NotFound);
        await c.Test.Client.GetAsync($"/api/v1/loyalty/members/{member}/balance").ProblemAsync(404, ProblemTypes.NotFound);
        await c.Test.Client.GetAsync($"/api/v1/loyalty/members/{member}/entries").ProblemAsync(404, ProblemTypes.NotFound);
        await c.Test.Client.GetAsync($"/api/v1/loyalty/members?profileId={club.ProfileAtA}").ProblemAsync(404, ProblemTypes.NotFound);
        await SharedClub.PostAsync(c, $"/api/v1/loyalty/members/{member}/spend", new { points = 1 }).ProblemAsync(404, ProblemTypes.NotFound);
        await SharedClub.PostAsync(c, $"/api/v1/loyalty/members/{member}/earn", new { points = 1 }).ProblemAsync(404, ProblemTypes.NotFound);
        var list = await c.Test.Client.GetAsync("/api/v1/loyalty/programmes").ReadAsync<JsonElement>();
        Assert.Empty(list.GetProperty("items").EnumerateArray());
        Assert.Equal(100, await SharedClub.BalanceAsync(club.B, member));
        // C may still run a programme of its own, which A and B do not see.
        var own = await c.Test.Client.PostAsJsonAsync("/api/v1/loyalty/programmes", new { name = "C Club", expiry = "never" }).ReadAsync<JsonElement>();
        await club.A.Test.Client.GetAsync($"/api/v1/loyalty/programmes/{own.GetProperty("id").GetInt64()}").ProblemAsync(404, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task The_settlement_view_sums_points_issued_and_redeemed_per_brand_over_the_period()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        var start = app.Clock.GetUtcNow().UtcDateTime;
        await SharedClub.EarnAsync(club.A, member, 100);
        await SharedClub.EarnAsync(club.B, member, 50);
        await SharedClub.SpendAsync(club.B, member, 120);
        await SharedClub.SpendAsync(club.A, member, 10);
        app.Clock.Advance(TimeSpan.FromHours(1));
        var later = app.Clock.GetUtcNow().UtcDateTime;
        await SharedClub.EarnAsync(club.A, member, 7);

        var all = await app.Admin.GetAsync($"/api/v1/loyalty/programmes/{club.ProgrammeId}/settlement").ReadAsync<JsonElement>();
        var before = await club.B.Test.Client.GetAsync($"/api/v1/loyalty/programmes/{club.ProgrammeId}/settlement?from={Q(start)}&to={Q(later)}").ReadAsync<JsonElement>();

        Assert.Equal([(club.A.Test.Id, 107L, 10L, 97L), (club.B.Test.Id, 50L, 120L, -70L)], Rows(all));
        Assert.Equal((0L, 157L, 130L, 27L), Row(all.GetProperty("total")));
        Assert.Equal(27, await SharedClub.BalanceAsync(club.A, member));
        Assert.Equal([(club.A.Test.Id, 100L, 10L, 90L), (club.B.Test.Id, 50L, 120L, -70L)], Rows(before));
        await app.Admin.GetAsync($"/api/v1/loyalty/programmes/{club.ProgrammeId}/settlement?from={Q(later)}&to={Q(start)}").ProblemAsync(400, ProblemTypes.Validation);
    }

    [Fact]
    public async Task Staff_unlink_and_link_a_brands_profile_with_a_reason_and_the_audit_log_keeps_both()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();

        var unlinked = await club.B.Test.Client.PostAsJsonAsync($"/api/v1/loyalty/members/{member}/profiles/{club.ProfileAtB}/unlink", new { reason = "not the same person" })
            .ReadAsync<JsonElement>();
        Assert.Single(unlinked.GetProperty("profiles").EnumerateArray());
        await club.B.Test.Client.GetAsync($"/api/v1/loyalty/members?profileId={club.ProfileAtB}").ProblemAsync(404, ProblemTypes.NotFound);
        await club.A.Test.Client.PostAsJsonAsync($"/api/v1/loyalty/members/{member}/profiles/{club.ProfileAtA}/unlink", new { reason = "last one" })
            .ProblemAsync(409, ProblemTypes.Conflict);
        await club.C.Test.Client.PostAsJsonAsync($"/api/v1/loyalty/members/{member}/profiles", new { profileId = club.ProfileAtB, reason = "x" })
            .ProblemAsync(404, ProblemTypes.NotFound);

        var relinked = await club.B.Test.Client.PostAsJsonAsync($"/api/v1/loyalty/members/{member}/profiles", new { profileId = club.ProfileAtB, reason = "checked ID at the till" })
            .ReadAsync<JsonElement>();
        Assert.Equal(2, relinked.GetProperty("profiles").GetArrayLength());
        var audit = await app.Admin.GetAsync($"/api/v1/audit?entityType=loyalty_member&entityId={member}").ReadAsync<JsonElement>();
        var actions = audit.GetProperty("items").EnumerateArray().Select(a => (a.GetProperty("action").GetString(), a.GetProperty("brandId").GetInt64())).ToList();
        Assert.Equal(2, actions.Count(a => a == ("loyalty.member.linked", club.B.Test.Id)));
        Assert.Contains(("loyalty.member.unlinked", club.B.Test.Id), actions);
    }

    [Fact]
    public async Task When_the_linked_profile_is_merged_into_another_the_survivor_finds_the_member_and_its_orders_earn()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        var survivor = await LoyaltyTestBrand.NewProfileAsync(club.B, "b2-" + club.Phone);
        await club.B.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{survivor}/merge", new { profileId = club.ProfileAtB }).ReadAsync<JsonElement>();

        var found = await club.B.Test.Client.GetAsync($"/api/v1/loyalty/members?profileId={survivor}").ReadAsync<JsonElement>();
        Assert.Equal(member, found.GetProperty("id").GetInt64());
        await club.B.SendAsync(new { type = "track", userId = "b2-" + club.Phone, @event = "Order Completed", properties = new { order_id = "m-1", total = 40 } });
        await FollowUntilBalanceAsync(club.A, member, 40);
        var entry = Assert.Single(await SharedClub.EntriesAsync(club.A, member));
        Assert.Equal(club.B.Test.Id, entry.GetProperty("brandId").GetInt64());
    }

    private async Task FollowUntilBalanceAsync(ProfileTestBrand at, long member, long expected)
    {
        var follower = app.Services.GetRequiredService<OrderEarning>();
        for (var attempt = 0; attempt < 150; attempt++)
        {
            if (attempt > 0) await Task.Delay(100);
            await follower.RunOnceAsync(default);
            if (await SharedClub.BalanceAsync(at, member) == expected) return;
        }
        Assert.Fail($"The balance never reached {expected}: {await SharedClub.BalanceAsync(at, member)}");
    }

    private static string Q(DateTime at) => Uri.EscapeDataString(at.ToString("O"));

    private static (long, long, long, long) Row(JsonElement r) =>
        (r.GetProperty("brandId").GetInt64(), r.GetProperty("issued").GetInt64(), r.GetProperty("redeemed").GetInt64(), r.GetProperty("net").GetInt64());

    private static List<(long, long, long, long)> Rows(JsonElement settlement) => settlement.GetProperty("brands").EnumerateArray().Select(Row).ToList();
}

public sealed class SharedProgrammeTestsOnSqlite(LoyaltySqliteApp app) : SharedProgrammeTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class SharedProgrammeTestsOnPostgres(LoyaltyPostgresApp app) : SharedProgrammeTests(app), IClassFixture<LoyaltyPostgresApp>;
