using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Ingestion;

/// <summary>The Segment-Spec tracking API: what the client sent is kept, retries are dropped, rejects are stored with a reason.</summary>
public abstract class TrackingApiTests(MeridianAppFixture app)
{
    private sealed record Tracker(TestBrand Brand, long SourceId, HttpClient Client);

    private async Task<Tracker> NewSourceAsync()
    {
        var brand = await app.NewBrandAsync();
        var created = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        var client = app.WriteKeyClient(created.GetProperty("writeKey").GetString()!);
        return new Tracker(brand, created.GetProperty("source").GetProperty("id").GetInt64(), client);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<List<RawEvent>> EventsAsync(long sourceId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<RawEvent>().Where(e => e.SourceId == sourceId).OrderBy(e => e.Id).ToListAsync();
    }

    private async Task<List<RejectedEvent>> RejectsAsync(long sourceId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<RejectedEvent>().Where(e => e.SourceId == sourceId).OrderBy(e => e.Id).ToListAsync();
    }

    [Fact]
    public async Task A_track_call_is_stored_exactly_as_sent()
    {
        var t = await NewSourceAsync();
        const string body = """{"userId":"u-1","event":"Order Completed","properties":{"order_id":"o1","total":12800,"currency":"CNY"},"messageId":"m-1","timestamp":"2026-11-01T08:00:00Z"}""";

        var response = await t.Client.PostAsync("/v1/track", Json(body)).ReadAsync<JsonElement>();

        Assert.True(response.GetProperty("success").GetBoolean());
        var stored = Assert.Single(await EventsAsync(t.SourceId));
        Assert.Equal(body, stored.Payload);
        Assert.Equal(("track", "Order Completed", "u-1", "m-1"), (stored.Type, stored.Name, stored.UserId, stored.MessageId));
        Assert.Equal(t.Brand.Id, stored.TenantId);
        Assert.Equal(new DateTime(2026, 11, 1, 8, 0, 0, DateTimeKind.Utc), stored.Timestamp);
    }

    [Fact]
    public async Task The_write_key_may_come_in_the_body()
    {
        var t = await NewSourceAsync();
        var writeKey = Encoding.UTF8.GetString(Convert.FromBase64String(t.Client.DefaultRequestHeaders.Authorization!.Parameter!)).TrimEnd(':');
        using var anonymous = app.CreateClient();
        await anonymous.PostAsync("/v1/identify", Json($$$"""{"writeKey":"{{{writeKey}}}","anonymousId":"a-1","traits":{"city":"Hangzhou"}}""")).ReadAsync<JsonElement>();
        Assert.Equal("a-1", Assert.Single(await EventsAsync(t.SourceId)).AnonymousId);
    }

    [Fact]
    public async Task An_unknown_write_key_gets_401_problem_details()
    {
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("mdn_wk_nope:"u8.ToArray()));
        await client.PostAsync("/v1/track", Json("""{"userId":"u","event":"x"}""")).ProblemAsync(401, ProblemTypes.Unauthorized);
    }

    [Fact]
    public async Task A_repeated_messageId_is_accepted_and_ignored()
    {
        var t = await NewSourceAsync();
        const string body = """{"userId":"u-1","event":"Checked In","messageId":"retry-me"}""";
        await t.Client.PostAsync("/v1/track", Json(body)).ReadAsync<JsonElement>();
        var again = await t.Client.PostAsync("/v1/track", Json(body)).ReadAsync<JsonElement>();

        Assert.Equal(1, again.GetProperty("duplicates").GetInt32());
        Assert.Single(await EventsAsync(t.SourceId));
    }

    [Fact]
    public async Task A_batch_keeps_the_good_items_and_stores_the_bad_ones_with_their_reason()
    {
        var t = await NewSourceAsync();
        const string body = """
            {"batch":[
              {"type":"track","userId":"u-1","event":"Product Viewed","messageId":"ok-1"},
              {"type":"track","userId":"u-1","messageId":"no-event"},
              {"type":"identify","messageId":"nobody","traits":{"email":"a@b.c"}},
              {"type":"teleport","userId":"u-1","messageId":"odd"},
              {"type":"page","anonymousId":"a-9","name":"Home","messageId":"ok-2","timestamp":"yesterday"},
              {"type":"page","anonymousId":"a-9","name":"Home","messageId":"ok-3"}
            ],"context":{"library":{"name":"analytics-node"}}}
            """;

        var response = await t.Client.PostAsync("/v1/batch", Json(body)).ReadAsync<JsonElement>();

        Assert.Equal(2, response.GetProperty("accepted").GetInt32());
        var rejected = response.GetProperty("rejected").EnumerateArray()
            .Select(r => (r.GetProperty("index").GetInt32(), r.GetProperty("reason").GetString())).ToList();
        Assert.Equal([(1, RejectReasons.MissingEvent), (2, RejectReasons.MissingIdentity), (3, RejectReasons.UnknownType), (4, RejectReasons.InvalidTimestamp)], rejected);

        var stored = await EventsAsync(t.SourceId);
        Assert.Equal(["ok-1", "ok-3"], stored.Select(e => e.MessageId).ToArray());
        Assert.All(stored, e => Assert.Equal("""{"library":{"name":"analytics-node"}}""", e.BatchContext));
        var rejects = await RejectsAsync(t.SourceId);
        Assert.Equal([RejectReasons.MissingEvent, RejectReasons.MissingIdentity, RejectReasons.UnknownType, RejectReasons.InvalidTimestamp], rejects.Select(r => r.Reason).ToArray());
        Assert.Contains("\"messageId\":\"nobody\"", rejects[1].Payload);
    }

