using System.Globalization;
using System.Text.Json;
using Meridian.Loyalty.Data;

namespace Meridian.Loyalty.Earning;

/// <summary>A multiplier that applies to an earning, and where it comes from (<c>tier Gold</c>, <c>campaign Double weekend</c>).</summary>
public readonly record struct Multiplier(string Source, int Percent);

/// <summary>
/// The arithmetic of earning, exact (decimal, never floating point) and explained: base points from an amount, the
/// combined multiplier, rounding as the programme says. The explanation goes into the entry's <c>rule</c>.
/// </summary>
public static class EarningMath
{
    public static long Round(decimal points, PointsRounding rounding) => checked((long)(rounding switch
    {
        PointsRounding.Up => Math.Ceiling(points),
        PointsRounding.Nearest => Math.Round(points, MidpointRounding.AwayFromZero),
        _ => Math.Floor(points),
    }));

    /// <summary>The combined multiplier as a factor (1.5 for ×150%) by the programme's combination.</summary>
    public static decimal Factor(IReadOnlyList<Multiplier> multipliers, MultiplierCombination combination) => multipliers.Count == 0 ? 1m : combination switch
    {
        MultiplierCombination.Add => 1m + multipliers.Sum(m => (m.Percent - 100) / 100m),
        MultiplierCombination.Highest => multipliers.Max(m => m.Percent) / 100m,
        _ => multipliers.Aggregate(1m, (f, m) => f * m.Percent / 100m),
    };

    /// <summary>Applies the multipliers to <paramref name="basePoints"/>; returns the points and how they were reached.</summary>
    public static (long Points, string Explained) Apply(long basePoints, IReadOnlyList<Multiplier> multipliers, MultiplierCombination combination, PointsRounding rounding)
    {
        if (multipliers.Count == 0) return (basePoints, $"{basePoints} points");
        var factor = Factor(multipliers, combination);
        var points = Round(Math.Max(0m, basePoints * factor), rounding);
        var parts = string.Join(", ", multipliers.Select(m => $"{m.Percent}% ({m.Source})"));
        var how = combination switch
        {
            MultiplierCombination.Add => "bonuses added",
            MultiplierCombination.Highest => "highest applies",
            _ => "multiplied",
        };
        return (points, $"{basePoints} points × {factor.ToString("0.####", CultureInfo.InvariantCulture)} [{parts}; {how}; rounded {rounding.ToString().ToLowerInvariant()}] = {points}");
    }

    /// <summary>
    /// The part of an order that earns: its amount less the lines whose SKU or category the programme excludes
    /// (Segment's <c>products</c>: <c>sku</c>, <c>category</c>, <c>price</c>, <c>quantity</c>), never below zero.
    /// </summary>
    public static (decimal Eligible, decimal Excluded) Eligible(JsonElement message, decimal amount, IReadOnlySet<string> skus, IReadOnlySet<string> categories)
    {
        if ((skus.Count == 0 && categories.Count == 0) || !message.TryGetProperty("properties", out var p) || p.ValueKind != JsonValueKind.Object
            || !p.TryGetProperty("products", out var products) || products.ValueKind != JsonValueKind.Array)
            return (amount, 0m);
        var excluded = 0m;
        foreach (var line in products.EnumerateArray())
        {
            if (line.ValueKind != JsonValueKind.Object) continue;
            var sku = Text(line, "sku");
            var category = Text(line, "category");
            if (!(sku is not null && skus.Contains(sku)) && !(category is not null && categories.Contains(category))) continue;
            var price = Number(line, "price") ?? 0m;
            var quantity = Number(line, "quantity") ?? 1m;
            excluded += Math.Max(0m, price * quantity);
        }
        return (Math.Max(0m, amount - excluded), Math.Min(amount, excluded));
    }

    public static IReadOnlySet<string> Set(string json) => (JsonSerializer.Deserialize<List<string>>(json) ?? []).ToHashSet(StringComparer.OrdinalIgnoreCase);

    private static string? Text(JsonElement o, string name) => o.TryGetProperty(name, out var v) ? v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Number => v.GetRawText(),
        _ => null,
    } : null;

    private static decimal? Number(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var d) && d is >= 0 and < 1_000_000_000_000m ? d : null;
}
