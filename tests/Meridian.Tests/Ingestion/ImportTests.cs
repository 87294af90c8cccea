using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Import;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Ingestion;

/// <summary>
/// Bulk import: every row of a CSV or JSON lines file becomes a Segment message in the events table (or a reject with
/// its line and reason), exactly once, even when the import is interrupted and resumed by another node.
/// </summary>
public abstract class ImportTests(MeridianAppFixture app)
{
    private string ImportDirectory => ((IImportApp)app).ImportDirectory;

    private sealed record Importer(TestBrand Brand, long SourceId);

    private async Task<Importer> NewImporterAsync()
    {
        var brand = await app.NewBrandAsync();
        var created = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "pos", channel = "pos" }).ReadAsync<JsonElement>();
        return new Importer(brand, created.GetProperty("source").GetProperty("id").GetInt64());
    }

    private static Task<HttpResponseMessage> PostFileAsync(HttpClient client, string query, string body, string contentType = "text/csv") =>
        client.PostAsync("/api/v1/imports?" + query, new StringContent(body, Encoding.UTF8, contentType));

    private static async Task<long> UploadAsync(Importer to, string kind, string body, string contentType = "text/csv", string extra = "")
    {
        var created = await PostFileAsync(to.Brand.Client, $"kind={kind}&sourceId={to.SourceId}{extra}", body, contentType).ReadAsync<JsonElement>();
        Assert.Equal("queued", created.GetProperty("status").GetString());
        return created.GetProperty("id").GetInt64();
    }

    private ImportProcessor Processor => app.Services.GetRequiredService<ImportProcessor>();

    /// <summary>Runs an import on this node as the worker would (the fixture's worker is off, so the test decides when).</summary>
    private async Task<JsonElement> RunAsync(Importer importer, long id)
    {
        Assert.Equal(ImportRunOutcome.Completed, await Processor.RunAsync(id, "test-node", null, null, CancellationToken.None));
        return await importer.Brand.Client.GetAsync($"/api/v1/imports/{id}").ReadAsync<JsonElement>();
    }

    private async Task<T> DbAsync<T>(Func<MeridianDb, Task<T>> query)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await query(scope.ServiceProvider.GetRequiredService<MeridianDb>());
    }

    private Task<List<RawEvent>> EventsAsync(long sourceId) =>
        DbAsync(db => db.Set<RawEvent>().Where(e => e.SourceId == sourceId).OrderBy(e => e.Id).ToListAsync());

    private static JsonElement Payload(RawEvent e) => JsonDocument.Parse(e.Payload).RootElement;

    private static async Task<List<(int Line, string Reason, string Detail)>> RejectsAsync(Importer importer)
    {
        var page = await importer.Brand.Client.GetAsync($"/api/v1/sources/{importer.SourceId}/rejects?limit=200").ReadAsync<JsonElement>();
        return page.GetProperty("items").EnumerateArray()
            .Select(r => (r.GetProperty("batchIndex").GetInt32(), r.GetProperty("reason").GetString()!, r.GetProperty("detail").GetString()!))
            .OrderBy(r => r.Item1).ToList();
    }

    private static void AssertCounts(JsonElement import, long rowsRead, long accepted, long duplicates, long rejected, long skipped = 0)
    {
        Assert.Equal("completed", import.GetProperty("status").GetString());
        Assert.Equal(
            (rowsRead, accepted, duplicates, rejected, skipped),
            (import.GetProperty("rowsRead").GetInt64(), import.GetProperty("accepted").GetInt64(), import.GetProperty("duplicates").GetInt64(),
             import.GetProperty("rejected").GetInt64(), import.GetProperty("skipped").GetInt64()));
        Assert.Equal(100, import.GetProperty("percent").GetDouble());
    }

    [Fact]
    public async Task A_customers_csv_becomes_identify_events_and_bad_rows_are_rejected_with_their_line_and_reason()
    {
        var importer = await NewImporterAsync();
        // A byte order mark and CRLF line ends, as spreadsheet programs write them; quoted commas, quotes and a line break.
        const string csv = "\uFEFFmember_no,name,phone,email,birthday,store,joined_at\r\n"
            + "M1,\"Zhang, Wei\",13812345678,ZW@Example.com ,1990-05-04,SH01,2019-05-04T14:22:05+08:00\r\n"
            + "M2,\"Li \"\"Lucky\"\" Na\",+86 138 1234 5678,,1985/1/2,BJ01,\r\n"
            + "M3,\"Wang\r\nFang\",,wf@example.com,,SH01,\r\n"
            + ",No Id,13900000000,,,,\r\n"
            + "M5,Bad Birthday,,,31/12/1990,,\r\n"
            + "M6,Too,Many,Fields,,,,,\r\n"
            + "M7,\"never closed,,,,,\r\n"
            + "M8,Last,,,,,\r\n";

        var import = await RunAsync(importer, await UploadAsync(importer, "customers", csv));

        AssertCounts(import, rowsRead: 8, accepted: 4, duplicates: 0, rejected: 4);
        var events = await EventsAsync(importer.SourceId);
        Assert.Equal(["M1", "M2", "M3", "M8"], events.Select(e => e.UserId!).ToArray());
        Assert.All(events, e => Assert.Equal("identify", e.Type));
        var zhang = Payload(events[0]).GetProperty("traits");
        Assert.Equal("Zhang, Wei", zhang.GetProperty("name").GetString());
        Assert.Equal("ZW@Example.com ", zhang.GetProperty("email").GetString()); // as typed: normalising is identity resolution's job
        Assert.Equal("1990-05-04", zhang.GetProperty("birthday").GetString());
        Assert.Equal("2019-05-04T14:22:05+08:00", zhang.GetProperty("createdAt").GetString());
        Assert.Equal("SH01", zhang.GetProperty("store").GetString()); // an unmapped column is kept as a trait
        Assert.Equal("Li \"Lucky\" Na", Payload(events[1]).GetProperty("traits").GetProperty("name").GetString());
        Assert.Equal("1985-01-02", Payload(events[1]).GetProperty("traits").GetProperty("birthday").GetString());
        Assert.Equal("Wang\nFang", Payload(events[2]).GetProperty("traits").GetProperty("name").GetString());
        Assert.Equal(10, Payload(events[3]).GetProperty("context").GetProperty("import").GetProperty("line").GetInt32());

        var rejects = await RejectsAsync(importer);
        Assert.Equal([(6, RejectReasons.MissingIdentity), (7, RejectReasons.InvalidDate), (8, RejectReasons.InvalidCsv), (9, RejectReasons.InvalidCsv)],
            rejects.Select(r => (r.Line, r.Reason)).ToArray());
        Assert.StartsWith("Line 7: birthday: '31/12/1990' is not a date", rejects[1].Detail);
        Assert.Contains("the row has 9 fields; the header has 7", rejects[2].Detail);
        Assert.Contains("a quoted field is not closed", rejects[3].Detail);
    }

    [Fact]
    public async Task An_orders_csv_becomes_order_completed_and_order_refunded_track_events()
    {
        var importer = await NewImporterAsync();
        const string csv = """
            order_id,member_no,phone,store,total_fen,currency,completed_at,items,status
            SH01-1,M1,,SH01,12900,CNY,2026-11-01T10:00:00+08:00,"[{""sku"":""A"",""price"":12900,""quantity"":1}]",
            SH01-2,,13812345678,SH01,5000,CNY,2026-11-02T10:00:00+08:00,,refunded
            SH01-3,M2,,SH01,12.50,CNY,2026-11-02T10:00:00+08:00,,
            ,M3,,SH01,100,CNY,2026-11-02T10:00:00+08:00,,
            SH01-5,,,SH01,100,CNY,2026-11-02T10:00:00+08:00,,
            SH01-6,M4,,SH01,100,CNY,yesterday,,
            SH01-7,M4,,SH01,100,CNY,2026-11-02T10:00:00+08:00,not json,
            SH01-8,M4,,SH01,100,CNY,2026-11-02T10:00:00+08:00,,lost
            """;

        var import = await RunAsync(importer, await UploadAsync(importer, "orders", csv));

        AssertCounts(import, rowsRead: 8, accepted: 2, duplicates: 0, rejected: 6);
        var events = await EventsAsync(importer.SourceId);
        Assert.Equal([("track", "Order Completed", "M1", null), ("track", "Order Refunded", null, "order:SH01-2")],
            events.Select(e => (e.Type, e.Name, e.UserId, e.AnonymousId)).ToArray());
        Assert.Equal(new DateTime(2026, 11, 1, 2, 0, 0, DateTimeKind.Utc), events[0].Timestamp);
        var completed = Payload(events[0]).GetProperty("properties");
        Assert.Equal("SH01-1", completed.GetProperty("order_id").GetString());
        Assert.Equal(12900, completed.GetProperty("total").GetInt64());
        Assert.Equal("CNY", completed.GetProperty("currency").GetString());
        Assert.Equal("A", completed.GetProperty("products")[0].GetProperty("sku").GetString());
        Assert.Equal("SH01", completed.GetProperty("store").GetString());
        // A receipt that names the shopper by phone only keeps the phone where identity resolution looks for it.
        Assert.Equal("13812345678", Payload(events[1]).GetProperty("context").GetProperty("traits").GetProperty("phone").GetString());

        var rejects = await RejectsAsync(importer);
        Assert.Equal(
            [(4, RejectReasons.InvalidNumber), (5, RejectReasons.MissingOrderId), (6, RejectReasons.MissingIdentity),
             (7, RejectReasons.InvalidTimestamp), (8, RejectReasons.InvalidField), (9, RejectReasons.InvalidField)],
            rejects.Select(r => (r.Line, r.Reason)).ToArray());
        Assert.Contains("total_fen: '12.50' is not a whole amount in minor units", rejects[0].Detail);
    }

    [Fact]
    public async Task Jsonl_events_are_stored_as_they_are_and_a_line_without_a_messageId_gets_one_from_its_place()
    {
        var importer = await NewImporterAsync();
        const string first = """{"type":"track","event":"Product Viewed","userId":"U1","messageId":"e-1","timestamp":"2026-03-01T08:00:00.000Z","properties":{"sku":"A"}}""";
        var jsonl = string.Join('\n',
            first,
            """{"type":"identify","anonymousId":"a-1","traits":{"email":"x@example.com"}}""",
            """{"type":"track","userId":"U1","event":""",
            "",
            """{"type":"track","userId":"U1","messageId":"e-5"}""",
            """{"type":"track","userId":"U1","event":"Old","messageId":"e-6","timestamp":"2020-01-01T10:00:00Z","sentAt":"2020-01-01T10:05:00Z"}""") + "\n";

        var id = await UploadAsync(importer, "events", jsonl, "application/x-ndjson");
        var import = await RunAsync(importer, id);

        AssertCounts(import, rowsRead: 5, accepted: 3, duplicates: 0, rejected: 2);
        var events = await EventsAsync(importer.SourceId);
        Assert.Equal(first, events[0].Payload);
        var prefix = await DbAsync(db => db.Set<ImportJob>().Where(j => j.Id == id).Select(j => j.MessageIdPrefix).SingleAsync());
        Assert.Equal(prefix + "2", events[1].MessageId);
        Assert.Equal(prefix + "2", Payload(events[1]).GetProperty("messageId").GetString());
        // History is not corrected for clock skew: it was not sent just now.
        Assert.Equal(new DateTime(2020, 1, 1, 10, 0, 0, DateTimeKind.Utc), events[2].Timestamp);
        Assert.Equal([(3, RejectReasons.InvalidJson), (5, RejectReasons.MissingEvent)], (await RejectsAsync(importer)).Select(r => (r.Line, r.Reason)).ToArray());
    }

    [Fact]
    public async Task Progress_is_reported_as_the_import_goes_and_at_the_end()
    {
        var importer = await NewImporterAsync();
        var csv = "member_no,name\n" + string.Concat(Enumerable.Range(1, 10).Select(i => $"M{i},Name {i}\n"));
        var id = await UploadAsync(importer, "customers", csv, extra: "&fileName=members.csv");

        var queued = await importer.Brand.Client.GetAsync($"/api/v1/imports/{id}").ReadAsync<JsonElement>();
        Assert.Equal(("queued", 0, 0.0), (queued.GetProperty("status").GetString(), queued.GetProperty("rowsRead").GetInt64(), queued.GetProperty("percent").GetDouble()));
        Assert.Equal("members.csv", queued.GetProperty("fileName").GetString());
        Assert.Equal("user_id", queued.GetProperty("mapping").GetProperty("member_no").GetString());

        // The fixture commits 3 rows a chunk: one chunk, then the worker stops.
        Assert.Equal(ImportRunOutcome.Stopped, await Processor.RunAsync(id, "test-node", 1, null, CancellationToken.None));
        var running = await importer.Brand.Client.GetAsync($"/api/v1/imports/{id}").ReadAsync<JsonElement>();
        Assert.Equal(("running", 3, 5), (running.GetProperty("status").GetString(), running.GetProperty("rowsRead").GetInt64(), running.GetProperty("nextLine").GetInt64()));
        Assert.InRange(running.GetProperty("percent").GetDouble(), 1, 99);
        Assert.Equal(csv.Split('\n').Take(4).Sum(l => l.Length + 1), running.GetProperty("bytesRead").GetInt64());

        var done = await RunAsync(importer, id);
        AssertCounts(done, rowsRead: 10, accepted: 10, duplicates: 0, rejected: 0);
        Assert.Equal(Encoding.UTF8.GetByteCount(csv), done.GetProperty("bytesRead").GetInt64());
        var list = await importer.Brand.Client.GetAsync("/api/v1/imports").ReadAsync<JsonElement>();
        Assert.Equal(id, Assert.Single(list.GetProperty("items").EnumerateArray()).GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task An_import_interrupted_mid_file_is_resumed_by_another_node_and_stores_each_row_exactly_once()
    {
        var importer = await NewImporterAsync();
        var csv = "member_no,name\n" + string.Concat(Enumerable.Range(1, 20).Select(i => $"M{i},\"Name, {i}\"\n"));
        var id = await UploadAsync(importer, "customers", csv);

        // Node A commits two chunks of three rows, then dies: its lease outlives it.
        Assert.Equal(ImportRunOutcome.Stopped, await Processor.RunAsync(id, "node-a", 2, null, CancellationToken.None));
        // While the lease holds, no other node may take the import.
        Assert.Equal(ImportRunOutcome.NotClaimed, await Processor.RunAsync(id, "node-b", null, null, CancellationToken.None));
        var held = await DbAsync(db => db.Set<ImportJob>().SingleAsync(j => j.Id == id));
        Assert.Equal(("node-a", 6, 8), (held.LeaseOwner, held.RowsRead, held.NextLine));
        Assert.Equal(6, (await EventsAsync(importer.SourceId)).Count);

        var lapsed = DateTime.UtcNow.AddSeconds(-1);
        await DbAsync(db => db.Set<ImportJob>().Where(j => j.Id == id).ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseUntil, lapsed)));
        Assert.Equal(ImportRunOutcome.Completed, await Processor.RunAsync(id, "node-b", null, null, CancellationToken.None));

        var events = await EventsAsync(importer.SourceId);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => $"M{i}"), events.Select(e => e.UserId));
        Assert.Equal(20, events.Select(e => e.MessageId).Distinct().Count());
        var job = await DbAsync(db => db.Set<ImportJob>().SingleAsync(j => j.Id == id));
        Assert.Equal((ImportStatus.Completed, 20, 20, 0, "node-b"), (job.Status, job.RowsRead, job.Accepted, job.Duplicates, job.LeaseOwner));
        Assert.False(File.Exists(job.FilePath)); // an upload is deleted once imported
    }

    [Fact]
    public async Task An_import_whose_source_was_deleted_fails_with_the_reason_and_its_upload_is_removed()
    {
        var importer = await NewImporterAsync();
        var id = await UploadAsync(importer, "customers", "member_no\nM1\n");
        var path = await DbAsync(db => db.Set<ImportJob>().Where(j => j.Id == id).Select(j => j.FilePath).SingleAsync());
        using (var deleted = await importer.Brand.Client.DeleteAsync($"/api/v1/sources/{importer.SourceId}")) Assert.True(deleted.IsSuccessStatusCode);

        Assert.Equal(ImportRunOutcome.Failed, await Processor.RunAsync(id, "test-node", null, null, CancellationToken.None));

        var failed = await importer.Brand.Client.GetAsync($"/api/v1/imports/{id}").ReadAsync<JsonElement>();
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Contains("was deleted", failed.GetProperty("error").GetString());
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task An_import_that_keeps_failing_shows_the_error_backs_off_and_gives_up_after_its_attempts()
    {
        var importer = await NewImporterAsync();
        var id = await UploadAsync(importer, "customers", "member_no\nM1\n");
        File.Delete(await DbAsync(db => db.Set<ImportJob>().Where(j => j.Id == id).Select(j => j.FilePath).SingleAsync()));

        Assert.Equal(ImportRunOutcome.Stopped, await Processor.RunAsync(id, "test-node", null, null, CancellationToken.None));
        var retrying = await importer.Brand.Client.GetAsync($"/api/v1/imports/{id}").ReadAsync<JsonElement>();
        Assert.Equal("running", retrying.GetProperty("status").GetString());
        Assert.Contains("The file to import is not on node", retrying.GetProperty("error").GetString());
        // The failing node keeps the lease through the backoff: nobody retries at once.
        Assert.Equal(ImportRunOutcome.NotClaimed, await Processor.RunAsync(id, "other-node", null, null, CancellationToken.None));

        var outcomes = new List<ImportRunOutcome>();
        for (var attempt = 2; attempt <= 6; attempt++)
        {
            var lapsed = DateTime.UtcNow.AddSeconds(-1);
            await DbAsync(db => db.Set<ImportJob>().Where(j => j.Id == id).ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseUntil, lapsed)));
            outcomes.Add(await Processor.RunAsync(id, "test-node", null, null, CancellationToken.None));
        }
        Assert.Equal([ImportRunOutcome.Stopped, ImportRunOutcome.Stopped, ImportRunOutcome.Stopped, ImportRunOutcome.Stopped, ImportRunOutcome.Failed], outcomes);
        var failed = await importer.Brand.Client.GetAsync($"/api/v1/imports/{id}").ReadAsync<JsonElement>();
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.StartsWith("Gave up after 5 attempts", failed.GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_same_file_imported_twice_adds_no_event_twice()
    {
        var importer = await NewImporterAsync();
        const string csv = "member_no,name\nM1,A\nM2,B\n";
        await RunAsync(importer, await UploadAsync(importer, "customers", csv));

        var again = await RunAsync(importer, await UploadAsync(importer, "customers", csv));

        AssertCounts(again, rowsRead: 2, accepted: 0, duplicates: 2, rejected: 0);
        Assert.Equal(2, (await EventsAsync(importer.SourceId)).Count);
    }

    [Fact]
    public async Task Rows_of_another_brand_are_skipped_and_a_mapping_renames_columns()
    {
        var importer = await NewImporterAsync();
        var csv = $"card,brand,mobile,note\nC1,{importer.Brand.Slug},13800000001,vip\nC2,someone-else,13800000002,\nC3,,13800000003,\n";

        var id = await UploadAsync(importer, "customers", csv, extra: "&map=card=user_id&map=mobile=phone&map=note=ignore");
        var import = await RunAsync(importer, id);

        AssertCounts(import, rowsRead: 3, accepted: 2, duplicates: 0, rejected: 0, skipped: 1);
        var events = await EventsAsync(importer.SourceId);
        Assert.Equal(["C1", "C3"], events.Select(e => e.UserId!).ToArray());
        var traits = Payload(events[0]).GetProperty("traits");
        Assert.Equal("13800000001", traits.GetProperty("phone").GetString());
        Assert.False(traits.TryGetProperty("note", out _));
        Assert.False(traits.TryGetProperty("brand", out _));
    }

    [Fact]
    public async Task A_multipart_upload_with_the_options_as_form_fields_is_accepted()
    {
        var importer = await NewImporterAsync();
        using var form = new MultipartFormDataContent
        {
            { new StringContent("customers"), "kind" },
            { new StringContent(importer.SourceId.ToString()), "sourceId" },
            { new StringContent("card=user_id"), "map" },
        };
        var file = new ByteArrayContent("card,name\nC1,Ann\n"u8.ToArray());
        file.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        form.Add(file, "file", "export.csv");

        var created = await importer.Brand.Client.PostAsync("/api/v1/imports", form).ReadAsync<JsonElement>();
        Assert.Equal("export.csv", created.GetProperty("fileName").GetString());
        Assert.Equal("csv", created.GetProperty("format").GetString());

        await RunAsync(importer, created.GetProperty("id").GetInt64());
        Assert.Equal("C1", Assert.Single(await EventsAsync(importer.SourceId)).UserId);
    }

    [Fact]
    public async Task An_upload_over_the_1_MiB_limit_of_other_endpoints_is_streamed_to_disk_and_imported()
    {
        var importer = await NewImporterAsync();
        var csv = new StringBuilder("member_no,name,note\n");
        for (var i = 1; i <= 600; i++) csv.Append($"M{i},Name {i},{new string('x', 2000)}\n");
        Assert.True(csv.Length > HostingModule.MaxRequestBodyBytes);

        var import = await RunAsync(importer, await UploadAsync(importer, "customers", csv.ToString()));

        AssertCounts(import, rowsRead: 600, accepted: 600, duplicates: 0, rejected: 0);
    }

    [Fact]
    public async Task An_upload_over_the_import_limit_gets_413_and_leaves_no_file()
    {
        var importer = await NewImporterAsync();
        var body = new StreamContent(new MemoryStream(new byte[IImportApp.MaxFileBytes + 1]));
        body.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        body.Headers.ContentLength = null; // chunked: the size is found out while streaming

        var problem = await importer.Brand.Client.PostAsync($"/api/v1/imports?kind=customers&sourceId={importer.SourceId}", body)
            .ProblemAsync(413, ProblemTypes.PayloadTooLarge);

        Assert.Contains($"at most {IImportApp.MaxFileBytes} bytes", problem.GetProperty("detail").GetString());
        Assert.Empty(Directory.GetFiles(ImportDirectory, "*.part"));
    }

    [Fact]
    public async Task Bad_options_get_problem_details_before_anything_is_imported()
    {
        var importer = await NewImporterAsync();
        var client = importer.Brand.Client;
        var source = importer.SourceId;

        var missing = await PostFileAsync(client, "", "a\n").ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(missing.GetProperty("errors").TryGetProperty("kind", out _));
        Assert.True(missing.GetProperty("errors").TryGetProperty("sourceId", out _));
        var wrongFormat = await PostFileAsync(client, $"kind=events&format=csv&sourceId={source}", "a\n").ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("jsonl", wrongFormat.GetProperty("errors").GetProperty("format")[0].GetString());
        var unknownColumn = await PostFileAsync(client, $"kind=customers&sourceId={source}&map=nope=user_id", "member_no\nM1\n").ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("'nope'", unknownColumn.GetProperty("errors").GetProperty("map")[0].GetString());
        var unknownField = await PostFileAsync(client, $"kind=customers&sourceId={source}&map=member_no=shoe_size", "member_no\nM1\n").ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("'shoe_size'", unknownField.GetProperty("errors").GetProperty("map")[0].GetString());
        var noIdentity = await PostFileAsync(client, $"kind=customers&sourceId={source}", "name,phone\nAnn,1\n").ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("identity", noIdentity.GetProperty("errors").GetProperty("map")[0].GetString());
        var empty = await PostFileAsync(client, $"kind=customers&sourceId={source}", "").ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(empty.GetProperty("errors").TryGetProperty("file", out _));
        await PostFileAsync(client, $"kind=customers&sourceId={source}", "{}", "application/json").ProblemAsync(415, ProblemTypes.UnsupportedMediaType);
        await PostFileAsync(client, "kind=customers&sourceId=999999999", "member_no\nM1\n").ProblemAsync(404, ProblemTypes.NotFound);

        var imports = await client.GetAsync("/api/v1/imports").ReadAsync<JsonElement>();
        Assert.Empty(imports.GetProperty("items").EnumerateArray());
        Assert.Empty(Directory.GetFiles(ImportDirectory, "*.part"));
    }

    [Fact]
    public async Task A_key_of_another_brand_can_neither_see_nor_start_the_brands_import()
    {
        var owner = await NewImporterAsync();
        var id = await UploadAsync(owner, "customers", "member_no\nM1\n");
        var other = await app.NewBrandAsync();

        await other.Client.GetAsync($"/api/v1/imports/{id}").ProblemAsync(404, ProblemTypes.NotFound);
        var list = await other.Client.GetAsync("/api/v1/imports").ReadAsync<JsonElement>();
        Assert.Empty(list.GetProperty("items").EnumerateArray());
        await PostFileAsync(other.Client, $"kind=customers&sourceId={owner.SourceId}", "member_no\nM1\n").ProblemAsync(404, ProblemTypes.NotFound);

        using var naming = app.ClientWithKey(other.Key, owner.Brand.Slug);
        await PostFileAsync(naming, $"kind=customers&sourceId={owner.SourceId}", "member_no\nM1\n").ProblemAsync(403, ProblemTypes.Forbidden);
        await naming.GetAsync($"/api/v1/imports/{id}").ProblemAsync(403, ProblemTypes.Forbidden);

        using var analyst = app.ClientWithKey(await app.NewKeyAsync("analyst", owner.Brand.Slug));
        await PostFileAsync(analyst, $"kind=customers&sourceId={owner.SourceId}", "member_no\nM1\n").ProblemAsync(403, ProblemTypes.Forbidden);
    }

    [Fact]
    public async Task The_demo_data_files_import_with_the_default_mappings_and_no_reject()
    {
        var folder = Directory.CreateTempSubdirectory("meridian-import-demo-").FullName;
        try
        {
            await Meridian.Platform.DemoData.DemoDataGenerator.WriteAsync(new(40, 7, folder), CancellationToken.None);
            // The files carry the demo group's brand slugs: import into the bootstrapped brand demo, through a source of this test's own.
            var demo = new TestBrand(0, "demo", MeridianAppFixture.AdminKey, app.ClientWithKey(MeridianAppFixture.AdminKey, "demo"));
            var created = await demo.Client.PostAsJsonAsync("/api/v1/sources", new { name = "demo-" + Guid.NewGuid().ToString("N")[..8], channel = "import" })
                .ReadAsync<JsonElement>();
            var importer = new Importer(demo, created.GetProperty("source").GetProperty("id").GetInt64());

            foreach (var (kind, file, type) in new[] { ("customers", "customers-pos.csv", "text/csv"), ("orders", "orders-pos.csv", "text/csv"), ("events", "events-demo.jsonl", "application/x-ndjson") })
            {
                var lines = File.ReadAllLines(Path.Combine(folder, file)).Where(l => l.Length > 0).ToList();
                var ofDemo = kind == "events" ? lines.Count : lines.Skip(1).Count(l => l.Split(',')[1] == "demo");
                var import = await RunAsync(importer, await UploadAsync(importer, kind, string.Join('\n', lines) + "\n", type));
                Assert.Equal(0, import.GetProperty("rejected").GetInt64());
                Assert.Equal(ofDemo, import.GetProperty("accepted").GetInt64());
                Assert.Equal(kind == "events" ? 0 : lines.Count - 1 - ofDemo, import.GetProperty("skipped").GetInt64());
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The real thing: <c>meridian import</c> in a process of its own, killed mid-file; a server on the same database
    /// then claims the job once the CLI's lease lapses and finishes it. The server also takes an upload over 1 MiB
    /// through real Kestrel and imports it in the background.
    /// </summary>
    [Fact]
    public async Task The_cli_imports_a_file_and_a_server_finishes_it_after_the_cli_is_killed()
    {
        const int rows = 100_000;
        var folder = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "meridian-tests", "cli-" + Guid.NewGuid().ToString("N"))).FullName;
        var file = Path.Combine(folder, "members.csv");
        await using (var writer = new StreamWriter(file))
        {
            await writer.WriteLineAsync("member_no,name,phone,birthday");
            for (var i = 1; i <= rows; i++) await writer.WriteLineAsync($"M{i:D9},\"Member, {i}\",138{i:D8},1990-01-01");
        }
        var source = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new Dictionary<string, string>
        {
            ["Meridian:Database:Provider"] = app.Provider.ToString(),
            ["Meridian:Database:ConnectionString"] = app.ConnectionString,
            ["Meridian:Import:Lease"] = "00:00:02",
            ["Meridian:Import:PollInterval"] = "00:00:00.200",
            ["Meridian:Import:Directory"] = folder,
        };

        long id;
        await using (var cli = ServerProcess.Start(settings, ["import", "--brand", "demo", "--source", source, "--create-source", "--kind", "customers", "--file", file]))
        {
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (!cli.Output.Contains("accepted", StringComparison.Ordinal) && !cli.HasExited && DateTime.UtcNow < deadline) await Task.Delay(20);
            cli.Kill();
            Assert.False(cli.Output.Contains("completed", StringComparison.Ordinal), "the CLI finished before it could be killed:\n" + cli.Output);
            id = long.Parse(cli.Output.Split('\n').Single(l => l.StartsWith("Import ", StringComparison.Ordinal)).Split(' ', ':')[1]);
        }
        var interrupted = await DbAsync(db => db.Set<ImportJob>().SingleAsync(j => j.Id == id));
        Assert.Equal(ImportStatus.Running, interrupted.Status);
        Assert.InRange(interrupted.RowsRead, 1, rows - 1);

        await using var server = ServerProcess.Start(settings);
        await server.WaitUntilReadyAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", MeridianAppFixture.AdminKey);
        http.DefaultRequestHeaders.Add("Meridian-Brand", "demo");
        var upload = new StringBuilder("member_no,name\n");
        for (var i = 1; i <= 40_000; i++) upload.Append($"U{i:D9},Uploaded member {i}\n");
        Assert.True(upload.Length > HostingModule.MaxRequestBodyBytes);
        var sourceId = interrupted.SourceId;
        var uploaded = await PostFileAsync(http, $"kind=customers&sourceId={sourceId}", upload.ToString()).ReadAsync<JsonElement>();
        var uploadId = uploaded.GetProperty("id").GetInt64();

        async Task<JsonElement> WaitForAsync(long import)
        {
            var until = DateTime.UtcNow.AddSeconds(180);
            while (true)
            {
                var state = await http.GetAsync($"/api/v1/imports/{import}").ReadAsync<JsonElement>();
                if (state.GetProperty("status").GetString() is "completed" or "failed" || DateTime.UtcNow > until) return state;
                await Task.Delay(200);
            }
        }
        AssertCounts(await WaitForAsync(id), rowsRead: rows, accepted: rows, duplicates: 0, rejected: 0);
        AssertCounts(await WaitForAsync(uploadId), rowsRead: 40_000, accepted: 40_000, duplicates: 0, rejected: 0);

        var (count, distinct) = await DbAsync(async db =>
        {
            var ids = db.Set<RawEvent>().Where(e => e.SourceId == sourceId && e.UserId!.StartsWith("M")).Select(e => e.UserId);
            return (await ids.CountAsync(), await ids.Distinct().CountAsync());
        });
        Assert.Equal((rows, rows), (count, distinct));
        Assert.True(File.Exists(file)); // the CLI's file is the user's: imported in place, never deleted
    }
}

/// <summary>An app whose import worker is off (each test runs its imports when it chooses), with small chunks and its own upload folder.</summary>
public interface IImportApp
{
    const long MaxFileBytes = 4 * 1024 * 1024;

    string ImportDirectory { get; }

    static string NewDirectory() => Path.Combine(Path.GetTempPath(), "meridian-tests", "imports-" + Guid.NewGuid().ToString("N"));

    static IEnumerable<KeyValuePair<string, string>> SettingsFor(string directory) =>
    [
        new("Meridian:Import:Enabled", "false"),
        new("Meridian:Import:ChunkSize", "3"),
        new("Meridian:Import:Directory", directory),
        new("Meridian:Import:MaxFileBytes", MaxFileBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    ];
}

public sealed class SqliteImportApp : SqliteApp, IImportApp
{
    public string ImportDirectory { get; } = IImportApp.NewDirectory();
    protected override IEnumerable<KeyValuePair<string, string>> Settings => IImportApp.SettingsFor(ImportDirectory);
}

public sealed class PostgresImportApp : PostgresApp, IImportApp
{
    public string ImportDirectory { get; } = IImportApp.NewDirectory();
    protected override IEnumerable<KeyValuePair<string, string>> Settings => IImportApp.SettingsFor(ImportDirectory);
}

public sealed class ImportTestsOnSqlite(SqliteImportApp app) : ImportTests(app), IClassFixture<SqliteImportApp>;

public sealed class ImportTestsOnPostgres(PostgresImportApp app) : ImportTests(app), IClassFixture<PostgresImportApp>;
