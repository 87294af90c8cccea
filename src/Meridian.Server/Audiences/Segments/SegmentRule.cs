using System.Globalization;
using System.Text.Json;

namespace Meridian.Audiences.Segments;

/// <summary>
/// A segment rule: a tree of conditions, written as JSON (see README, "Segments"):
/// <c>{"and": [...]}</c>, <c>{"or": [...]}</c>, <c>{"not": {...}}</c>;
/// <c>{"trait": "city", "op": "eq", "value": "Hangzhou"}</c>;
/// <c>{"identifier": "phone"}</c> (has one);
/// <c>{"tag": "VIP"}</c>;
/// <c>{"computed": "order_count", "op": "gte", "value": 2}</c>;
/// <c>{"event": "Order Completed", "where": [{"property": "category", "op": "eq", "value": "shoes"}],
/// "count": {"op": "gte", "value": 2}, "withinDays": 30}</c> (or <c>"sum": {"property": "total", "op": "gte", "value": 500}</c>);
/// <c>{"segment": 12}</c> (in another saved segment; <c>not</c> excludes);
/// <c>{"loyalty": "tier", "op": "eq", "value": "Gold"}</c>, <c>{"loyalty": "points", "op": "gte", "value": 500}</c>;
/// <c>{"coupons": "held", "template": 3, "count": {"op": "gte", "value": 1}}</c> (<c>held</c> or <c>used</c>, any template without one).
/// </summary>
public abstract record SegmentRule
{
    /// <summary>The rule as a marketer reads it: <c>city = "Hangzhou" AND has tag "VIP"</c>.</summary>
    public abstract string ToText();

    internal static string Quote(JsonElement value) => value.ValueKind == JsonValueKind.String
        ? "\"" + value.GetString()!.Replace("\"", "\\\"", StringComparison.Ordinal) + "\""
        : value.GetRawText();
}

public sealed record AllOf(IReadOnlyList<SegmentRule> Rules) : SegmentRule
{
    public override string ToText() => string.Join(" AND ", Rules.Select(r => r is AnyOf ? $"({r.ToText()})" : r.ToText()));
}

public sealed record AnyOf(IReadOnlyList<SegmentRule> Rules) : SegmentRule
{
    public override string ToText() => string.Join(" OR ", Rules.Select(r => r is AllOf ? $"({r.ToText()})" : r.ToText()));
}

public sealed record NotRule(SegmentRule Rule) : SegmentRule
{
    public override string ToText() => $"NOT ({Rule.ToText()})";
}

/// <summary>A comparison: <c>eq ne gt gte lt lte in contains exists not_exists</c>; <c>within_days</c> and <c>not_within_days</c> for times.</summary>
public sealed record Comparison(string Op, JsonElement? Value)
{
    public static readonly string[] ValueOps = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"];
    public static readonly string[] PresenceOps = ["exists", "not_exists"];
    public static readonly string[] TimeOps = ["within_days", "not_within_days"];

    public string ToText(string subject) => Op switch
    {
        "exists" => $"{subject} exists",
        "not_exists" => $"{subject} does not exist",
        "within_days" => $"{subject} within the last {Value!.Value.GetRawText()} days",
        "not_within_days" => $"{subject} not within the last {Value!.Value.GetRawText()} days",
        "in" => $"{subject} in [{string.Join(", ", Value!.Value.EnumerateArray().Select(SegmentRule.Quote))}]",
        "contains" => $"{subject} contains {SegmentRule.Quote(Value!.Value)}",
        _ => $"{subject} {Symbol(Op)} {SegmentRule.Quote(Value!.Value)}",
    };

    private static string Symbol(string op) => op switch { "eq" => "=", "ne" => "≠", "gt" => ">", "gte" => "≥", "lt" => "<", _ => "≤" };
}

public sealed record TraitCondition(string Trait, Comparison Compare) : SegmentRule
{
    public override string ToText() => Compare.ToText(Trait);
}

public sealed record IdentifierCondition(string Type) : SegmentRule
{
    public override string ToText() => $"has {Type}";
}