    [Fact]
    public async Task The_event_time_is_corrected_for_the_clients_clock_skew()
    {
        var t = await NewSourceAsync();
        // The device's clock is a year off, but it sent the event five minutes after recording it.
        await t.Client.PostAsync("/v1/track", Json("""{"userId":"u","event":"Signed Up","timestamp":"2020-01-01T10:00:00Z","sentAt":"2020-01-01T10:05:00Z"}""")).ReadAsync<JsonElement>();

        var stored = Assert.Single(await EventsAsync(t.SourceId));
        Assert.Equal(stored.ReceivedAt - TimeSpan.FromMinutes(5), stored.Timestamp);
    }

    [Fact]
    public async Task A_message_over_32_KB_gets_400_with_the_reason_and_is_kept_as_a_reject()
    {
        var t = await NewSourceAsync();
        var big = $$$"""{"userId":"u","event":"Big","properties":{"blob":"{{{new string('x', 33 * 1024)}}}"}}""";

        var problem = await t.Client.PostAsync("/v1/track", Json(big)).ProblemAsync(400, ProblemTypes.Validation);

        Assert.Equal(RejectReasons.EventTooLarge, problem.GetProperty("reason").GetString());
        Assert.Equal(RejectReasons.EventTooLarge, Assert.Single(await RejectsAsync(t.SourceId)).Reason);
        Assert.Empty(await EventsAsync(t.SourceId));
    }

    [Fact]
    public async Task A_batch_over_500_KB_gets_400_with_the_reason_and_is_kept_as_a_reject()
    {
        var t = await NewSourceAsync();
        var items = string.Join(',', Enumerable.Range(0, 40).Select(i => $$$"""{"type":"track","userId":"u","event":"E","properties":{"p":"{{{new string('y', 15 * 1024)}}}"}}"""));

        var problem = await t.Client.PostAsync("/v1/batch", Json($$"""{"batch":[{{items}}]}""")).ProblemAsync(400, ProblemTypes.Validation);

        Assert.Equal(RejectReasons.BatchTooLarge, problem.GetProperty("reason").GetString());
        Assert.Equal(RejectReasons.BatchTooLarge, Assert.Single(await RejectsAsync(t.SourceId)).Reason);
    }

    [Fact]
    public async Task Invalid_json_gets_400_and_is_kept_as_a_reject()
    {
        var t = await NewSourceAsync();
        var problem = await t.Client.PostAsync("/v1/track", Json("""{"userId":"u","event":""")).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Equal(RejectReasons.InvalidJson, problem.GetProperty("reason").GetString());
        Assert.Equal("""{"userId":"u","event":""", Assert.Single(await RejectsAsync(t.SourceId)).Payload);
    }

    [Fact]
    public async Task A_disabled_sources_events_are_kept_as_rejects()
    {
        var t = await NewSourceAsync();
        await t.Brand.Client.PatchAsJsonAsync($"/api/v1/sources/{t.SourceId}", new { enabled = false }).ReadAsync<JsonElement>();

        await t.Client.PostAsync("/v1/track", Json("""{"userId":"u","event":"E"}""")).ProblemAsync(400, ProblemTypes.Validation);

        Assert.Equal(RejectReasons.SourceDisabled, Assert.Single(await RejectsAsync(t.SourceId)).Reason);
    }

