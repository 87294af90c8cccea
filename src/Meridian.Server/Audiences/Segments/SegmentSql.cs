using System.Data.Common;
using System.Text.Json;
using Meridian.Hosting;

namespace Meridian.Audiences.Segments;

/// <summary>
/// Turns a <see cref="SegmentRule"/> into one SQL condition over a brand's live profiles (<c>profiles p</c>), for
/// SQLite or PostgreSQL. Every value the rule holds goes in as a parameter. Semantics, shared with any other evaluator:
/// a comparison holds only for a value that exists and is of the compared kind (a number for a number, a string for a
/// string), so <c>ne</c> and <c>lt</c> never match a customer who lacks the trait; <c>contains</c> is case-sensitive;
/// <c>within_days</c> counts back from now; tags set on profiles merged into the customer's count as theirs.
/// </summary>
public sealed class SegmentSql
{
    private readonly bool postgres;
    /// <summary>The brand, when the query counts over all its profiles (see <see cref="Compile"/>).</summary>
    private readonly long? wholeBrand;
    private readonly DateTime now;
    private readonly Profiles.Identity.LifecycleThresholds lifecycle;
    private readonly List<(string Name, object Value)> parameters = [];

    private SegmentSql(bool postgres, DateTime now, Profiles.Identity.LifecycleThresholds lifecycle, long? wholeBrand = null) =>
        (this.postgres, this.now, this.lifecycle, this.wholeBrand) = (postgres, now, lifecycle, wholeBrand);

    /// <summary>
    /// The condition and its parameters (<c>@s0</c>, <c>@s1</c>, ...). <paramref name="wholeBrand"/>: the query reads
    /// every profile of that brand (a count), not a few profiles; conditions then come as sets the database can start from.
    /// </summary>
    public static (string Sql, IReadOnlyList<(string Name, object Value)> Parameters) Compile(SegmentRule rule, bool postgres, DateTime now,
        Profiles.Identity.LifecycleThresholds lifecycle, long? wholeBrand = null)
    {
        var compiler = new SegmentSql(postgres, now, lifecycle, wholeBrand);
        return (compiler.Condition(rule), compiler.parameters);
    }

    /// <summary>
    /// The times at which a profile's answer to the rule can change by the clock alone, as SQL over <c>profiles p</c>:
    /// each expression gives a time (or NULL) to which <c>After</c> is added — the earliest matching event still inside a
    /// window (it leaves the window then), a date compared with "within the last N days", the dates the lifecycle stage
    /// counts from. Empty when the rule does not depend on the time.
    /// </summary>
    public static (IReadOnlyList<(string Sql, TimeSpan After)> Points, IReadOnlyList<(string Name, object Value)> Parameters) CompileTimePoints(
        SegmentRule rule, bool postgres, DateTime now, Profiles.Identity.LifecycleThresholds lifecycle)
    {
        var compiler = new SegmentSql(postgres, now, lifecycle);
        var points = new List<(string, TimeSpan)>();
        compiler.TimePoints(rule, points);
        return (points, compiler.parameters);
    }

    private void TimePoints(SegmentRule rule, List<(string, TimeSpan)> points)
    {
        switch (rule)
        {
            case AllOf all: foreach (var r in all.Rules) TimePoints(r, points); break;
            case AnyOf any: foreach (var r in any.Rules) TimePoints(r, points); break;
            case NotRule not: TimePoints(not.Rule, points); break;
            case EventCondition { WithinDays: { } days } e:
                points.Add(($"(SELECT MIN(pe.timestamp) {EventRows(e)})",
                    TimeSpan.FromDays(days)));
                break;
            case ComputedCondition { Compare.Op: "within_days" or "not_within_days" } c:
                points.Add(("p." + ComputedCondition.Fields[c.Field].Column, TimeSpan.FromDays(c.Compare.Value!.Value.GetInt32())));
                break;
            case ComputedCondition c when ComputedCondition.Fields[c.Field].Kind == "stage":
                points.Add(("COALESCE(p.last_order_at, p.last_seen_at)", lifecycle.AtRiskAfter));
                points.Add(("COALESCE(p.last_order_at, p.last_seen_at)", lifecycle.LapsedAfter));
                points.Add(("p.first_seen_at", lifecycle.NewFor));
                break;
        }
    }