/// <summary>
/// The customer's consent now: the latest change for the channel and purpose (<c>marketing</c> unless named) is a grant.
/// Never asked and withdrawn are both "no"; wrap in <c>not</c> for customers without consent.
/// </summary>
public sealed record ConsentCondition(string Channel, string Purpose) : SegmentRule
{
    public override string ToText() => $"consents to {Purpose} by {Channel}";
}

public sealed record TagCondition(string Tag) : SegmentRule
{
    public override string ToText() => $"has tag \"{Tag}\"";
}

/// <summary>
/// Membership of another saved segment of the brand, as materialised (include; wrap in <c>not</c> to exclude). The
/// segments a rule names may not name it back, directly or through others.
/// </summary>
public sealed record SegmentCondition(long SegmentId) : SegmentRule
{
    public override string ToText() => $"in segment {SegmentId.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>
/// The customer's loyalty standing: <c>tier</c> (the tier's name; compare, in-list, exists) or <c>points</c> (spendable
/// balance net of points owed). A customer who is no member has neither, so only <c>not_exists</c> matches them.
/// </summary>
public sealed record LoyaltyCondition(string Field, Comparison Compare) : SegmentRule
{
    public static readonly string[] FieldNames = ["tier", "points"];

    public override string ToText() => Compare.ToText(Field == "tier" ? "loyalty tier" : "points balance");
}

/// <summary>How many coupons the customer holds now (issued, not yet used or expired) or has used, of one template or any.</summary>
public sealed record CouponCondition(string State, long? TemplateId, string Op, long Count) : SegmentRule
{
    public static readonly string[] States = ["held", "used"];

    public override string ToText() =>
        $"coupons {State}{(TemplateId is { } t ? $" of template {t.ToString(CultureInfo.InvariantCulture)}" : "")} count {Symbol} {Count.ToString(CultureInfo.InvariantCulture)}";

    private string Symbol => Op switch { "eq" => "=", "ne" => "≠", "gt" => ">", "gte" => "≥", "lt" => "<", _ => "≤" };
}

/// <summary>What rules say about each other: the segments a rule names, and an order that evaluates named segments first.</summary>
public static class SegmentRules
{
    /// <summary>Whether the rule reads a score of the periodic scoring run (which changes no event, so only a new run can change the answer).</summary>
    public static bool ReadsScores(SegmentRule rule) => rule switch
    {
        AllOf all => all.Rules.Any(ReadsScores),
        AnyOf any => any.Rules.Any(ReadsScores),
        NotRule not => ReadsScores(not.Rule),
        ComputedCondition c => c.Field is "rfm_segment" or "value_score",
        _ => false,
    };

    public static HashSet<long> Names(SegmentRule rule)
    {
        var names = new HashSet<long>();
        void Walk(SegmentRule r)
        {
            switch (r)
            {
                case AllOf all: foreach (var x in all.Rules) Walk(x); break;
                case AnyOf any: foreach (var x in any.Rules) Walk(x); break;
                case NotRule not: Walk(not.Rule); break;
                case SegmentCondition s: names.Add(s.SegmentId); break;
            }
        }
        Walk(rule);
        return names;
    }

    /// <summary>
    /// The segment (id <paramref name="segmentId"/>, 0 for a new one) with <paramref name="rule"/> among the brand's
    /// others: the first segment found on a cycle back to it, or null when there is none.
    /// </summary>
    public static long? Cycle(long segmentId, SegmentRule rule, IReadOnlyDictionary<long, SegmentRule> others)
    {
        var seen = new HashSet<long>();
        var frontier = new Stack<long>(Names(rule));
        while (frontier.Count > 0)
        {
            var next = frontier.Pop();
            if (next == segmentId) return next;
            if (!seen.Add(next) || !others.TryGetValue(next, out var named)) continue;
            foreach (var n in Names(named)) frontier.Push(n);
        }
        return null;
    }

