using System.Text.Json;
using Meridian.Profiles.Data;

namespace Meridian.Profiles.Identity;

/// <summary>
/// Computed value traits kept current as order events arrive (Segment e-commerce spec: <c>Order Completed</c> and
/// <c>Order Refunded</c> with <c>total</c>, or <c>revenue</c>, in major units of the currency), stored in minor units.
/// </summary>
public static class OrderFacts
{
    public const string Completed = "Order Completed";
    public const string Refunded = "Order Refunded";

    private static readonly Dictionary<string, int> ZeroDecimalCurrencies = new(StringComparer.OrdinalIgnoreCase) { ["JPY"] = 0, ["KRW"] = 0, ["VND"] = 0 };

    /// <summary>How many decimals the currency's minor unit has (2 unless it has none, as the yen).</summary>
    public static int MinorUnits(string currency) => ZeroDecimalCurrencies.GetValueOrDefault(currency, 2);

    public static void Apply(Profile profile, string? eventName, DateTime at, JsonElement message, string brandCurrency)
    {
        if (eventName is not (Completed or Refunded)) return;
        if (!message.TryGetProperty("properties", out var p) || p.ValueKind != JsonValueKind.Object) return;
        var amount = Amount(p, "total") ?? Amount(p, "revenue") ?? Amount(p, "value") ?? 0m;
        var currency = p.TryGetProperty("currency", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : brandCurrency;
        var minor = (long)Math.Round(amount * (decimal)Math.Pow(10, MinorUnits(currency)), MidpointRounding.AwayFromZero);
        if (eventName == Completed)
        {
            profile.OrderCount++;
            profile.TotalSpendMinor += minor;
            profile.FirstOrderAt = profile.FirstOrderAt is { } first && first <= at ? first : at;
            if (profile.LastOrderAt is not { } last || at > last)
            {
                profile.PreviousOrderAt = profile.LastOrderAt;
                profile.LastOrderAt = at;
            }
        }
        else
        {
            profile.TotalSpendMinor = Math.Max(0, profile.TotalSpendMinor - minor);
        }
    }

    /// <summary>
    /// An order event as other modules read it: its <c>order_id</c> (text or number) and its amount in major units,
    /// read as <see cref="Apply"/> reads it; null when the message is not an order event with an id.
    /// </summary>
    public static (string OrderId, decimal Amount)? Order(JsonElement message)
    {
        if (!message.TryGetProperty("properties", out var p) || p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("order_id", out var id)) return null;
        var orderId = id.ValueKind switch { JsonValueKind.String => id.GetString(), JsonValueKind.Number => id.GetRawText(), _ => null };
        return string.IsNullOrWhiteSpace(orderId) ? null : (orderId, Amount(p, "total") ?? Amount(p, "revenue") ?? Amount(p, "value") ?? 0m);
    }

    private static decimal? Amount(JsonElement properties, string name) =>
        properties.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var d) && d is >= 0 and < 1_000_000_000_000m ? d : null;

    /// <summary>Where the customer stands, from their activity (orders, else any event) as of <paramref name="now"/>.</summary>
    public static string LifecycleStage(Profile profile, DateTime now, LifecycleThresholds thresholds)
    {
        var lastActive = profile.LastOrderAt ?? profile.LastSeenAt;
        if (lastActive is null) return "unknown";
        var idle = now - lastActive.Value;
        if (idle > thresholds.LapsedAfter) return "lapsed";
        if (idle > thresholds.AtRiskAfter) return "at_risk";
        if (profile.LastOrderAt is { } lastOrder && profile.PreviousOrderAt is { } previous && lastOrder - previous > thresholds.LapsedAfter) return "won_back";
        if (profile.FirstSeenAt is { } first && now - first <= thresholds.NewFor && profile.OrderCount <= 1) return "new";
        return "active";
    }
}

/// <summary><c>Meridian:Profiles:Lifecycle</c>: how long without activity makes a customer at risk, then lapsed.</summary>
public sealed class LifecycleThresholds
{
    public TimeSpan NewFor { get; set; } = TimeSpan.FromDays(30);
    public TimeSpan AtRiskAfter { get; set; } = TimeSpan.FromDays(90);
    public TimeSpan LapsedAfter { get; set; } = TimeSpan.FromDays(180);
}
