using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Platform.CustomFields;

namespace Meridian.Profiles.Identity;

/// <summary>
/// How a trait's values combine, whether from a new event or from two profiles merging. A stored trait is
/// <c>{"v": value, "t": event time, "s": source id}</c>; the strategy is its custom field's (latest by event time
/// for a trait without one), so the provenance always names the latest contribution.
/// </summary>
public static class TraitValues
{
    public static TraitMerge StrategyOf(IReadOnlyDictionary<string, CustomField> fields, string trait) =>
        fields.TryGetValue(trait, out var field) ? field.Merge : TraitMerge.Latest;

    /// <summary>The combined trait (a new node; neither argument is changed or kept).</summary>
    public static JsonNode Combine(JsonNode? existing, JsonNode incoming, TraitMerge strategy)
    {
        if (existing is null) return Normalised(incoming.DeepClone(), strategy);
        var (earlier, later) = Later(existing, incoming) ? (incoming, existing) : (existing, incoming);
        switch (strategy)
        {
            case TraitMerge.First:
                return earlier.DeepClone();
            case TraitMerge.Sum when Number(existing["v"]) is { } a && Number(incoming["v"]) is { } b:
                return Provenance(JsonValue.Create(a + b), later);
            case TraitMerge.Union:
                var values = new JsonArray();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var value in Items(existing["v"]).Concat(Items(incoming["v"])))
                    if (seen.Add(value.ToJsonString())) values.Add(value.DeepClone());
                return Provenance(values, later);
            default:
                return later.DeepClone();
        }
    }

    /// <summary>A sum less what one side brought to it (undoing a merge); the trait unchanged if either is not a number.</summary>
    public static JsonNode Subtract(JsonNode sum, JsonNode part) =>
        Number(sum["v"]) is { } total && Number(part["v"]) is { } given ? Provenance(JsonValue.Create(total - given), sum) : sum.DeepClone();

    public static bool Later(JsonNode a, JsonNode b) => a["t"]!.GetValue<DateTime>() > b["t"]!.GetValue<DateTime>();

    /// <summary>A union trait always holds a list, even of one value.</summary>
    private static JsonNode Normalised(JsonNode trait, TraitMerge strategy)
    {
        if (strategy == TraitMerge.Union && trait["v"] is { } v && v.GetValueKind() != JsonValueKind.Array)
            trait["v"] = new JsonArray(v.DeepClone());
        return trait;
    }

    private static JsonObject Provenance(JsonNode value, JsonNode from) => new() { ["v"] = value, ["t"] = from["t"]!.DeepClone(), ["s"] = from["s"]?.DeepClone() };

    private static decimal? Number(JsonNode? value) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.Number
        && decimal.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : null;

    private static IEnumerable<JsonNode> Items(JsonNode? value) => value switch
    {
        null => [],
        JsonArray array => array.OfType<JsonNode>(),
        _ => [value],
    };
}