    /// <summary>Segments ordered so that each comes after those its rule names (a cycle, which saving refuses, keeps id order).</summary>
    public static List<(Data.Segment Segment, SegmentRule Rule)> InDependencyOrder(List<(Data.Segment Segment, SegmentRule Rule)> segments)
    {
        var byId = segments.ToDictionary(s => s.Segment.Id);
        var ordered = new List<(Data.Segment, SegmentRule)>();
        var state = new Dictionary<long, bool>(); // false: being visited, true: done
        void Visit(long id)
        {
            if (state.ContainsKey(id) || !byId.TryGetValue(id, out var s)) return;
            state[id] = false;
            foreach (var named in Names(s.Rule)) Visit(named);
            state[id] = true;
            ordered.Add(s);
        }
        foreach (var s in segments) Visit(s.Segment.Id);
        return ordered;
    }
}

/// <summary>A computed trait of the profile: see <see cref="Fields"/>.</summary>
public sealed record ComputedCondition(string Field, Comparison Compare) : SegmentRule
{
    public static readonly IReadOnlyDictionary<string, (string Column, string Kind)> Fields = new Dictionary<string, (string, string)>
    {
        ["order_count"] = ("order_count", "number"),
        ["total_spend_minor"] = ("total_spend_minor", "number"),
        ["value_score"] = ("value_score", "number"),
        ["event_count"] = ("event_count", "number"),
        ["rfm_segment"] = ("rfm_segment", "text"),
        ["lifecycle_stage"] = ("", "stage"),
        ["last_order_at"] = ("last_order_at", "time"),
        ["first_order_at"] = ("first_order_at", "time"),
        ["first_seen_at"] = ("first_seen_at", "time"),
        ["last_seen_at"] = ("last_seen_at", "time"),
    };

    /// <summary>The stages of <c>Profiles.Identity.OrderFacts.LifecycleStage</c>, which the SQL computes alike.</summary>
    public static readonly string[] Stages = ["unknown", "new", "active", "at_risk", "lapsed", "won_back"];

    public override string ToText() => Compare.ToText(Field);
}

/// <summary>An event property filter of an event condition.</summary>
public sealed record PropertyFilter(string Property, Comparison Compare)
{
    public string ToText() => Compare.ToText(Property);
}

/// <summary>
/// How often (or how much) the customer did something: events named <see cref="Event"/> matching every filter, within
/// the last <see cref="WithinDays"/> days if given, counted (default: at least one) or with a property summed.
/// </summary>
public sealed record EventCondition(string Event, IReadOnlyList<PropertyFilter> Where, string Op, decimal Threshold, string? SumOf, int? WithinDays)
    : SegmentRule
{
    public override string ToText()
    {
        var what = $"\"{Event}\"" + (Where.Count == 0 ? "" : " where " + string.Join(" and ", Where.Select(w => w.ToText())));
        var measure = SumOf is null ? $"count {Symbol} {Threshold.ToString(CultureInfo.InvariantCulture)}"
            : $"sum of {SumOf} {Symbol} {Threshold.ToString(CultureInfo.InvariantCulture)}";
        return $"event {what} {measure}" + (WithinDays is { } d ? $" in the last {d} days" : "");
    }

    private string Symbol => Op switch { "eq" => "=", "ne" => "≠", "gt" => ">", "gte" => "≥", "lt" => "<", _ => "≤" };
}

/// <summary>Reads a rule from JSON; each error names the path of the node at fault (<c>$.and[1].op</c>).</summary>
public static class SegmentRuleParser
{
    private const int MaxDepth = 10;
    private const int MaxConditions = 50;

    public static SegmentRule? Parse(JsonElement json, out Dictionary<string, string[]> errors)
    {
        var state = new Dictionary<string, string[]>();
        var count = 0;
        var rule = Node(json, "$", 0, state, ref count);
        errors = state;
        return state.Count == 0 ? rule : null;
    }

