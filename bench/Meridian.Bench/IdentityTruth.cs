using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Ingestion.Import;
using Meridian.Profiles.Identity;

namespace Meridian.Bench;

/// <summary>
/// Pairwise quality of identity resolution against the demo data's ground truth (<c>truth.jsonl</c>). The unit is an
/// identifier of a brand (brand, type, normalised value) that the data shows and the truth names. Precision: of the pairs
/// of identifiers the server put in one profile, the share that belong to one person. Recall: of the pairs the data links
/// deterministically (one message or row holds both, or a chain of such, never through a family's shared device), the
/// share the server put in one profile. An identifier the server holds nowhere counts as a profile of its own.
/// </summary>
internal sealed record IdentityScore(
    long Identifiers, long Profiles, long PredictedPairs, long CorrectPairs, long TruePairs, long FoundPairs, long Unresolved,
    long MixedComponents, IReadOnlyList<string> Notes)
{
    public double Precision => PredictedPairs == 0 ? 1 : (double)CorrectPairs / PredictedPairs;

    public double Recall => TruePairs == 0 ? 1 : (double)FoundPairs / TruePairs;
}

internal static class IdentityTruth
{
    private const int Examples = 3;

    private readonly record struct Item(string Brand, string Type, string Value);

    public static async Task<IdentityScore> ScoreAsync(DemoEvents demo, IReadOnlyList<IdentifierType> rules, Func<CancellationToken, Task<DbConnection>> open, CancellationToken ct)
    {
        var truth = Truth.Read(Path.Combine(demo.Folder, "truth.jsonl"));
        var links = new Links(truth);
        (IReadOnlyList<IdentifierType>, string) resolverRules = (rules, "CN");
        foreach (var (brand, file) in IdentityBench.EventFiles)
        {
            foreach (var line in demo.FileLines(file))
            {
                using var message = JsonDocument.Parse(line);
                links.Add(brand, IdentityResolver.Extract(resolverRules, message.RootElement, null));
            }
        }
        foreach (var brand in IdentityBench.Brands)
        {
            foreach (var (kind, file) in IdentityBench.PosExports)
            {
                foreach (var message in ImportedMessages(Path.Combine(demo.Folder, file), kind, brand))
                    links.Add(brand, IdentityResolver.Extract(resolverRules, JsonSerializer.SerializeToElement(message), null));
            }
        }

        // The profile each identifier ended in, straight from the table (profile_identifiers rows move with a merge).
        var profileOf = new long[links.Count];
        await using (var connection = await open(ct))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT b.slug, i.type, i.value, i.profile_id FROM profile_identifiers i JOIN brands b ON b.id = i.tenant_id";
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                if (links.IndexOf(new Item(reader.GetString(0), reader.GetString(1), reader.GetString(2))) is { } i) profileOf[i] = reader.GetInt64(3);
            }
        }
        long unresolved = 0;
        for (var i = 0; i < profileOf.Length; i++)
        {
            if (profileOf[i] == 0)
            {
                profileOf[i] = -1 - i;
                unresolved++;
            }
        }

        var byProfile = Enumerable.Range(0, links.Count).GroupBy(i => profileOf[i]).ToList();
        var byComponent = Enumerable.Range(0, links.Count).GroupBy(i => (long)links.Root(i)).ToList();
        var falseMerges = byProfile.Where(g => g.Select(links.PersonOf).Distinct().Count() > 1).ToList();
        var missed = byComponent.Where(g => g.Select(i => profileOf[i]).Distinct().Count() > 1).ToList();
        var notes = new List<string>();
        if (falseMerges.Count > 0)
        {
            notes.Add($"{falseMerges.Count:N0} profiles hold more than one person; false pairs by identifier types: {CrossPairs(falseMerges, links.PersonOf, links)}; e.g. "
                + string.Join("; ", falseMerges.OrderBy(g => g.Count()).Take(Examples).Select(g => $"profile {g.Key}: " + Parts(g, i => truth.PersonIds[links.PersonOf(i)], links))));
        }
        if (missed.Count > 0)
        {
            notes.Add($"{missed.Count:N0} people's linked identifiers are split over several profiles (or unresolved); missed pairs by identifier types: {CrossPairs(missed, i => profileOf[i], links)}; e.g. "
                + string.Join("; ", missed.OrderBy(g => g.Count()).Take(Examples).Select(g => $"{truth.PersonIds[links.PersonOf(g.First())]}: " + Parts(g, i => profileOf[i] < 0 ? "none" : $"profile {profileOf[i]}", links))));
        }

        return new IdentityScore(
            links.Count, byProfile.Count(g => g.Key > 0),
            byProfile.Sum(g => Pairs(g.LongCount())), byProfile.Sum(g => g.GroupBy(links.PersonOf).Sum(p => Pairs(p.LongCount()))),
            byComponent.Sum(g => Pairs(g.LongCount())), byComponent.Sum(g => g.GroupBy(i => profileOf[i]).Sum(p => Pairs(p.LongCount()))),
            unresolved, byComponent.Count(g => g.Select(links.PersonOf).Distinct().Count() > 1), notes);
    }

    private static long Pairs(long n) => n * (n - 1) / 2;

    /// <summary>Pairs across the parts of each group (people in one profile, or profiles of one person), counted by the two identifier types.</summary>
    private static string CrossPairs<TPart>(IEnumerable<IGrouping<long, int>> groups, Func<int, TPart> partOf, Links links)
    {
        var counts = new Dictionary<string, long>();
        foreach (var group in groups)
        {
            var parts = group.GroupBy(partOf).Select(p => p.GroupBy(i => links[i].Type).ToDictionary(t => t.Key, t => (long)t.Count())).ToList();
            for (var a = 0; a < parts.Count; a++)
            {
                for (var b = a + 1; b < parts.Count; b++)
                {
                    foreach (var (ta, ca) in parts[a])
                    {
                        foreach (var (tb, cb) in parts[b])
                        {
                            var key = string.CompareOrdinal(ta, tb) <= 0 ? $"{ta}–{tb}" : $"{tb}–{ta}";
                            counts[key] = counts.GetValueOrDefault(key) + ca * cb;
                        }
                    }
                }
            }
        }
        return string.Join(", ", counts.OrderByDescending(c => c.Value).Take(6).Select(c => $"{c.Key} {c.Value:N0}"));
    }

    private static string Parts(IGrouping<long, int> group, Func<int, string> partName, Links links) =>
        string.Join(" | ", group.GroupBy(partName).Select(p => $"{p.Key} {{{string.Join(", ", p.Select(i => $"{links[i].Brand}/{links[i].Type}:{links[i].Value}"))}}}"));

    /// <summary>
    /// The message <c>POST /api/v1/imports</c> builds from a store export's row with the default mapping (member number as
    /// <c>userId</c>, the phone and e-mail as traits, or as context traits on an order), as far as identity is concerned.
    /// </summary>
    private static IEnumerable<JsonObject> ImportedMessages(string path, string kind, string brand)
    {
        using var file = File.OpenRead(path);
        var csv = new CsvReader(new LineReader(file, 0, 1, ImportReader.MaxCsvRecordBytes), ImportReader.MaxCsvRecordBytes);
        var header = csv.Read()?.Fields ?? throw new InvalidDataException($"{path}: no header.");
        string? Field(string[] row, string name) => Array.IndexOf(header, name) is var at and >= 0 && !string.IsNullOrWhiteSpace(row[at]) ? row[at] : null;
        while (csv.Read() is { } record)
        {
            if (record.Fields is not { } row || Field(row, "brand") != brand) continue;
            var traits = new JsonObject();
            string[] identifying = kind == "customers" ? ["phone", "email"] : ["phone"];
            foreach (var name in identifying)
                if (Field(row, name) is { } value) traits[name] = value;
            var message = new JsonObject { ["context"] = new JsonObject { ["library"] = new JsonObject { ["name"] = ImportReader.Library } } };
            if (Field(row, "member_no") is { } member) message["userId"] = member;
            if (kind == "customers") message["traits"] = traits;
            else message["context"]!["traits"] = traits;
            yield return message;
        }
    }

    /// <summary>Who is who: each identifier of <c>truth.jsonl</c> to its person, and the devices families share.</summary>
    private sealed class Truth
    {
        private readonly Dictionary<(string Type, string Value, string? Brand), int> owners = [];
        private readonly HashSet<string> sharedDevices = [];

        public List<string> PersonIds { get; } = [];

        public static Truth Read(string path)
        {
            var truth = new Truth();
            foreach (var line in File.ReadLines(path))
            {
                using var person = JsonDocument.Parse(line);
                var index = truth.PersonIds.Count;
                truth.PersonIds.Add(person.RootElement.GetProperty("personId").GetString()!);
                foreach (var id in person.RootElement.GetProperty("identifiers").EnumerateArray())
                {
                    var brand = id.TryGetProperty("brand", out var b) ? b.GetString() : null;
                    truth.owners[(id.GetProperty("type").GetString()!, id.GetProperty("normalized").GetString()!, brand)] = index;
                }
                foreach (var device in person.RootElement.GetProperty("sharedDevices").EnumerateArray()) truth.sharedDevices.Add(device.GetString()!);
            }
            return truth;
        }

        /// <summary>The person an identifier of a brand belongs to; null for a shared device or an identifier the truth does not name.</summary>
        public int? PersonOf(Item item) =>
            item.Type == "device_id" && sharedDevices.Contains(item.Value) ? null
            : owners.TryGetValue((item.Type, item.Value, item.Brand), out var p) || owners.TryGetValue((item.Type, item.Value, null), out p) ? p
            : null;
    }

    /// <summary>The identifiers the data shows, joined (union-find) when one message or row holds them together.</summary>
    private sealed class Links(Truth truth)
    {
        private readonly Dictionary<Item, int> index = [];
        private readonly List<Item> items = [];
        private readonly List<int> parent = [];
        private readonly List<int> person = [];

        public int Count => items.Count;

        public Item this[int i] => items[i];

        public int? IndexOf(Item item) => index.TryGetValue(item, out var i) ? i : null;

        public int PersonOf(int i) => person[i];

        public void Add(string brand, List<IdentityResolver.Extracted> ids)
        {
            int? first = null;
            foreach (var id in ids)
            {
                var item = new Item(brand, id.Type.Name, id.Value);
                if (!index.TryGetValue(item, out var i))
                {
                    if (truth.PersonOf(item) is not { } owner) continue;
                    index[item] = i = items.Count;
                    items.Add(item);
                    parent.Add(i);
                    person.Add(owner);
                }
                if (first is { } f) parent[Root(i)] = Root(f);
                else first = i;
            }
        }

        public int Root(int i)
        {
            while (parent[i] != i) i = parent[i] = parent[parent[i]];
            return i;
        }
    }
}