    public static void Bind(DbCommand command, IReadOnlyList<(string Name, object Value)> parameters)
    {
        foreach (var (name, value) in parameters) command.AddParameter(name, value);
    }

    private string Param(object value)
    {
        var name = "@s" + parameters.Count;
        parameters.Add((name, value));
        return name;
    }

    private string Condition(SegmentRule rule) => rule switch
    {
        AllOf all => "(" + string.Join(" AND ", all.Rules.Select(Condition)) + ")",
        AnyOf any => "(" + string.Join(" OR ", any.Rules.Select(Condition)) + ")",
        NotRule not => "(NOT " + Condition(not.Rule) + ")",
        // A leaf over a missing value is NULL in SQL, and NOT NULL is NULL again: each leaf is made plainly true or false,
        // so that NOT picks exactly the customers its condition leaves out. Leaves built of EXISTS and counts are never
        // NULL and stay bare: PostgreSQL turns a bare EXISTS into a semi-join, one inside COALESCE into a probe per profile.
        IdentifierCondition or TagCondition or EventCondition or SegmentCondition or CouponCondition => Leaf(rule),
        _ => $"COALESCE({Leaf(rule)}, {(postgres ? "FALSE" : "0")})",
    };

    private string Leaf(SegmentRule rule) => rule switch
    {
        TraitCondition t => Compare(postgres ? Pg("p.traits", Param(t.Trait), "'v'") : Lite("p.traits", Param($"$.\"{t.Trait}\".v")), t.Compare),
        IdentifierCondition i => $"EXISTS (SELECT 1 FROM profile_identifiers i WHERE i.profile_id = p.id AND i.type = {Param(i.Type)})",
        TagCondition tag when wholeBrand is { } brand => TaggedProfiles(tag, brand),
        TagCondition tag when postgres => ProbedTags(tag),
        // Two EXISTS rather than one over "the profile or one merged into it": an OR of the two kept either index from use,
        // and the estimate took seconds where the customer's own tags are one index probe away.
        TagCondition tag => $"(EXISTS (SELECT 1 FROM profile_tags pt JOIN tags t ON t.id = pt.tag_id WHERE pt.profile_id = p.id AND t.tenant_id = p.tenant_id AND t.name = {Param(tag.Tag)})"
            + $" OR EXISTS (SELECT 1 FROM profiles m JOIN profile_tags pt ON pt.profile_id = m.id JOIN tags t ON t.id = pt.tag_id WHERE m.merged_into_id = p.id AND t.name = {Param(tag.Tag)}))",
        // The latest change of the channel and purpose decides (merges move a profile's consent changes to the survivor).
        ConsentCondition c => $"(SELECT c.granted FROM consent_changes c WHERE c.profile_id = p.id AND c.channel = {Param(c.Channel)} AND c.purpose = {Param(c.Purpose)}"
            + " ORDER BY c.changed_at DESC, c.id DESC LIMIT 1)",
        ComputedCondition c => Computed(c),
        EventCondition e => Event(e),
        LoyaltyCondition l => Loyalty(l),
        CouponCondition c => Coupons(c),
        SegmentCondition s => $"EXISTS (SELECT 1 FROM segment_members sm WHERE sm.segment_id = {Param(s.SegmentId)} AND sm.profile_id = p.id)",
        _ => throw new InvalidOperationException($"No SQL for {rule.GetType().Name}."),
    };