    private static SegmentRule? Node(JsonElement json, string path, int depth, Dictionary<string, string[]> errors, ref int count)
    {
        if (json.ValueKind != JsonValueKind.Object) return Fail(errors, path, "A rule is a JSON object.");
        if (depth > MaxDepth) return Fail(errors, path, $"Rules nest at most {MaxDepth} deep.");
        if (++count > MaxConditions) return Fail(errors, path, $"A rule has at most {MaxConditions} nodes.");
        string[] kinds = ["and", "or", "not", "trait", "identifier", "tag", "computed", "event", "segment", "loyalty", "coupons", "consent"];
        var present = kinds.Where(k => json.TryGetProperty(k, out _)).ToList();
        if (present.Count != 1) return Fail(errors, path, $"A rule node has exactly one of: {string.Join(", ", kinds)}.");
        var kind = present[0];
        var body = json.GetProperty(kind);
        switch (kind)
        {
            case "and" or "or":
                if (body.ValueKind != JsonValueKind.Array || body.GetArrayLength() == 0) return Fail(errors, $"{path}.{kind}", "A non-empty list of rules.");
                var children = new List<SegmentRule>();
                var i = 0;
                foreach (var child in body.EnumerateArray())
                {
                    if (Node(child, $"{path}.{kind}[{i++}]", depth + 1, errors, ref count) is { } parsed) children.Add(parsed);
                }
                return kind == "and" ? new AllOf(children) : new AnyOf(children);
            case "not":
                return Node(body, $"{path}.not", depth + 1, errors, ref count) is { } inner ? new NotRule(inner) : null;
            case "trait":
                if (Name(body, $"{path}.trait", errors) is not { } trait) return null;
                return Compare(json, path, errors, [.. Comparison.ValueOps, .. Comparison.PresenceOps]) is { } c ? new TraitCondition(trait, c) : null;
            case "identifier":
                return Name(body, $"{path}.identifier", errors) is { } type ? new IdentifierCondition(type) : null;
            case "tag":
                return Name(body, $"{path}.tag", errors) is { } tag ? new TagCondition(tag) : null;
            case "loyalty":
                if (Name(body, $"{path}.loyalty", errors) is not { } standing) return null;
                if (!LoyaltyCondition.FieldNames.Contains(standing)) return Fail(errors, $"{path}.loyalty", $"One of: {string.Join(", ", LoyaltyCondition.FieldNames)}.");
                var loyalty = Compare(json, path, errors, standing == "tier" ? ["eq", "ne", "in", .. Comparison.PresenceOps] : ["eq", "ne", "gt", "gte", "lt", "lte", .. Comparison.PresenceOps]);
                if (loyalty is { Value: { } points } && standing == "points" && (points.ValueKind != JsonValueKind.Number || !points.TryGetInt64(out _)))
                    return Fail(errors, $"{path}.value", "Points are a whole number.");
                if (loyalty is { Value: { } tierName } && standing == "tier"
                    && (tierName.ValueKind == JsonValueKind.Array ? tierName.EnumerateArray() : new[] { tierName }.AsEnumerable()).Any(t => t.ValueKind != JsonValueKind.String))
                    return Fail(errors, $"{path}.value", "A tier's name.");
                return loyalty is null ? null : new LoyaltyCondition(standing, loyalty);
            case "coupons":
                return Coupons(json, body, path, errors);
            case "consent":
                if (body.ValueKind != JsonValueKind.String || !Profiles.Data.Consents.Channels.Contains(body.GetString()))
                    return Fail(errors, $"{path}.consent", $"A channel: one of {string.Join(", ", Profiles.Data.Consents.Channels)}.");
                var purpose = "marketing";
                if (json.TryGetProperty("purpose", out var p))
                {
                    if (p.ValueKind != JsonValueKind.String || !Profiles.Data.Consents.Purposes.Contains(p.GetString()))
                        return Fail(errors, $"{path}.purpose", $"One of {string.Join(", ", Profiles.Data.Consents.Purposes)}.");
                    purpose = p.GetString()!;
                }
                return new ConsentCondition(body.GetString()!, purpose);
            case "segment":
                return body.ValueKind == JsonValueKind.Number && body.TryGetInt64(out var segmentId) && segmentId > 0
                    ? new SegmentCondition(segmentId)
                    : Fail(errors, $"{path}.segment", "The id of a saved segment of the brand.");
            case "computed":
                if (Name(body, $"{path}.computed", errors) is not { } field) return null;
                if (!ComputedCondition.Fields.TryGetValue(field, out var spec))
                    return Fail(errors, $"{path}.computed", $"One of: {string.Join(", ", ComputedCondition.Fields.Keys)}.");
                string[] ops = spec.Kind switch
                {
                    "time" => [.. Comparison.TimeOps, .. Comparison.PresenceOps],
                    "text" => ["eq", "ne", "in", .. Comparison.PresenceOps],
                    "stage" => ["eq", "ne", "in"],
                    _ => ["eq", "ne", "gt", "gte", "lt", "lte", .. Comparison.PresenceOps],
                };
                var computed = Compare(json, path, errors, ops);
                if (computed is { Value: { } v } && spec.Kind == "number" && v.ValueKind != JsonValueKind.Number)
                    return Fail(errors, $"{path}.value", $"{field} compares with a number.");
                if (computed is { Value: { } stage } && spec.Kind == "stage"
                    && (stage.ValueKind == JsonValueKind.Array ? stage.EnumerateArray() : new[] { stage }.AsEnumerable()).Any(s => !ComputedCondition.Stages.Contains(s.ToString())))
                    return Fail(errors, $"{path}.value", $"Lifecycle stages are: {string.Join(", ", ComputedCondition.Stages)}.");
                return computed is null ? null : new ComputedCondition(field, computed);
            default:
                return Event(json, body, path, errors);
        }
    }

