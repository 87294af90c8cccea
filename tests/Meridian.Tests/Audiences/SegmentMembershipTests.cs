using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;

namespace Meridian.Tests.Audiences;

/// <summary>
/// Materialised membership: a saved segment is evaluated in full, then kept current as events arrive, tags change,
/// profiles merge and windows lapse; each entry and exit is a <c>segment.entered</c> / <c>segment.exited</c> outbox event.
/// </summary>
public abstract class SegmentMembershipTests(AudiencesApp app)
{
    private DateTime Now => app.Clock.GetUtcNow().UtcDateTime;

    private object Order(string userId, string orderId, double daysAgo) => new
    {
        type = "track", userId, @event = "Order Completed", timestamp = Now.AddDays(-daysAgo).ToString("O"),
        properties = new { order_id = orderId, category = "shoes", total = 100, currency = "CNY" },
    };

    private static async Task<long> ProfileAsync(HttpClient client, string userId, int events) =>
        (await ProfileTestBrand.LookupAsync(client, "user_id", userId, p => p.GetProperty("eventCount").GetInt64() >= events)).GetProperty("id").GetInt64();

    private static async Task<long> SaveAsync(HttpClient client, string name, object rule) =>
        (await client.PostAsJsonAsync("/api/v1/segments", new { name, rule }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

    private static async Task<List<long>> MembersAsync(HttpClient client, long segmentId)
    {
        var page = await client.GetAsync($"/api/v1/segments/{segmentId}/members?limit=200").ReadAsync<JsonElement>();
        return [.. page.GetProperty("items").EnumerateArray().Select(i => i.GetInt64()).Order()];
    }

    private async Task<List<(string Type, long Segment, long Profile)>> ChangesAsync(long brandId, long afterId = 0) =>
        (await app.OutboxAsync(brandId, afterId, "segment.entered", "segment.exited"))
        .Select(m => (m.Type, m.Payload.GetProperty("segmentId").GetInt64(), m.Payload.GetProperty("profileId").GetInt64())).ToList();

    private async Task<long> LastOutboxIdAsync(long brandId) =>
        (await app.OutboxAsync(brandId, 0, "segment.entered", "segment.exited")).Select(m => m.Id).DefaultIfEmpty(0).Max();

    [Fact]
    public async Task A_saved_segment_is_materialised_and_publishes_segment_entered_with_exactly_segment_profile_and_time()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Hangzhou" } }, new { type = "identify", userId = "bo", traits = new { city = "Beijing" } });
        var ann = await ProfileAsync(b.Test.Client, "ann", 1);
        await ProfileAsync(b.Test.Client, "bo", 1);

        var segment = await SaveAsync(b.Test.Client, "Hangzhou", new { trait = "city", op = "eq", value = "Hangzhou" });
        await AudiencesApp.CaughtUpAsync(b.Test.Client);

        var saved = await b.Test.Client.GetAsync($"/api/v1/segments/{segment}").ReadAsync<JsonElement>();
        Assert.Equal("ready", saved.GetProperty("status").GetString());
        Assert.Equal(1, saved.GetProperty("size").GetInt64());
        Assert.Equal([ann], await MembersAsync(b.Test.Client, segment));
        var entered = Assert.Single(await app.OutboxAsync(b.Test.Id, 0, "segment.entered", "segment.exited"));
        Assert.Equal("segment.entered", entered.Type);
        Assert.Equal(["at", "profileId", "segmentId"], entered.Payload.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal((segment, ann), (entered.Payload.GetProperty("segmentId").GetInt64(), entered.Payload.GetProperty("profileId").GetInt64()));
        var at = entered.Payload.GetProperty("at").GetString()!;
        Assert.EndsWith("Z", at);
        Assert.Equal(Now, DateTime.Parse(at, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal));
    }

    [Fact]
    public async Task An_arriving_event_moves_the_customer_in_and_a_trait_change_moves_them_out_each_with_one_outbox_event()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Hangzhou" } });
        var ann = await ProfileAsync(b.Test.Client, "ann", 1);
        var buyers = await SaveAsync(b.Test.Client, "Hangzhou buyers", new
        {
            and = new object[] { new { trait = "city", op = "eq", value = "Hangzhou" }, new { @event = "Order Completed", withinDays = 30 } },
        });
        await AudiencesApp.CaughtUpAsync(b.Test.Client);
        Assert.Empty(await MembersAsync(b.Test.Client, buyers));

        await b.SendAsync(Order("ann", "o1", 1));
        await ProfileAsync(b.Test.Client, "ann", 2);
        await AudiencesApp.CaughtUpAsync(b.Test.Client);
        Assert.Equal([ann], await MembersAsync(b.Test.Client, buyers));
        Assert.True((await b.Test.Client.GetAsync($"/api/v1/segments/{buyers}/members/{ann}").ReadAsync<JsonElement>()).GetProperty("member").GetBoolean());
        Assert.Equal([buyers], (await b.Test.Client.GetAsync($"/api/v1/profiles/{ann}/segments").ReadAsync<List<JsonElement>>()).Select(s => s.GetProperty("id").GetInt64()));

        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Shanghai" } });
        await ProfileAsync(b.Test.Client, "ann", 3);
        await AudiencesApp.CaughtUpAsync(b.Test.Client);
        Assert.Empty(await MembersAsync(b.Test.Client, buyers));
        Assert.False((await b.Test.Client.GetAsync($"/api/v1/segments/{buyers}/members/{ann}").ReadAsync<JsonElement>()).GetProperty("member").GetBoolean());
        Assert.Equal([("segment.entered", buyers, ann), ("segment.exited", buyers, ann)], await ChangesAsync(b.Test.Id));
    }

    [Fact]
    public async Task When_the_window_lapses_the_customer_leaves_then_without_any_new_event()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.SendAsync(new { type = "identify", userId = "ann" }, Order("ann", "o1", 27.5), new { type = "identify", userId = "bo" }, Order("bo", "o2", 10.5));
        var ann = await ProfileAsync(b.Test.Client, "ann", 2);
        var bo = await ProfileAsync(b.Test.Client, "bo", 2);
        var recent = await SaveAsync(b.Test.Client, "Ordered in 30 days", new { @event = "Order Completed", withinDays = 30 });
        var lapsed = await SaveAsync(b.Test.Client, "No order in 30 days", new { not = new { @event = "Order Completed", withinDays = 30 } });
        await AudiencesApp.CaughtUpAsync(b.Test.Client);
        Assert.Equal([ann, bo], await MembersAsync(b.Test.Client, recent));
        var before = await LastOutboxIdAsync(b.Test.Id);

        app.Clock.Advance(TimeSpan.FromDays(3)); // ann's order is now 30.5 days old, bo's 13.5
        await AudiencesApp.CaughtUpAsync(b.Test.Client);

        Assert.Equal([bo], await MembersAsync(b.Test.Client, recent));
        Assert.Equal([ann], await MembersAsync(b.Test.Client, lapsed));
        Assert.Equal([("segment.exited", recent, ann), ("segment.entered", lapsed, ann)], (await ChangesAsync(b.Test.Id, before)).OrderBy(c => c.Type == "segment.entered"));
    }