    /// <summary>
    /// The tag condition for a count over the whole brand: the profiles holding the tag (their own, or on a profile
    /// merged into them: merges stay within a brand) as one set, which the database can start from (the tagged few,
    /// then their profiles). The two EXISTS joined by OR are a probe per profile of the brand: on PostgreSQL that made it
    /// read every profile's traits and hash the whole event log (EXPLAIN at 50,000 profiles); SQLite read all 1,000,000
    /// profiles of the bench brand to find the 100,000 tagged. For a few profiles (a refresh, a check) the probes are
    /// cheaper than the set, and stay. SQLite takes a plain <c>p.id IN</c> as a list of row ids to visit; a row value
    /// (id, brand) it would only test per profile, so the brand goes into the set's query instead.
    /// </summary>
    private string TaggedProfiles(TagCondition tag, long brand)
    {
        var name = Param(tag.Tag);
        if (postgres)
            return $"((p.id, p.tenant_id) IN (SELECT pt.profile_id, t.tenant_id FROM profile_tags pt JOIN tags t ON t.id = pt.tag_id WHERE t.name = {name}"
                + $" UNION ALL SELECT m.merged_into_id, m.tenant_id FROM profiles m JOIN profile_tags pt ON pt.profile_id = m.id JOIN tags t ON t.id = pt.tag_id"
                + $" WHERE m.merged_into_id IS NOT NULL AND t.name = {name}))";
        // The merged few are found through their index: the unary + keeps SQLite from walking the brand's index instead
        // (with m.tenant_id = ... it read every profile of the brand to find them, a third of the count's time at 1 M),
        // and a range (> 0: ids start at 1) it costs lower than IS NOT NULL, which with the + made it scan the table.
        var of = Param(brand);
        return $"p.id IN (SELECT pt.profile_id FROM tags t JOIN profile_tags pt ON pt.tag_id = t.id WHERE t.tenant_id = {of} AND t.name = {name}"
            + $" UNION ALL SELECT m.merged_into_id FROM profiles m WHERE m.merged_into_id > 0 AND +m.tenant_id = {of}"
            + $" AND EXISTS (SELECT 1 FROM profile_tags pt JOIN tags t ON t.id = pt.tag_id WHERE pt.profile_id = m.id AND t.name = {name}))";
    }

    /// <summary>
    /// The tag condition for a few profiles on PostgreSQL (a refresh, a check): the same two probes as SQLite's EXISTS,
    /// written as scalar subqueries. PostgreSQL may run an EXISTS as a hash of everything its subquery can return, and
    /// it misjudges the tag join (through the small tags table) at a hundredth of its size: at 1,000,000 profiles, a
    /// refresh of 500 hashed all 100,000 tagged profiles, and looked each up for merges, in 1.5 s (EXPLAIN ANALYZE); as
    /// scalar probes, 0.13 s. Never NULL: a probe gives 1 or nothing.
    /// </summary>
    private string ProbedTags(TagCondition tag)
    {
        var name = Param(tag.Tag);
        return $"((SELECT 1 FROM profile_tags pt JOIN tags t ON t.id = pt.tag_id WHERE pt.profile_id = p.id AND t.tenant_id = p.tenant_id AND t.name = {name} LIMIT 1) IS NOT NULL"
            + $" OR (SELECT 1 FROM profiles m JOIN profile_tags pt ON pt.profile_id = m.id JOIN tags t ON t.id = pt.tag_id WHERE m.merged_into_id = p.id AND t.name = {name} LIMIT 1) IS NOT NULL)";
    }

    /// <summary>A JSON value inside a document column: its JSON type, its value as SQL compares it, and as text; on PostgreSQL also the jsonb value itself.</summary>
    private sealed record JsonValue(string Type, string Number, string Text, bool Postgres, string? Jsonb = null)
    {
        public string IsNumber => Postgres ? $"{Type} = 'number'" : $"{Type} IN ('integer', 'real')";
        public string IsString => Postgres ? $"{Type} = 'string'" : $"{Type} = 'text'";
        public string Exists => $"({Type} IS NOT NULL AND {Type} <> 'null')";
    }

    private JsonValue Lite(string document, string path) =>
        new($"json_type({document}, {path})", $"json_extract({document}, {path})", $"json_extract({document}, {path})", false);

    /// <summary><paramref name="key"/> is a parameter; <paramref name="inner"/> an optional key below it (a quoted literal).</summary>
    private JsonValue Pg(string document, string key, string? inner)
    {
        var value = inner is null ? $"(CAST({document} AS jsonb) -> {key})" : $"(CAST({document} AS jsonb) -> {key} -> {inner})";
        var text = inner is null ? $"(CAST({document} AS jsonb) ->> {key})" : $"(CAST({document} AS jsonb) -> {key} ->> {inner})";
        return new JsonValue($"jsonb_typeof({value})", $"(CASE WHEN jsonb_typeof({value}) = 'number' THEN CAST({text} AS numeric) END)", text, true, value);
    }