    private static CouponCondition? Coupons(JsonElement json, JsonElement state, string path, Dictionary<string, string[]> errors)
    {
        if (state.ValueKind != JsonValueKind.String || !CouponCondition.States.Contains(state.GetString()))
            return Fail<CouponCondition>(errors, $"{path}.coupons", $"One of: {string.Join(", ", CouponCondition.States)}.");
        long? template = null;
        if (json.TryGetProperty("template", out var t))
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt64(out var id) || id <= 0) return Fail<CouponCondition>(errors, $"{path}.template", "The id of an offer template.");
            template = id;
        }
        var (op, count) = ("gte", 1L);
        if (json.TryGetProperty("count", out var measure))
        {
            if (measure.ValueKind != JsonValueKind.Object) return Fail<CouponCondition>(errors, $"{path}.count", "An object with op and value.");
            if (!measure.TryGetProperty("op", out var o) || o.ValueKind != JsonValueKind.String || o.GetString() is not ("eq" or "ne" or "gt" or "gte" or "lt" or "lte"))
                return Fail<CouponCondition>(errors, $"{path}.count.op", "One of: eq, ne, gt, gte, lt, lte.");
            if (!measure.TryGetProperty("value", out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out count) || count < 0)
                return Fail<CouponCondition>(errors, $"{path}.count.value", "A whole number, 0 or more.");
            op = o.GetString()!;
        }
        return new CouponCondition(state.GetString()!, template, op, count);
    }

    private static EventCondition? Event(JsonElement json, JsonElement name, string path, Dictionary<string, string[]> errors)
    {
        if (Name(name, $"{path}.event", errors) is not { } eventName) return null;
        var filters = new List<PropertyFilter>();
        if (json.TryGetProperty("where", out var where))
        {
            if (where.ValueKind != JsonValueKind.Array) return Fail<EventCondition>(errors, $"{path}.where", "A list of property filters.");
            var i = 0;
            foreach (var filter in where.EnumerateArray())
            {
                var at = $"{path}.where[{i++}]";
                if (filter.ValueKind != JsonValueKind.Object || !filter.TryGetProperty("property", out var property)) { Fail<EventCondition>(errors, at, "A filter names its property."); continue; }
                if (Name(property, $"{at}.property", errors) is not { } p) continue;
                if (Compare(filter, at, errors, [.. Comparison.ValueOps, .. Comparison.PresenceOps]) is { } c) filters.Add(new PropertyFilter(p, c));
            }
        }
        int? within = null;
        if (json.TryGetProperty("withinDays", out var days))
        {
            if (days.ValueKind != JsonValueKind.Number || !days.TryGetInt32(out var d) || d is < 1 or > 3650) return Fail<EventCondition>(errors, $"{path}.withinDays", "Whole days, 1 to 3650.");
            within = d;
        }
        if (json.TryGetProperty("count", out _) && json.TryGetProperty("sum", out _)) return Fail<EventCondition>(errors, path, "Either count or sum, not both.");
        var (op, threshold, sumOf) = ("gte", 1m, (string?)null);
        var measureName = json.TryGetProperty("sum", out _) ? "sum" : "count";
        if (json.TryGetProperty(measureName, out var measure))
        {
            var at = $"{path}.{measureName}";
            if (measure.ValueKind != JsonValueKind.Object) return Fail<EventCondition>(errors, at, "An object with op and value.");
            if (measureName == "sum")
            {
                if (!measure.TryGetProperty("property", out var summed) || Name(summed, $"{at}.property", errors) is not { } s) return Fail<EventCondition>(errors, $"{at}.property", "The property to sum.");
                sumOf = s;
            }
            if (!measure.TryGetProperty("op", out var o) || o.ValueKind != JsonValueKind.String || o.GetString() is not ("eq" or "ne" or "gt" or "gte" or "lt" or "lte"))
                return Fail<EventCondition>(errors, $"{at}.op", "One of: eq, ne, gt, gte, lt, lte.");
            if (!measure.TryGetProperty("value", out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetDecimal(out threshold))
                return Fail<EventCondition>(errors, $"{at}.value", "A number.");
            op = o.GetString()!;
        }
        return errors.Count > 0 ? null : new EventCondition(eventName, filters, op, threshold, sumOf, within);
    }

    private static Comparison? Compare(JsonElement json, string path, Dictionary<string, string[]> errors, string[] allowed)
    {
        if (!json.TryGetProperty("op", out var opElement) || opElement.ValueKind != JsonValueKind.String || !allowed.Contains(opElement.GetString()))
            return Fail<Comparison>(errors, $"{path}.op", $"One of: {string.Join(", ", allowed)}.");
        var op = opElement.GetString()!;
        if (Comparison.PresenceOps.Contains(op)) return new Comparison(op, null);
        if (!json.TryGetProperty("value", out var value)) return Fail<Comparison>(errors, $"{path}.value", $"'{op}' needs a value.");
        var ok = op switch
        {
            "in" => value.ValueKind == JsonValueKind.Array && value.GetArrayLength() is > 0 and <= 1000
                    && value.EnumerateArray().All(v => v.ValueKind is JsonValueKind.String or JsonValueKind.Number),
            "contains" => value.ValueKind == JsonValueKind.String,
            "within_days" or "not_within_days" => value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var d) && d is >= 1 and <= 3650,
            "gt" or "gte" or "lt" or "lte" => value.ValueKind is JsonValueKind.Number or JsonValueKind.String,
            _ => value.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False,
        };
        if (!ok)
        {
            return Fail<Comparison>(errors, $"{path}.value", op switch
            {
                "in" => "A list of 1 to 1000 strings or numbers.",
                "contains" => "A string.",
                "within_days" or "not_within_days" => "Whole days, 1 to 3650.",
                _ => "A string, number or boolean.",
            });
        }
        return new Comparison(op, value.Clone());
    }

    private static string? Name(JsonElement element, string path, Dictionary<string, string[]> errors) =>
        element.ValueKind == JsonValueKind.String && element.GetString() is { Length: > 0 and <= 200 } name && name.IndexOfAny(['\0', '"', '\\']) < 0
            ? name
            : Fail<string>(errors, path, "A name of 1 to 200 characters, without quotes or backslashes.");

    private static T? Fail<T>(Dictionary<string, string[]> errors, string path, string message) where T : class
    {
        errors[path] = errors.TryGetValue(path, out var existing) ? [.. existing, message] : [message];
        return null;
    }

    private static SegmentRule? Fail(Dictionary<string, string[]> errors, string path, string message) => Fail<SegmentRule>(errors, path, message);
}
