using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Meridian.Platform.DemoData;

namespace Meridian.Tests.DemoData;

/// <summary>One small data set, generated once and only read by the tests that share it.</summary>
public sealed class DemoDataSet : IDisposable
{
    public const int Customers = 200;
    public const int Seed = 7;

    public DemoDataSet()
    {
        Folder = Directory.CreateTempSubdirectory("meridian-demodata-").FullName;
        Summary = DemoDataGenerator.WriteAsync(new DemoDataSpec(Customers, Seed, Folder), CancellationToken.None).GetAwaiter().GetResult();
        Events = [.. DemoDataGeneratorTests.EventFiles.SelectMany(f => File.ReadLines(Path.Combine(Folder, f)).Select(l => (File: f, Json: JsonDocument.Parse(l).RootElement)))];
        Truth = [.. File.ReadLines(Path.Combine(Folder, "truth.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)];
    }

    public string Folder { get; }
    public string Summary { get; }
    public List<(string File, JsonElement Json)> Events { get; }
    public List<JsonElement> Truth { get; }

    public IEnumerable<(string PersonId, string Type, string Raw, string Normalized)> Identifiers() =>
        Truth.SelectMany(p => p.GetProperty("identifiers").EnumerateArray().Select(i =>
            (p.GetProperty("personId").GetString()!, i.GetProperty("type").GetString()!, i.GetProperty("raw").GetString()!, i.GetProperty("normalized").GetString()!)));

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

public sealed class DemoDataGeneratorTests(DemoDataSet data) : IClassFixture<DemoDataSet>, IDisposable
{
    public static readonly string[] EventFiles = ["events-demo.jsonl", "events-demo-outlet.jsonl"];
    private static readonly string[] AllFiles = [.. EventFiles, "customers-pos.csv", "orders-pos.csv", "truth.jsonl", "README.md"];
    private static readonly string[] Channels = ["app", "mini_program", "web", "pos", "call_center"];

    private readonly List<string> _folders = [];

    [Fact]
    public async Task The_same_seed_writes_byte_identical_files()
    {
        var again = await GenerateAsync(DemoDataSet.Customers, DemoDataSet.Seed);

        Assert.Equal(AllFiles.Order(), Directory.GetFiles(again).Select(Path.GetFileName).Order());
        foreach (var file in AllFiles)
            Assert.True(File.ReadAllBytes(Path.Combine(data.Folder, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(again, file))), $"{file} differs");
    }

    [Fact]
    public async Task A_different_seed_writes_different_files()
    {
        var other = await GenerateAsync(DemoDataSet.Customers, DemoDataSet.Seed + 1);

        foreach (var file in AllFiles.Where(f => f != "README.md"))
            Assert.False(File.ReadAllBytes(Path.Combine(data.Folder, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(other, file))), $"{file} is the same");
    }

    [Fact]
    public void Spilling_events_to_sorted_runs_on_disk_gives_the_same_files_as_sorting_in_memory()
    {
        var spilled = NewFolder();
        DemoDataGenerator.Write(new DemoDataSpec(DemoDataSet.Customers, DemoDataSet.Seed, spilled), sortBudgetBytes: 4096, CancellationToken.None);

        foreach (var file in AllFiles)
            Assert.True(File.ReadAllBytes(Path.Combine(data.Folder, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(spilled, file))), $"{file} differs");
        Assert.Equal(AllFiles.Length, Directory.GetFileSystemEntries(spilled).Length); // the temporary runs are gone
    }

    [Fact]
    public void Files_are_utf8_without_bom_with_lf_line_ends()
    {
        foreach (var file in AllFiles)
        {
            var bytes = File.ReadAllBytes(Path.Combine(data.Folder, file));
            Assert.False(bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble), $"{file} starts with a BOM");
            Assert.DoesNotContain((byte)'\r', bytes);
            Assert.Equal((byte)'\n', bytes[^1]);
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
    }

    [Fact]
    public void Every_event_is_a_Segment_event_with_the_required_fields()
    {
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.NotEmpty(data.Events);
        foreach (var (_, e) in data.Events)
        {
            var type = e.GetProperty("type").GetString();
            Assert.Contains(type, new[] { "identify", "track", "page", "screen" });
            Assert.True(Guid.TryParse(e.GetProperty("messageId").GetString(), out _));
            var timestamp = e.GetProperty("timestamp").GetString()!;
            Assert.EndsWith("Z", timestamp);
            var at = DateTimeOffset.Parse(timestamp, CultureInfo.InvariantCulture);
            Assert.InRange(at, start, start.AddDays(365));
            Assert.True(NonEmpty(e, "userId") || NonEmpty(e, "anonymousId"), $"no userId or anonymousId: {e}");

            var context = e.GetProperty("context");
            var channel = context.GetProperty("channel").GetString();
            Assert.Contains(channel, Channels);
            if (channel == "app")
                Assert.False(string.IsNullOrEmpty(context.GetProperty("device").GetProperty("id").GetString()));

            switch (type)
            {
                case "track":
                    Assert.False(string.IsNullOrEmpty(e.GetProperty("event").GetString()));
                    Assert.Equal(JsonValueKind.Object, e.GetProperty("properties").ValueKind);
                    break;
                case "identify":
                    Assert.Equal(JsonValueKind.Object, e.GetProperty("traits").ValueKind);
                    break;
                default:
                    Assert.False(string.IsNullOrEmpty(e.GetProperty("name").GetString()));
                    Assert.Equal(JsonValueKind.Object, e.GetProperty("properties").ValueKind);
                    break;
            }
        }

        var messageIds = data.Events.Select(e => e.Json.GetProperty("messageId").GetString()).ToList();
        Assert.Equal(messageIds.Count, messageIds.Distinct().Count());
        var seen = data.Events.Where(e => e.Json.GetProperty("type").GetString() == "track").Select(e => e.Json.GetProperty("event").GetString()).ToHashSet();
        Assert.Superset(new HashSet<string?> { "Product Viewed", "Product Added", "Order Completed", "Order Refunded", "Signed Up", "Checked In", "Review Posted" }, seen);
        Assert.Equal(Channels.Order(), data.Events.Select(e => e.Json.GetProperty("context").GetProperty("channel").GetString()).Distinct().Order());
    }

    [Fact]
    public void Each_event_file_is_sorted_by_timestamp()
    {
        foreach (var file in EventFiles)
        {
            var timestamps = data.Events.Where(e => e.File == file).Select(e => e.Json.GetProperty("timestamp").GetString()!).ToList();
            Assert.NotEmpty(timestamps);
            Assert.Equal(timestamps.Order(StringComparer.Ordinal), timestamps);
        }
    }

    [Fact]
    public void Completed_orders_carry_an_id_a_total_in_yuan_that_adds_up_and_their_products()
    {
        var orders = data.Events.Select(e => e.Json).Where(e => e.TryGetProperty("event", out var name) && name.GetString() == "Order Completed").ToList();
        Assert.NotEmpty(orders);
        foreach (var order in orders)
        {
            var p = order.GetProperty("properties");
            Assert.False(string.IsNullOrEmpty(p.GetProperty("order_id").GetString()));
            Assert.Equal("CNY", p.GetProperty("currency").GetString());
            var products = p.GetProperty("products").EnumerateArray().ToList();
            Assert.NotEmpty(products);
            Assert.All(products, i => Assert.False(string.IsNullOrEmpty(i.GetProperty("sku").GetString() + i.GetProperty("category").GetString())));
            // Segment e-commerce amounts are in major units (yuan), with at most two decimals (whole fen).
            Assert.Equal(products.Sum(i => i.GetProperty("price").GetDecimal() * i.GetProperty("quantity").GetInt32()), p.GetProperty("total").GetDecimal());
            Assert.Equal(p.GetProperty("total").GetDecimal(), decimal.Round(p.GetProperty("total").GetDecimal(), 2));
        }
    }

    [Fact]
    public void Every_truth_identifier_appears_verbatim_in_the_events_or_the_imports()
    {
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, e) in data.Events)
            CollectStrings(e, written);
        foreach (var csv in new[] { "customers-pos.csv", "orders-pos.csv" })
            foreach (var row in ReadCsv(Path.Combine(data.Folder, csv)).Skip(1))
                written.UnionWith(row);

        var identifiers = data.Identifiers().ToList();
        Assert.Equal(DemoDataSet.Customers, data.Truth.Count);
        Assert.All(data.Truth, p => Assert.NotEmpty(p.GetProperty("identifiers").EnumerateArray()));
        Assert.All(identifiers, i => Assert.Contains(i.Raw, written));
        Assert.Superset(new HashSet<string> { "phone", "email", "unionid", "openid", "device_id", "anonymous_id", "member_no", "user_id" }, identifiers.Select(i => i.Type).ToHashSet());
    }

    [Fact]
    public void Only_device_ids_are_shared_between_people_in_the_truth()
    {
        var sharedByType = data.Identifiers()
            .GroupBy(i => (i.Type, i.Normalized))
            .Where(g => g.Select(i => i.PersonId).Distinct().Count() > 1)
            .Select(g => g.Key.Type)
            .Distinct();

        Assert.Equal(["device_id"], sharedByType);
    }

    [Fact]
    public void Phones_come_in_at_least_three_raw_formats_and_all_normalise_to_plus_86_and_eleven_digits()
    {
        Regex[] formats =
        [
            new(@"^1\d{10}$"), new(@"^\+86 1\d\d \d{4} \d{4}$"), new(@"^86-1\d\d-\d{4}-\d{4}$"), new(@"^\(\+86\)1\d{10}$"),
            new(@"^1\d\d-\d{4}-\d{4}$"), new(@"^\+861\d{10}$"), new(@"^1\d\d \d{4} \d{4}$"),
        ];
        var phones = data.Identifiers().Where(i => i.Type == "phone").ToList();
        Assert.NotEmpty(phones);

        var used = new HashSet<int>();
        foreach (var phone in phones)
        {
            var format = Array.FindIndex(formats, f => f.IsMatch(phone.Raw));
            Assert.True(format >= 0, $"unexpected phone format {phone.Raw}");
            used.Add(format);

            var digits = new string([.. phone.Raw.Where(char.IsAsciiDigit)]);
            Assert.Equal("+86" + digits[^11..], phone.Normalized);
            Assert.Matches(@"^\+861[3-9]\d{9}$", phone.Normalized);
        }
        Assert.True(used.Count >= 3, $"only {used.Count} phone formats");
    }

    [Fact]
    public void Emails_are_noisy_as_written_and_normalise_to_trimmed_lower_case()
    {
        var emails = data.Identifiers().Where(i => i.Type == "email").ToList();

        Assert.All(emails, e => Assert.Equal(e.Raw.Trim().ToLowerInvariant(), e.Normalized));
        Assert.Contains(emails, e => e.Raw != e.Raw.Trim());
        Assert.Contains(emails, e => e.Raw.Trim() != e.Normalized);
        Assert.All(emails, e => Assert.Matches(@"^[a-z0-9.]+@example\.(com|net|org)$", e.Normalized));
    }

    [Fact]
    public void Some_device_is_used_by_two_people_in_the_events()
    {
        var owner = data.Identifiers().Where(i => i.Type is "anonymous_id" or "user_id").ToDictionary(i => i.Raw, i => i.PersonId);
        var shared = data.Truth.SelectMany(p => p.GetProperty("sharedDevices").EnumerateArray().Select(d => d.GetString()!)).ToHashSet();
        Assert.NotEmpty(shared);

        foreach (var device in shared)
        {
            var people = data.Events.Select(e => e.Json)
                .Where(e => e.GetProperty("context").TryGetProperty("device", out var d) && d.GetProperty("id").GetString() == device)
                .Select(e => owner[e.GetProperty("anonymousId").GetString()!])
                .ToHashSet();
            Assert.True(people.Count >= 2, $"device {device} is seen with {people.Count} person");
        }
    }

    [Fact]
    public void Csv_rows_have_as_many_fields_as_the_header()
    {
        foreach (var csv in new[] { "customers-pos.csv", "orders-pos.csv" })
        {
            var rows = ReadCsv(Path.Combine(data.Folder, csv)).ToList();
            Assert.True(rows.Count > 1, $"{csv} has no rows");
            Assert.All(rows, r => Assert.Equal(rows[0].Count, r.Count));
        }
        var items = ReadCsv(Path.Combine(data.Folder, "orders-pos.csv")).Skip(1).Select(r => r[^1]);
        Assert.All(items, i => Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(i).RootElement.ValueKind));
    }

    [Fact]
    public async Task Counts_scale_with_the_number_of_customers()
    {
        var small = await GenerateAsync(100, 3);
        var large = await GenerateAsync(400, 3);

        Assert.Equal(100, File.ReadLines(Path.Combine(small, "truth.jsonl")).Count());
        Assert.Equal(400, File.ReadLines(Path.Combine(large, "truth.jsonl")).Count());
        var smallEvents = EventFiles.Sum(f => File.ReadLines(Path.Combine(small, f)).Count());
        var largeEvents = EventFiles.Sum(f => File.ReadLines(Path.Combine(large, f)).Count());
        Assert.InRange(largeEvents / (double)smallEvents, 2.5, 6);
        Assert.InRange(largeEvents / 400.0, 10, 35); // about 20 events per person
        Assert.True(File.ReadLines(Path.Combine(large, "orders-pos.csv")).Count() > File.ReadLines(Path.Combine(small, "orders-pos.csv")).Count());
    }

    [Fact]
    public void The_summary_names_every_file_and_the_readme_describes_them()
    {
        var readme = File.ReadAllText(Path.Combine(data.Folder, "README.md"));
        foreach (var file in AllFiles)
            Assert.Contains(file, data.Summary);
        foreach (var file in AllFiles.Where(f => f != "README.md"))
            Assert.Contains(file, readme);
        Assert.Contains("200 people", data.Summary);
    }

    public void Dispose()
    {
        foreach (var folder in _folders)
            Directory.Delete(folder, recursive: true);
    }

    private string NewFolder()
    {
        var folder = Directory.CreateTempSubdirectory("meridian-demodata-").FullName;
        _folders.Add(folder);
        return folder;
    }

    private async Task<string> GenerateAsync(int customers, int seed)
    {
        var folder = NewFolder();
        await DemoDataGenerator.WriteAsync(new DemoDataSpec(customers, seed, folder), CancellationToken.None);
        return folder;
    }

    private static bool NonEmpty(JsonElement e, string property) =>
        e.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0;

    private static void CollectStrings(JsonElement e, HashSet<string> into)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String: into.Add(e.GetString()!); break;
            case JsonValueKind.Object: foreach (var p in e.EnumerateObject()) CollectStrings(p.Value, into); break;
            case JsonValueKind.Array: foreach (var i in e.EnumerateArray()) CollectStrings(i, into); break;
        }
    }

    /// <summary>A strict RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks.</summary>
    private static IEnumerable<List<string>> ReadCsv(string path)
    {
        var text = File.ReadAllText(path);
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c != '"')
                    field.Append(c);
                else if (i + 1 < text.Length && text[i + 1] == '"')
                    field.Append(text[++i]);
                else
                    quoted = false;
            }
            else if (c == '"')
            {
                Assert.Equal(0, field.Length); // a quote may only open a field
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                yield return row;
                row = [];
            }
            else
                field.Append(c);
        }
        Assert.False(quoted, "unterminated quoted field");
        Assert.Empty(row);
    }
}
