using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Audiences;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;

namespace Meridian.Tests.Loyalty;

/// <summary>
/// Campaigns for a segment ("double points this weekend for VIPs"): the multiplier applies when the member's profile is
/// in the Audiences segment at posting time, in every earning path, and the entry's explanation names the segment.
/// </summary>
public abstract class SegmentCampaignTests(LoyaltyApp app)
{
    private const string Batch = "/api/v1/loyalty/postings/earn-batch";
    private const string Doubled = "api: 100 points × 2 [200% (campaign VIP double for segment VIP); multiplied; rounded down] = 200";

    private static async Task SetVipAsync(LoyaltyTestBrand b, string userId, bool vip, int events)
    {
        await b.Brand.SendAsync(new { type = "identify", userId, traits = new { vip } });
        await ProfileTestBrand.LookupAsync(b.Client, "user_id", userId, p => p.GetProperty("eventCount").GetInt64() >= events);
        await AudiencesApp.CaughtUpAsync(b.Client);
    }

    /// <summary>member-1 in the segment "VIP" (trait vip = true), a second member outside it, and a running campaign doubling points for the segment.</summary>
    private async Task<(LoyaltyTestBrand Brand, long Outsider, long Segment)> VipCampaignAsync()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app, new { name = "Club", expiry = "never" });
        var outsiderProfile = await LoyaltyTestBrand.NewProfileAsync(b.Brand, "member-2");
        var outsider = (await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/members", new { profileId = outsiderProfile }).ReadAsync<JsonElement>())
            .GetProperty("id").GetInt64();
        var segment = (await b.Client.PostAsJsonAsync("/api/v1/segments", new { name = "VIP", rule = new { trait = "vip", op = "eq", value = true } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        await SetVipAsync(b, LoyaltyTestBrand.MemberUserId, true, 2);
        var now = app.Clock.GetUtcNow().UtcDateTime;
        var campaign = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns",
            new { name = "VIP double", multiplierPercent = 200, startsAt = now.AddHours(-1), endsAt = now.AddDays(2), segmentId = segment }).ReadAsync<JsonElement>();
        Assert.Equal(segment, campaign.GetProperty("segmentId").GetInt64());
        Assert.Equal(segment, (await b.Client.GetAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns").ReadAsync<JsonElement>())[0].GetProperty("segmentId").GetInt64());
        return (b, outsider, segment);
    }

    [Fact]
    public async Task A_segment_campaign_doubles_single_earns_and_orders_of_a_member_in_the_segment_only_and_stops_when_the_member_leaves()
    {
        var (b, outsider, _) = await VipCampaignAsync();

        var member = await b.EarnAsync(100);
        Assert.Equal(200, member.GetProperty("points").GetInt64());
        Assert.Equal(Doubled, member.GetProperty("rule").GetString());
        var other = await b.PostAsync($"/api/v1/loyalty/members/{outsider}/earn", new { points = 100 }).ReadAsync<JsonElement>();
        Assert.Equal(("api: 100 points", 100L), (other.GetProperty("rule").GetString(), other.GetProperty("points").GetInt64()));

        // The direct order API and the order follower post through the same ledger.
        var order = await b.PostAsync($"/api/v1/loyalty/members/{b.MemberId}/orders", new { orderId = "T-1", total = 100m }).ReadAsync<JsonElement>();
        Assert.Equal(200, order.GetProperty("points").GetInt64());
        Assert.Contains("campaign VIP double for segment VIP", order.GetProperty("rule").GetString());
        await b.Brand.SendAsync(new { type = "track", userId = LoyaltyTestBrand.MemberUserId, @event = "Order Completed", properties = new { order_id = "T-2", total = 50m } });
        await b.FollowUntilBalanceAsync(app, 200 + 200 + 100);

        // Membership is read at posting time: once the member leaves the segment the campaign no longer applies.
        await SetVipAsync(b, LoyaltyTestBrand.MemberUserId, false, 4);
        var after = await b.EarnAsync(100);
        Assert.Equal(("api: 100 points", 100L), (after.GetProperty("rule").GetString(), after.GetProperty("points").GetInt64()));
    }

    [Fact]
    public async Task An_earn_batch_doubles_the_postings_of_members_in_the_segment_only_and_names_the_segment()
    {
        var (b, outsider, _) = await VipCampaignAsync();

        var response = await b.Client.PostAsJsonAsync(Batch, new
        {
            postings = new object[]
            {
                new { memberId = b.MemberId, points = 100, sourceKey = "eod-1" },
                new { memberId = outsider, points = 100, sourceKey = "eod-2" },
                new { memberId = b.MemberId, points = 100, sourceKey = "eod-3" },
            },
        }).ReadAsync<JsonElement>();

        var entries = response.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("entry")).ToList();
        Assert.Equal([200L, 100, 200], entries.Select(e => e.GetProperty("points").GetInt64()));
        Assert.Equal([Doubled, "api: 100 points", Doubled], entries.Select(e => e.GetProperty("rule").GetString()));
        Assert.Equal(400, await b.BalanceAsync());
    }

    [Fact]
    public async Task In_a_shared_programme_a_campaign_for_brand_Bs_segment_follows_the_members_profile_at_B_wherever_the_member_earns()
    {
        var club = await SharedClub.CreateAsync(app);
        var member = await club.EnrolBothAsync();
        var vip = (await club.B.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = "B VIP", rule = new { trait = "vip", op = "eq", value = true } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var outside = (await club.C.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = "C VIP", rule = new { trait = "vip", op = "eq", value = true } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        await SetTraitAtBAsync(club, true, 2);
        var now = app.Clock.GetUtcNow().UtcDateTime;
        var campaigns = $"/api/v1/loyalty/programmes/{club.ProgrammeId}/campaigns";
        var problem = await club.A.Test.Client.PostAsJsonAsync(campaigns, new { name = "C's", multiplierPercent = 200, startsAt = now.AddHours(-1), endsAt = now.AddDays(1), segmentId = outside })
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(problem.GetProperty("errors").TryGetProperty("segmentId", out _), problem.GetRawText());
        await club.A.Test.Client.PostAsJsonAsync(campaigns, new { name = "B VIP double", multiplierPercent = 200, startsAt = now.AddHours(-1), endsAt = now.AddDays(1), segmentId = vip })
            .ReadAsync<JsonElement>();

        var atA = await SharedClub.EarnAsync(club.A, member, 100);
        Assert.Equal(200, atA.GetProperty("points").GetInt64());
        Assert.Contains("campaign B VIP double for segment B VIP", atA.GetProperty("rule").GetString());
        Assert.Equal(200, (await SharedClub.EarnAsync(club.B, member, 100)).GetProperty("points").GetInt64());

        await SetTraitAtBAsync(club, false, 3);
        Assert.Equal(100, (await SharedClub.EarnAsync(club.A, member, 100)).GetProperty("points").GetInt64());
    }

    private static async Task SetTraitAtBAsync(SharedClub club, bool vip, int events)
    {
        await club.B.SendAsync(new { type = "identify", userId = "b-" + club.Phone, traits = new { vip } });
        await ProfileTestBrand.LookupAsync(club.B.Test.Client, "user_id", "b-" + club.Phone, p => p.GetProperty("eventCount").GetInt64() >= events);
        await AudiencesApp.CaughtUpAsync(club.B.Test.Client);
    }

    [Fact]
    public async Task A_campaign_segment_unknown_or_of_a_brand_outside_the_programme_is_refused_with_400_on_segmentId()
    {
        var b = await LoyaltyTestBrand.CreateAsync(app);
        var stranger = await ProfileTestBrand.CreateAsync(app);
        var foreign = (await stranger.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = "Theirs", rule = new { trait = "vip", op = "eq", value = true } })
            .ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var now = app.Clock.GetUtcNow().UtcDateTime;
        foreach (var segmentId in new[] { foreign, 999_999_999L })
        {
            var problem = await b.Client.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns",
                new { name = "Bad", multiplierPercent = 200, startsAt = now, endsAt = now.AddDays(1), segmentId }).ProblemAsync(400, ProblemTypes.Validation);
            Assert.Contains(segmentId.ToString(System.Globalization.CultureInfo.InvariantCulture), problem.GetProperty("errors").GetProperty("segmentId")[0].GetString());
        }
        Assert.Empty((await b.Client.GetAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/campaigns").ReadAsync<JsonElement>()).EnumerateArray());
    }
}

public sealed class SegmentCampaignTestsOnSqlite(LoyaltySqliteApp app) : SegmentCampaignTests(app), IClassFixture<LoyaltySqliteApp>;

public sealed class SegmentCampaignTestsOnPostgres(LoyaltyPostgresApp app) : SegmentCampaignTests(app), IClassFixture<LoyaltyPostgresApp>;