    private string Compare(JsonValue v, Comparison c)
    {
        switch (c.Op)
        {
            case "exists": return v.Exists;
            case "not_exists": return $"(NOT {v.Exists})";
            case "in": return "(" + string.Join(" OR ", c.Value!.Value.EnumerateArray().Select(item => Equal(v, item))) + ")";
            case "eq": return Equal(v, c.Value!.Value);
            case "ne": return $"({v.Exists} AND NOT {Equal(v, c.Value!.Value)})";
            case "contains": return postgres ? $"({v.IsString} AND strpos({v.Text}, {Param(c.Value!.Value.GetString()!)}) > 0)"
                : $"({v.IsString} AND instr({v.Text}, {Param(c.Value!.Value.GetString()!)}) > 0)";
        }
        var op = Symbol(c.Op);
        var value = c.Value!.Value;
        return value.ValueKind == JsonValueKind.Number
            ? $"({v.IsNumber} AND {v.Number} {op} {Param(Number(value))})"
            : $"({v.IsString} AND {v.Text}{(postgres ? " COLLATE \"C\"" : "")} {op} {Param(value.GetString()!)})";
    }

    // Equality as one comparison where it can be: on PostgreSQL jsonb = jsonb (a string equals only a string, numbers
    // compare as numbers), which casts the document once per profile instead of twice; on SQLite the value first, so
    // that the type is read only for the few profiles whose value matched.
    private string Equal(JsonValue v, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number when v.Jsonb is { } jsonb => $"({jsonb} = to_jsonb(CAST({Param(Number(value))} AS numeric)))",
        JsonValueKind.String when v.Jsonb is { } jsonb => $"({jsonb} = to_jsonb(CAST({Param(value.GetString()!)} AS text)))",
        JsonValueKind.Number => $"({v.Number} = {Param(Number(value))} AND {v.IsNumber})",
        JsonValueKind.True or JsonValueKind.False => postgres
            ? $"({v.Type} = 'boolean' AND {v.Text} = '{(value.GetBoolean() ? "true" : "false")}')"
            : $"({v.Type} = '{(value.GetBoolean() ? "true" : "false")}')",
        _ => $"({v.Text} = {Param(value.GetString()!)} AND {v.IsString})",
    };

    private object Number(JsonElement value) => postgres ? value.GetDecimal() : value.GetDouble();

    private static string Symbol(string op) => op switch
    {
        "eq" => "=", "ne" => "<>", "gt" => ">", "gte" => ">=", "lt" => "<", "lte" => "<=",
        _ => throw new InvalidOperationException($"No symbol for '{op}'."),
    };

    private string Computed(ComputedCondition c)
    {
        var (column, kind) = ComputedCondition.Fields[c.Field];
        var col = kind == "stage" ? LifecycleStage() : "p." + column;
        switch (c.Compare.Op)
        {
            case "exists": return $"({col} IS NOT NULL)";
            case "not_exists": return $"({col} IS NULL)";
            case "within_days": return $"({col} >= {Param(now.AddDays(-c.Compare.Value!.Value.GetInt32()))})";
            case "not_within_days": return $"({col} IS NULL OR {col} < {Param(now.AddDays(-c.Compare.Value!.Value.GetInt32()))})";
            case "in": return $"({col} IN ({string.Join(", ", c.Compare.Value!.Value.EnumerateArray().Select(v => Param(v.ToString())))}))";
        }
        var value = c.Compare.Value!.Value;
        object bound = kind == "number" ? (postgres ? value.GetDecimal() : value.GetDouble()) : value.ToString();
        return $"({col} IS NOT NULL AND {col} {Symbol(c.Compare.Op)} {Param(bound)})";
    }

    /// <summary>The lifecycle stage as <c>OrderFacts.LifecycleStage</c> computes it, step by step in the same order.</summary>
    private string LifecycleStage()
    {
        var lastActive = "COALESCE(p.last_order_at, p.last_seen_at)";
        var gap = postgres ? "EXTRACT(EPOCH FROM (p.last_order_at - p.previous_order_at))"
            : "((julianday(p.last_order_at) - julianday(p.previous_order_at)) * 86400.0)";
        var lapsedSeconds = postgres ? (object)(decimal)lifecycle.LapsedAfter.TotalSeconds : lifecycle.LapsedAfter.TotalSeconds;
        return $"(CASE WHEN {lastActive} IS NULL THEN 'unknown'"
            + $" WHEN {lastActive} < {Param(now - lifecycle.LapsedAfter)} THEN 'lapsed'"
            + $" WHEN {lastActive} < {Param(now - lifecycle.AtRiskAfter)} THEN 'at_risk'"
            + $" WHEN p.last_order_at IS NOT NULL AND p.previous_order_at IS NOT NULL AND {gap} > {Param(lapsedSeconds)} THEN 'won_back'"
            + $" WHEN p.first_seen_at IS NOT NULL AND p.first_seen_at >= {Param(now - lifecycle.NewFor)} AND p.order_count <= 1 THEN 'new'"
            + " ELSE 'active' END)";
    }

    /// <summary>
    /// The FROM and WHERE of the profile's events a condition reads: by the event name copied onto the timeline, so that
    /// "an event of this name in a window" is one probe of the (profile, name, time) index; the events themselves are
    /// joined only when a property is read (a filter, a sum).
    /// </summary>
    private string EventRows(EventCondition e)
    {
        var where = new List<string> { "pe.profile_id = p.id", $"pe.name = {Param(e.Event)}" };
        if (e.WithinDays is { } days) where.Add($"pe.timestamp >= {Param(now.AddDays(-days))}");
        where.AddRange(e.Where.Select(f => Compare(Property(f.Property), f.Compare)));
        var properties = e.Where.Any() || e.SumOf is not null;
        return $"FROM profile_events pe{(properties ? " JOIN events e ON e.id = pe.event_id" : "")} WHERE {string.Join(" AND ", where)}";
    }

    private string Event(EventCondition e)
    {
        // "At least once" and "never" are existence: the database stops at the first matching event instead of counting all.
        if (e.SumOf is null && ((e.Op == "gte" && e.Threshold == 1) || (e.Op == "gt" && e.Threshold == 0)))
            return $"EXISTS (SELECT 1 {EventRows(e)})";
        if (e.SumOf is null && ((e.Op == "eq" && e.Threshold == 0) || (e.Op == "lt" && e.Threshold == 1) || (e.Op == "lte" && e.Threshold == 0)))
            return $"NOT EXISTS (SELECT 1 {EventRows(e)})";
        string measure;
        if (e.SumOf is { } summed)
        {
            var v = Property(summed);
            measure = $"COALESCE(SUM(CASE WHEN {v.IsNumber} THEN {v.Number} END), 0)";
        }
        else measure = "COUNT(*)";
        var threshold = postgres ? (object)e.Threshold : (double)e.Threshold;
        return $"((SELECT {measure} {EventRows(e)}) {Symbol(e.Op)} {Param(threshold)})";
    }

    // Loyalty's and Offers' tables, read here only as read-only segment SQL (like events): Audiences writes nothing there.

    /// <summary>
    /// The member's tier name or net points (a brand takes part in one programme: at most one member per profile, found
    /// through its profile at the brand, so a member of a programme shared by the group counts at each of its brands).
    /// </summary>
    private string Loyalty(LoyaltyCondition l)
    {
        var value = l.Field == "tier"
            ? "(SELECT MAX(lt.name) FROM loyalty_member_profiles lmp JOIN loyalty_members lm ON lm.id = lmp.member_id JOIN loyalty_tiers lt ON lt.id = lm.tier_id WHERE lmp.profile_id = p.id)"
            : "(SELECT MAX(lm.balance - lm.owed) FROM loyalty_member_profiles lmp JOIN loyalty_members lm ON lm.id = lmp.member_id WHERE lmp.profile_id = p.id)";
        var c = l.Compare;
        return c.Op switch
        {
            "exists" => $"({value} IS NOT NULL)",
            "not_exists" => $"({value} IS NULL)",
            "in" => $"({value} IN ({string.Join(", ", c.Value!.Value.EnumerateArray().Select(v => Param(v.GetString()!)))}))",
            _ => $"({value} IS NOT NULL AND {value} {Symbol(c.Op)} {Param(l.Field == "tier" ? c.Value!.Value.GetString()! : c.Value!.Value.GetInt64())})",
        };
    }

    /// <summary>Coupons of the profile by status: held = issued (1), used = redeemed (2), as Offers' <c>CouponStatus</c> numbers them.</summary>
    private string Coupons(CouponCondition c)
    {
        var where = $"oc.profile_id = p.id AND oc.status = {(c.State == "held" ? 1 : 2)}" + (c.TemplateId is { } t ? $" AND oc.template_id = {Param(t)}" : "");
        return $"((SELECT COUNT(*) FROM offer_coupons oc WHERE {where}) {Symbol(c.Op)} {Param(c.Count)})";
    }

    private JsonValue Property(string property) =>
        postgres ? Pg("e.payload", "'properties'", Param(property)) : Lite("e.payload", Param($"$.properties.\"{property}\""));
}