    [Fact]
    public async Task Tagging_moves_customers_in_and_untagging_out_and_a_segment_of_segments_follows()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Hangzhou" } }, new { type = "identify", userId = "bo", traits = new { city = "Hangzhou" } });
        var ann = await ProfileAsync(c, "ann", 1);
        var bo = await ProfileAsync(c, "bo", 1);
        var vipTag = (await c.PostAsJsonAsync("/api/v1/tags", new { name = "VIP" }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();
        var vip = await SaveAsync(c, "VIP", new { tag = "VIP" });
        var hangzhouNotVip = await SaveAsync(c, "Hangzhou, not VIP", new { and = new object[] { new { trait = "city", op = "eq", value = "Hangzhou" }, new { not = new { segment = vip } } } });
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Empty(await MembersAsync(c, vip));
        Assert.Equal([ann, bo], await MembersAsync(c, hangzhouNotVip));

        await c.PutAsync($"/api/v1/tags/{vipTag}/profiles/{ann}", null).ReadAsync<JsonElement>();
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal([ann], await MembersAsync(c, vip));
        Assert.Equal([bo], await MembersAsync(c, hangzhouNotVip));

        (await c.DeleteAsync($"/api/v1/tags/{vipTag}/profiles/{ann}")).EnsureSuccessStatusCode();
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Empty(await MembersAsync(c, vip));
        Assert.Equal([ann, bo], await MembersAsync(c, hangzhouNotVip));
        Assert.Equal(2, (await ChangesAsync(b.Test.Id)).Count(x => x == ("segment.entered", hangzhouNotVip, ann)));
    }

    [Fact]
    public async Task A_profile_merged_into_another_leaves_its_segments()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Hangzhou" } }, new { type = "identify", anonymousId = "device-1", traits = new { city = "Hangzhou" } });
        var ann = await ProfileAsync(c, "ann", 1);
        var anonymous = (await ProfileTestBrand.LookupAsync(c, "anonymous_id", "device-1")).GetProperty("id").GetInt64();
        var hangzhou = await SaveAsync(c, "Hangzhou", new { trait = "city", op = "eq", value = "Hangzhou" });
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal(new[] { ann, anonymous }.Order(), await MembersAsync(c, hangzhou));

        await b.SendAsync(new { type = "identify", userId = "ann", anonymousId = "device-1" });
        await ProfileTestBrand.LookupAsync(c, "anonymous_id", "device-1", p => p.GetProperty("id").GetInt64() != anonymous);
        await AudiencesApp.CaughtUpAsync(c);

        var survivor = (await ProfileTestBrand.LookupAsync(c, "user_id", "ann")).GetProperty("id").GetInt64();
        Assert.Equal([survivor], await MembersAsync(c, hangzhou));
        var gone = new[] { ann, anonymous }.Single(id => id != survivor);
        Assert.Contains(("segment.exited", hangzhou, gone), await ChangesAsync(b.Test.Id));
    }