    [Fact]
    public async Task A_gzipped_batch_is_accepted()
    {
        var t = await NewSourceAsync();
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            gzip.Write("""{"batch":[{"type":"screen","userId":"u","name":"Cart"}]}"""u8);
        var content = new ByteArrayContent(compressed.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Headers.ContentEncoding.Add("gzip");

        await t.Client.PostAsync("/v1/batch", content).ReadAsync<JsonElement>();

        Assert.Equal("Cart", Assert.Single(await EventsAsync(t.SourceId)).Name);
    }

    [Fact]
    public async Task Data_quality_counts_accepted_duplicates_and_rejects_by_reason_per_source()
    {
        var t = await NewSourceAsync();
        await t.Client.PostAsync("/v1/batch", Json("""
            {"batch":[{"type":"track","userId":"u","event":"A","messageId":"1"},{"type":"track","userId":"u","event":"B","messageId":"2"},
                      {"type":"track","userId":"u","messageId":"3"}]}
            """)).ReadAsync<JsonElement>();
        await t.Client.PostAsync("/v1/track", Json("""{"userId":"u","event":"A","messageId":"1"}""")).ReadAsync<JsonElement>();

        var report = await t.Brand.Client.GetAsync("/api/v1/data-quality?days=7").ReadAsync<JsonElement>();
        var day = report.EnumerateArray().Single(s => s.GetProperty("sourceId").GetInt64() == t.SourceId).GetProperty("days").EnumerateArray().Single();
        Assert.Equal(2, day.GetProperty("accepted").GetInt64());
        Assert.Equal(1, day.GetProperty("duplicates").GetInt64());
        Assert.Equal(1, day.GetProperty("rejected").GetInt64());
        Assert.Equal(1, day.GetProperty("rejectedByReason").GetProperty(RejectReasons.MissingEvent).GetInt64());
        Assert.Equal(1.0 / 3, day.GetProperty("duplicateRate").GetDouble(), 3);
    }

    [Fact]
    public async Task Concurrent_batches_are_each_answered_for_themselves_and_counted_once()
    {
        // Requests that arrive together share a commit: each must still get its own counts, and a messageId sent by two
        // requests at once must be stored once, whichever of them wins.
        var t = await NewSourceAsync();
        const int requests = 24;
        var sent = Enumerable.Range(0, requests).Select(r => t.Client.PostAsync("/v1/batch", Json(JsonSerializer.Serialize(new
        {
            batch = Enumerable.Range(0, 20).Select(i => new { type = "track", userId = $"u{r}", @event = "Viewed", messageId = $"r{r}-{i}" })
                .Append(new { type = "track", userId = "shared", @event = "Viewed", messageId = "sent-by-all" })
                .Append(new { type = "track", userId = $"u{r}", @event = "", messageId = $"bad-{r}" }),
        }))).ReadAsync<JsonElement>()).ToList();
        var answers = await Task.WhenAll(sent);

        Assert.All(answers, a => Assert.Equal(1, a.GetProperty("rejected").GetArrayLength()));
        Assert.All(answers, a => Assert.Equal(21, a.GetProperty("accepted").GetInt32() + a.GetProperty("duplicates").GetInt32()));
        Assert.Equal(requests - 1, answers.Sum(a => a.GetProperty("duplicates").GetInt32()));
        Assert.Equal(requests * 20 + 1, (await EventsAsync(t.SourceId)).Count);
        Assert.Equal(requests, (await RejectsAsync(t.SourceId)).Count);
        var report = await t.Brand.Client.GetAsync("/api/v1/data-quality?days=7").ReadAsync<JsonElement>();
        var day = report.EnumerateArray().Single(s => s.GetProperty("sourceId").GetInt64() == t.SourceId).GetProperty("days").EnumerateArray().Single();
        Assert.Equal(requests * 20 + 1, day.GetProperty("accepted").GetInt64());
        Assert.Equal(requests - 1, day.GetProperty("duplicates").GetInt64());
        Assert.Equal(requests, day.GetProperty("rejected").GetInt64());
    }

    [Fact]
    public async Task Reject_payloads_are_shown_only_to_keys_with_pii_read()
    {
        var t = await NewSourceAsync();
        await t.Client.PostAsync("/v1/track", Json("""{"event":"E","traits":{"phone":"13812345678"}}""")).ProblemAsync(400, ProblemTypes.Validation);

        var admin = await t.Brand.Client.GetAsync($"/api/v1/sources/{t.SourceId}/rejects").ReadAsync<JsonElement>();
        Assert.Contains("13812345678", admin.GetProperty("items")[0].GetProperty("payload").GetString());

        using var analyst = app.ClientWithKey(await app.NewKeyAsync("analyst", t.Brand.Slug));
        var masked = await analyst.GetAsync($"/api/v1/sources/{t.SourceId}/rejects").ReadAsync<JsonElement>();
        Assert.Equal(JsonValueKind.Null, masked.GetProperty("items")[0].GetProperty("payload").ValueKind);
        Assert.Equal(RejectReasons.MissingIdentity, masked.GetProperty("items")[0].GetProperty("reason").GetString());
    }
}

public sealed class TrackingApiTestsOnSqlite(SqliteApp app) : TrackingApiTests(app), IClassFixture<SqliteApp>;

public sealed class TrackingApiTestsOnPostgres(PostgresApp app) : TrackingApiTests(app), IClassFixture<PostgresApp>;