    [Fact]
    public async Task Traits_set_by_hand_a_manual_merge_and_an_erasure_move_customers_in_and_out_without_any_new_event()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Beijing" } }, new { type = "identify", userId = "bo", traits = new { city = "Hangzhou" } });
        var ann = await ProfileAsync(c, "ann", 1);
        var bo = await ProfileAsync(c, "bo", 1);
        var hangzhou = await SaveAsync(c, "Hangzhou", new { trait = "city", op = "eq", value = "Hangzhou" });
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal([bo], await MembersAsync(c, hangzhou));

        await c.PatchAsJsonAsync($"/api/v1/profiles/{ann}/traits", new { city = "Hangzhou" }).ReadAsync<JsonElement>();
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal(new[] { ann, bo }.Order(), await MembersAsync(c, hangzhou));

        await c.PostAsJsonAsync($"/api/v1/profiles/{bo}/merge", new { profileId = ann }).ReadAsync<JsonElement>();
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal([bo], await MembersAsync(c, hangzhou));

        (await c.DeleteAsync($"/api/v1/profiles/{bo}")).EnsureSuccessStatusCode();
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Empty(await MembersAsync(c, hangzhou));
        Assert.Equal([("segment.entered", hangzhou, bo), ("segment.entered", hangzhou, ann), ("segment.exited", hangzhou, ann), ("segment.exited", hangzhou, bo)],
            await ChangesAsync(b.Test.Id));
    }

    [Fact]
    public async Task Consent_to_marketing_by_sms_selects_customers_and_follows_grants_by_event_and_withdrawals_by_staff()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        await b.SendAsync(new { type = "identify", userId = "ann" }, new { type = "identify", userId = "bo" },
            new { type = "track", userId = "bo", @event = "Consent Updated", properties = new { channel = "sms", purpose = "service", granted = true } });
        var ann = await ProfileAsync(c, "ann", 1);
        var bo = await ProfileAsync(c, "bo", 2);
        var reachable = await SaveAsync(c, "SMS marketing", new { consent = "sms" });
        var unreachable = await SaveAsync(c, "No SMS marketing", new { not = new { consent = "sms", purpose = "marketing" } });
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Empty(await MembersAsync(c, reachable)); // bo consented to service messages only
        Assert.Equal(new[] { ann, bo }.Order(), await MembersAsync(c, unreachable));

        await b.SendAsync(new { type = "track", userId = "ann", @event = "Consent Updated", properties = new { channel = "sms", purpose = "marketing", granted = true } });
        await ProfileAsync(c, "ann", 2);
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal([ann], await MembersAsync(c, reachable));
        Assert.Equal([bo], await MembersAsync(c, unreachable));

        // Staff changes are stamped with the server's (fake) clock, the event's grant with the time it was sent: the
        // withdrawal comes later.
        var real = DateTimeOffset.UtcNow.AddSeconds(5);
        if (app.Clock.GetUtcNow() < real) app.Clock.SetUtcNow(real);
        await c.PostAsJsonAsync($"/api/v1/profiles/{ann}/consents", new { channel = "sms", purpose = "marketing", granted = false }).ReadAsync<JsonElement>();
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Empty(await MembersAsync(c, reachable));
        Assert.Equal(new[] { ann, bo }.Order(), await MembersAsync(c, unreachable));

        var problem = await c.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = new { consent = "pigeon" } }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(problem.GetProperty("errors").TryGetProperty("rule.consent", out _), problem.ToString());
    }

    [Fact]
    public async Task The_membership_check_answers_a_merged_id_for_its_survivor_and_finds_nothing_across_brands()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var other = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Hangzhou" } }, new { type = "identify", anonymousId = "device-1" },
            new { type = "identify", userId = "bo", traits = new { city = "Shanghai" } });
        await other.SendAsync(new { type = "identify", userId = "zed", traits = new { city = "Hangzhou" } });
        var ann = await ProfileAsync(c, "ann", 1);
        var bo = await ProfileAsync(c, "bo", 1);
        var anonymous = (await ProfileTestBrand.LookupAsync(c, "anonymous_id", "device-1")).GetProperty("id").GetInt64();
        var zed = await ProfileAsync(other.Test.Client, "zed", 1);
        var hangzhou = await SaveAsync(c, "Hangzhou", new { trait = "city", op = "eq", value = "Hangzhou" });
        await AudiencesApp.CaughtUpAsync(c);

        async Task<(bool Member, long ProfileId)> CheckAsync(long profileId)
        {
            var answer = await c.GetAsync($"/api/v1/segments/{hangzhou}/members/{profileId}").ReadAsync<JsonElement>();
            return (answer.GetProperty("member").GetBoolean(), answer.GetProperty("profileId").GetInt64());
        }
        Assert.Equal((true, ann), await CheckAsync(ann));
        Assert.Equal((false, bo), await CheckAsync(bo));
        Assert.Equal((false, anonymous), await CheckAsync(anonymous));

        await b.SendAsync(new { type = "identify", userId = "ann", anonymousId = "device-1" });
        await ProfileTestBrand.LookupAsync(c, "anonymous_id", "device-1", p => p.GetProperty("id").GetInt64() != anonymous);
        await AudiencesApp.CaughtUpAsync(c);
        var survivor = (await ProfileTestBrand.LookupAsync(c, "user_id", "ann")).GetProperty("id").GetInt64();
        var gone = new[] { ann, anonymous }.Single(id => id != survivor);
        Assert.Equal((true, survivor), await CheckAsync(gone));

        await c.GetAsync($"/api/v1/segments/{hangzhou}/members/{zed}").ProblemAsync(404, ProblemTypes.NotFound);
        await other.Test.Client.GetAsync($"/api/v1/segments/{hangzhou}/members/{survivor}").ProblemAsync(404, ProblemTypes.NotFound);
        await other.Test.Client.GetAsync($"/api/v1/segments/{hangzhou}/members/{zed}").ProblemAsync(404, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task Loyalty_tier_points_and_coupons_held_select_customers_and_follow_earning_spending_and_issuing()
    {
        var b = await Loyalty.LoyaltyTestBrand.CreateAsync(app);
        var c = b.Client;
        var other = await Loyalty.LoyaltyTestBrand.NewProfileAsync(b.Brand, "other");
        await c.PostAsJsonAsync($"/api/v1/loyalty/programmes/{b.ProgrammeId}/tiers", new { name = "Gold", rank = 1, qualifyingPoints = 100, qualifyingSpend = 0 })
            .ReadAsync<JsonElement>();
        var gold = await SaveAsync(c, "Gold", new { loyalty = "tier", op = "eq", value = "Gold" });
        var rich = await SaveAsync(c, "100 points", new { loyalty = "points", op = "gte", value = 100 });
        var notMembers = await SaveAsync(c, "Not members", new { loyalty = "points", op = "not_exists" });
        var holders = await SaveAsync(c, "Holding a coupon", new { coupons = "held" });
        var unused = await SaveAsync(c, "Never used one", new { coupons = "used", count = new { op = "eq", value = 0 } });
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Empty(await MembersAsync(c, gold));
        Assert.Empty(await MembersAsync(c, rich));
        Assert.Equal([other], await MembersAsync(c, notMembers));
        Assert.Empty(await MembersAsync(c, holders));
        Assert.Equal(new[] { b.ProfileId, other }.Order(), await MembersAsync(c, unused));

        await b.EarnAsync(150);
        await WaitForAsync(c, rich, [b.ProfileId]);
        Assert.Equal([b.ProfileId], await MembersAsync(c, gold));

        await b.SpendAsync(100); // 50 left; the tier stays (qualifying points do not fall by spending)
        await WaitForAsync(c, rich, []);
        Assert.Equal([b.ProfileId], await MembersAsync(c, gold));

        var template = (await c.PostAsJsonAsync("/api/v1/offers/templates", new { name = "¥20 off", kind = "amount_off", value = 2000, stock = 10 }).ReadAsync<JsonElement>())
            .GetProperty("id").GetInt64();
        await Offers.OffersTestBrand.PostAsync(c, $"/api/v1/offers/templates/{template}/issue", new { profileId = other }, "issue-1").ReadAsync<JsonElement>();
        await WaitForAsync(c, holders, [other]);
        Assert.Equal($"coupons held of template {template} count ≥ 1",
            (await c.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = new { coupons = "held", template } }).ReadAsync<JsonElement>()).GetProperty("text").GetString());
    }

    /// <summary>Loyalty and Offers reach segments through their outbox events, delivered a moment after they commit: waits for the members expected.</summary>
    private static async Task WaitForAsync(HttpClient client, long segmentId, List<long> expected)
    {
        for (var attempt = 0; ; attempt++)
        {
            await AudiencesApp.CaughtUpAsync(client);
            var members = await MembersAsync(client, segmentId);
            if (members.SequenceEqual(expected)) return;
            Assert.True(attempt < 300, $"segment {segmentId}: expected [{string.Join(", ", expected)}], still [{string.Join(", ", members)}]");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_rule_tag_is_carried_by_exactly_the_segments_members_and_refuses_manual_tagging()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        await b.SendAsync(new { type = "identify", userId = "ann", traits = new { city = "Hangzhou" } }, new { type = "identify", userId = "bo", traits = new { city = "Beijing" } });
        var ann = await ProfileAsync(c, "ann", 1);
        var bo = await ProfileAsync(c, "bo", 1);
        var hangzhou = await SaveAsync(c, "Hangzhou", new { trait = "city", op = "eq", value = "Hangzhou" });
        await AudiencesApp.CaughtUpAsync(c);
        var tag = await c.PostAsJsonAsync("/api/v1/tags", new { name = "Local", segmentId = hangzhou }).ReadAsync<JsonElement>();
        var tagId = tag.GetProperty("id").GetInt64();
        Assert.Equal(hangzhou, tag.GetProperty("segmentId").GetInt64());
        await AudiencesApp.CaughtUpAsync(c);

        async Task<List<long>> TaggedAsync() =>
            [.. (await c.GetAsync($"/api/v1/tags/{tagId}/profiles").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray().Select(i => i.GetInt64()).Order()];
        Assert.Equal([ann], await TaggedAsync());
        var history = await c.GetAsync($"/api/v1/profiles/{ann}/tags/history").ReadAsync<JsonElement>();
        Assert.Equal($"segment:{hangzhou}", history.GetProperty("items")[0].GetProperty("by").GetString());

        await b.SendAsync(new { type = "identify", userId = "bo", traits = new { city = "Hangzhou" } }, new { type = "identify", userId = "ann", traits = new { city = "Shanghai" } });
        await ProfileAsync(c, "ann", 2);
        await ProfileAsync(c, "bo", 2);
        await AudiencesApp.CaughtUpAsync(c);
        Assert.Equal([bo], await TaggedAsync());

        var refused = await c.PutAsync($"/api/v1/tags/{tagId}/profiles/{ann}", null).ProblemAsync(409, ProblemTypes.Conflict);
        Assert.Contains($"segment {hangzhou}", refused.GetProperty("detail").GetString());
        await c.PostAsJsonAsync("/api/v1/tags", new { name = "Nowhere", segmentId = 987654321 }).ProblemAsync(400, ProblemTypes.Validation);
    }

    [Fact]
    public async Task A_segment_naming_itself_or_closing_a_cycle_gets_400()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var c = b.Test.Client;
        var a = await SaveAsync(c, "A", new { tag = "VIP" });
        var bSeg = await SaveAsync(c, "B", new { segment = a });

        var cycle = await c.PutAsJsonAsync($"/api/v1/segments/{a}", new { name = "A", rule = new { not = new { segment = bSeg } } }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("cycle", cycle.GetProperty("errors").GetProperty("rule")[0].GetString());
        await c.PutAsJsonAsync($"/api/v1/segments/{a}", new { name = "A", rule = new { segment = a } }).ProblemAsync(400, ProblemTypes.Validation);
        var missing = await c.PostAsJsonAsync("/api/v1/segments", new { name = "C", rule = new { segment = 987654321 } }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("no segment 987654321", missing.GetProperty("errors").GetProperty("rule")[0].GetString());
        Assert.Equal("NOT (in segment " + a + ")", (await c.PostAsJsonAsync("/api/v1/segments/estimate", new { rule = new { not = new { segment = a } } }).ReadAsync<JsonElement>())
            .GetProperty("text").GetString());
    }
}

public sealed class SegmentMembershipTestsOnSqlite(AudiencesSqliteApp app) : SegmentMembershipTests(app), IClassFixture<AudiencesSqliteApp>;

public sealed class SegmentMembershipTestsOnPostgres(AudiencesPostgresApp app) : SegmentMembershipTests(app), IClassFixture<AudiencesPostgresApp>;
