using System.Globalization;
using System.Text.Json;
using Meridian.Audiences.Segments;

namespace Meridian.Journeys.Graph;

/// <summary>Who enters: <c>event</c> (a tracked event), <c>domain_event</c> (an outbox event), <c>date</c> (a date trait), <c>api</c>.</summary>
public sealed record JourneyTrigger(string Type, string? Event, IReadOnlyList<PropertyFilter> Where, string? Trait, int DaysBefore, TimeOnly At);

/// <summary>Re-entry: <c>once</c>, <c>once_per_days</c> (with <see cref="Days"/>) or <c>every_time</c>.</summary>
public sealed record ReentryPolicy(string Policy, int Days);

public sealed record JourneyNode(string Id, string Type, JsonElement Config)
{
    public string? Text(string name) => Config.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    public long? Long(string name) => Config.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : null;
    public JsonElement? Element(string name) => Config.TryGetProperty(name, out var v) ? v : null;
}

public sealed record JourneyEdge(string From, string To, string On);

/// <summary>A parsed, validated journey graph: the trigger, the entry rules, the nodes and where each exit leads.</summary>
public sealed class JourneyGraph
{
    public required JourneyTrigger Trigger { get; init; }
    public required ReentryPolicy Reentry { get; init; }
    public long? MaxEntries { get; init; }
    public required string Start { get; init; }
    public required IReadOnlyDictionary<string, JourneyNode> Nodes { get; init; }
    public required IReadOnlyList<JourneyEdge> Edges { get; init; }

    /// <summary>Parsed per node: wait durations, condition rules, split branches.</summary>
    public IReadOnlyDictionary<string, TimeSpan> Durations { get; init; } = new Dictionary<string, TimeSpan>();
    public IReadOnlyDictionary<string, SegmentRule> Rules { get; init; } = new Dictionary<string, SegmentRule>();
    public IReadOnlyDictionary<string, IReadOnlyList<(string Name, int Percent)>> Branches { get; init; } = new Dictionary<string, IReadOnlyList<(string, int)>>();
    /// <summary>A wait_event node's property filters (<c>where</c>): the event wakes the customer only if its properties pass them all.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<PropertyFilter>> EventFilters { get; init; } = new Dictionary<string, IReadOnlyList<PropertyFilter>>();

    /// <summary>Where the node's exit leads, or null (an optional exit left unconnected).</summary>
    public string? Next(string node, string on) => Edges.FirstOrDefault(e => e.From == node && e.On == on)?.To;
}

/// <summary>The kinds of node, the exits each has, and which exits must be connected.</summary>
public static class NodeKinds
{
    public const string Wait = "wait", WaitUntil = "wait_until", WaitEvent = "wait_event", Condition = "condition", Split = "split", Goal = "goal", Exit = "exit";
    public const string SendMessage = "send_message", IssueCoupon = "issue_coupon", AwardPoints = "award_points", AddTag = "add_tag", RemoveTag = "remove_tag",
        UpdateTrait = "update_trait", OpenTicket = "open_ticket", Webhook = "webhook";

    public static readonly string[] Actions = [SendMessage, IssueCoupon, AwardPoints, AddTag, RemoveTag, UpdateTrait, OpenTicket, Webhook];
    public static readonly string[] Waits = [Wait, WaitUntil, WaitEvent];
    public static readonly string[] All = [Wait, WaitUntil, WaitEvent, Condition, Split, Goal, Exit, .. Actions];

    /// <summary>Fixed exits per kind (a split's exits are its branch names): (exit, required).</summary>
    public static (string On, bool Required)[] Exits(string type) => type switch
    {
        Wait or WaitUntil => [("next", true)],
        WaitEvent => [("event", true), ("timeout", true)],
        Condition => [("true", true), ("false", true)],
        Goal or Exit => [],
        _ when Actions.Contains(type) => [("next", true), ("failure", false)],
        _ => [],
    };
}

/// <summary>
/// Reads a journey graph from JSON and validates it. Every error names where it is: <c>nodes.{id}</c> for a node (its
/// configuration, its exits, an edge from it to nowhere, being unreachable, a cycle through it with no wait),
/// <c>trigger</c>, <c>start</c>, <c>edges[i]</c>.
/// </summary>
public static class JourneyGraphParser
{
    public const int MaxNodes = 200;
    private static readonly string[] TriggerTypes = ["event", "domain_event", "date", "api"];
    private static readonly string[] Policies = ["once", "once_per_days", "every_time"];
    private static readonly string[] Channels = ["sms", "email", "webhook", "inbox"];

    public static JourneyGraph? Parse(JsonElement json, out Dictionary<string, string[]> errors)
    {
        var found = new Dictionary<string, List<string>>();
        void Error(string at, string message)
        {
            if (!found.TryGetValue(at, out var list)) found[at] = list = [];
            list.Add(message);
        }
        JourneyGraph? graph = null;
        if (json.ValueKind != JsonValueKind.Object) Error("graph", "The graph is a JSON object with trigger, start, nodes and edges.");
        else graph = Read(json, Error);
        errors = found.ToDictionary(e => e.Key, e => e.Value.ToArray());
        return errors.Count == 0 ? graph : null;
    }

    /// <summary>Parses a graph stored by a publish (it was valid then, and the rules have not loosened since).</summary>
    public static JourneyGraph Load(string stored)
    {
        using var document = JsonDocument.Parse(stored);
        return Parse(document.RootElement.Clone(), out var errors)
            ?? throw new InvalidOperationException("A stored journey version no longer validates: " + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
    }

    private static JourneyGraph? Read(JsonElement json, Action<string, string> error)
    {
        var trigger = ReadTrigger(json, error);
        var reentry = new ReentryPolicy("once", 0);
        if (json.TryGetProperty("reentry", out var r))
        {
            var policy = r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            var days = json.TryGetProperty("reentryDays", out var d) && d.ValueKind == JsonValueKind.Number && d.TryGetInt32(out var n) ? n : 0;
            if (policy is null || !Policies.Contains(policy)) error("reentry", $"One of {string.Join(", ", Policies)}.");
            else if (policy == "once_per_days" && days is < 1 or > 3660) error("reentryDays", "once_per_days needs reentryDays between 1 and 3660.");
            else reentry = new ReentryPolicy(policy, days);
        }
        long? maxEntries = null;
        if (json.TryGetProperty("maxEntries", out var m) && m.ValueKind != JsonValueKind.Null)
        {
            if (m.ValueKind == JsonValueKind.Number && m.TryGetInt64(out var max) && max > 0) maxEntries = max;
            else error("maxEntries", "A positive whole number, or leave it out for no limit.");
        }

        var nodes = new Dictionary<string, JourneyNode>(StringComparer.Ordinal);
        if (!json.TryGetProperty("nodes", out var nodeArray) || nodeArray.ValueKind != JsonValueKind.Array || nodeArray.GetArrayLength() == 0)
        {
            error("nodes", "A non-empty array of nodes, each with an id and a type.");
            return null;
        }
        if (nodeArray.GetArrayLength() > MaxNodes) error("nodes", $"At most {MaxNodes} nodes.");
        var index = 0;
        foreach (var n in nodeArray.EnumerateArray())
        {
            var at = $"nodes[{index++}]";
            var id = n.ValueKind == JsonValueKind.Object && n.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null;
            var type = n.ValueKind == JsonValueKind.Object && n.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (string.IsNullOrWhiteSpace(id) || id.Length > 64) { error(at, "Each node needs an id (1 to 64 characters)."); continue; }
            if (nodes.ContainsKey(id)) { error($"nodes.{id}", "Two nodes have this id."); continue; }
            if (type is null || !NodeKinds.All.Contains(type)) { error($"nodes.{id}", $"Unknown type '{type}': one of {string.Join(", ", NodeKinds.All)}."); continue; }
            nodes[id] = new JourneyNode(id, type, n.Clone());
        }

        var edges = new List<JourneyEdge>();
        if (json.TryGetProperty("edges", out var edgeArray) && edgeArray.ValueKind != JsonValueKind.Array) error("edges", "An array of {from, to, on}.");
        else if (edgeArray.ValueKind == JsonValueKind.Array)
        {
            index = 0;
            foreach (var e in edgeArray.EnumerateArray())
            {
                var at = $"edges[{index++}]";
                string? Field(string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                var (from, to, on) = (Field("from"), Field("to"), Field("on") ?? "next");
                if (from is null || to is null) { error(at, "An edge has from and to (node ids) and on (the exit, default next)."); continue; }
                if (!nodes.ContainsKey(from)) { error(at, $"The edge leaves '{from}', which is no node."); continue; }
                if (!nodes.ContainsKey(to)) { error($"nodes.{from}", $"Its '{on}' exit leads to '{to}', which is no node."); continue; }
                edges.Add(new JourneyEdge(from, to, on));
            }
        }

        var start = json.TryGetProperty("start", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : null;
        if (start is null || !nodes.ContainsKey(start)) { error("start", start is null ? "Name the first node (start)." : $"'{start}' is no node."); start = null; }

        var durations = new Dictionary<string, TimeSpan>();
        var rules = new Dictionary<string, SegmentRule>();
        var branches = new Dictionary<string, IReadOnlyList<(string, int)>>();
        var eventFilters = new Dictionary<string, IReadOnlyList<PropertyFilter>>();
        foreach (var node in nodes.Values)
        {
            var at = $"nodes.{node.Id}";
            CheckConfig(node, at, error, durations, rules, branches, eventFilters);
            var exits = branches.TryGetValue(node.Id, out var b) ? b.Select(x => (x.Item1, true)).ToArray() : NodeKinds.Exits(node.Type);
            var mine = edges.Where(e => e.From == node.Id).ToList();
            foreach (var extra in mine.Where(e => !exits.Any(x => x.Item1 == e.On)).Select(e => e.On).Distinct())
                error(at, exits.Length == 0 ? $"A {node.Type} node ends the journey: it has no exits (found '{extra}')."
                    : $"No exit '{extra}' on a {node.Type} node: it has {string.Join(", ", exits.Select(x => x.Item1))}.");
            foreach (var twice in mine.GroupBy(e => e.On).Where(g => g.Count() > 1)) error(at, $"Its '{twice.Key}' exit has {twice.Count()} edges; one leads on.");
            foreach (var (on, _) in exits.Where(x => x.Item2 && !mine.Any(e => e.On == x.Item1))) error(at, $"Its '{on}' exit leads nowhere: add an edge.");
        }

        if (start is not null)
        {
            var reached = new HashSet<string> { start };
            var queue = new Queue<string>([start]);
            while (queue.TryDequeue(out var at))
                foreach (var e in edges.Where(e => e.From == at && reached.Add(e.To))) queue.Enqueue(e.To);
            foreach (var id in nodes.Keys.Where(id => !reached.Contains(id))) error($"nodes.{id}", "Not reachable from the start node.");
        }
        if (CycleWithoutWait(nodes, edges) is { } looping) error($"nodes.{looping}", "It is on a cycle with no wait node: a customer would loop at once, forever.");

        return trigger is null || start is null ? null : new JourneyGraph
        {
            Trigger = trigger, Reentry = reentry, MaxEntries = maxEntries, Start = start, Nodes = nodes, Edges = edges,
            Durations = durations, Rules = rules, Branches = branches, EventFilters = eventFilters,
        };
    }

    private static JourneyTrigger? ReadTrigger(JsonElement json, Action<string, string> error)
    {
        if (!json.TryGetProperty("trigger", out var t) || t.ValueKind != JsonValueKind.Object)
        {
            error("trigger", "Say how customers enter: {\"type\": \"event\" | \"domain_event\" | \"date\" | \"api\", ...}.");
            return null;
        }
        string? Text(string name) => t.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var type = Text("type");
        if (type is null || !TriggerTypes.Contains(type)) { error("trigger", $"type is one of {string.Join(", ", TriggerTypes)}."); return null; }
        var where = new List<PropertyFilter>();
        if (t.TryGetProperty("where", out var w))
        {
            if (ReadFilters(w, "trigger.where", error) is { } filters) where = filters;
        }
        var eventName = Text("event");
        if (type is "event" or "domain_event" && string.IsNullOrWhiteSpace(eventName)) error("trigger", $"A {type} trigger names its event.");
        var trait = Text("trait");
        var days = t.TryGetProperty("daysBefore", out var d) && d.ValueKind == JsonValueKind.Number && d.TryGetInt32(out var n) ? n : 0;
        var at = TimeOnly.MinValue;
        if (type == "date")
        {
            if (string.IsNullOrWhiteSpace(trait)) error("trigger", "A date trigger names the date trait (e.g. birthday).");
            if (days is < 0 or > 366) error("trigger", "daysBefore is between 0 and 366.");
            if (Text("at") is { } time && !TimeOnly.TryParseExact(time, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out at))
                error("trigger", "at is a time of day, HH:mm, in the brand's time zone.");
        }
        return new JourneyTrigger(type, eventName, where, trait, days, at);
    }

    /// <summary>Property filters in the segment rule language's form: [{"property": "channel", "op": "eq", "value": "store"}].</summary>
    private static List<PropertyFilter>? ReadFilters(JsonElement json, string at, Action<string, string> error)
    {
        if (json.ValueKind != JsonValueKind.Array) { error(at, "An array of {property, op, value}."); return null; }
        var filters = new List<PropertyFilter>();
        foreach (var f in json.EnumerateArray())
        {
            var property = f.ValueKind == JsonValueKind.Object && f.TryGetProperty("property", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
            var op = f.ValueKind == JsonValueKind.Object && f.TryGetProperty("op", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString() : null;
            JsonElement? value = f.ValueKind == JsonValueKind.Object && f.TryGetProperty("value", out var v) ? v.Clone() : null;
            if (string.IsNullOrWhiteSpace(property) || op is null || !(Comparison.ValueOps.Contains(op) || Comparison.PresenceOps.Contains(op)))
            { error(at, $"Each filter has a property and an op ({string.Join(", ", Comparison.ValueOps.Concat(Comparison.PresenceOps))})."); continue; }
            if (Comparison.ValueOps.Contains(op) && value is null) { error(at, $"The '{op}' filter on '{property}' needs a value."); continue; }
            if (op == "in" && value?.ValueKind != JsonValueKind.Array) { error(at, $"The 'in' filter on '{property}' needs an array value."); continue; }
            filters.Add(new PropertyFilter(property, new Comparison(op, value)));
        }
        return filters;
    }

    private static void CheckConfig(JourneyNode node, string at, Action<string, string> error, Dictionary<string, TimeSpan> durations,
        Dictionary<string, SegmentRule> rules, Dictionary<string, IReadOnlyList<(string, int)>> branches, Dictionary<string, IReadOnlyList<PropertyFilter>> eventFilters)
    {
        void Need(string field, string what)
        {
            if (node.Element(field) is not { } v || v.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined
                || (v.ValueKind == JsonValueKind.String && string.IsNullOrWhiteSpace(v.GetString())))
                error(at, $"A {node.Type} node needs {field} ({what}).");
        }
        void Positive(string field, string what)
        {
            if (node.Long(field) is not > 0) error(at, $"A {node.Type} node needs {field} ({what}, a positive whole number).");
        }
        switch (node.Type)
        {
            case NodeKinds.Wait:
            case NodeKinds.WaitEvent:
                var field = node.Type == NodeKinds.Wait ? "duration" : "timeout";
                if (Duration(node.Text(field)) is { } span) durations[node.Id] = span;
                else error(at, $"A {node.Type} node needs {field}: a number with s, m, h or d (e.g. 1h, 30m, 7d), at most 3660d.");
                if (node.Type == NodeKinds.WaitEvent) Need("event", "the event name to wait for");
                if (node.Type == NodeKinds.WaitEvent && node.Element("where") is { } where && ReadFilters(where, at + ".where", error) is { } filters) eventFilters[node.Id] = filters;
                break;
            case NodeKinds.WaitUntil:
                var time = node.Text("time");
                var date = node.Text("date");
                if (time is null && date is null) error(at, "A wait_until node needs time (HH:mm, the next such time) or date (yyyy-MM-dd[THH:mm]), in the brand's time zone.");
                if (time is not null && !TimeOnly.TryParseExact(time, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)) error(at, "time is HH:mm.");
                if (date is not null && !DateTime.TryParseExact(date, ["yyyy-MM-dd", "yyyy-MM-ddTHH:mm"], CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
                    error(at, "date is yyyy-MM-dd or yyyy-MM-ddTHH:mm.");
                break;
            case NodeKinds.Condition:
                if (node.Element("rule") is not { } ruleJson) { error(at, "A condition node needs rule (a segment rule on the customer's profile)."); break; }
                if (SegmentRuleParser.Parse(ruleJson, out var ruleErrors) is { } rule) rules[node.Id] = rule;
                else foreach (var (path, messages) in ruleErrors) error(at, $"rule {path}: {string.Join(" ", messages)}");
                break;
            case NodeKinds.Split:
                var list = new List<(string, int)>();
                if (node.Element("branches") is { ValueKind: JsonValueKind.Array } array)
                    foreach (var b in array.EnumerateArray())
                    {
                        var name = b.ValueKind == JsonValueKind.Object && b.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                        var percent = b.ValueKind == JsonValueKind.Object && b.TryGetProperty("percent", out var p) && p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var v) ? v : -1;
                        if (string.IsNullOrWhiteSpace(name) || percent is < 0 or > 100) error(at, "Each branch has a name and a percent (0 to 100).");
                        else list.Add((name, percent));
                    }
                if (list.Count < 2 || list.Sum(x => x.Item2) != 100 || list.Select(x => x.Item1).Distinct().Count() != list.Count)
                    error(at, "A split node needs at least two branches with distinct names whose percents add up to 100.");
                else branches[node.Id] = list;
                break;
            case NodeKinds.SendMessage:
                if (node.Text("channel") is not { } channel || !Channels.Contains(channel)) error(at, $"A send_message node needs channel: one of {string.Join(", ", Channels)}.");
                Positive("templateId", "the message template");
                if (node.Text("purpose") is { } purpose && purpose is not ("marketing" or "service")) error(at, "purpose is marketing (the default) or service.");
                break;
            case NodeKinds.IssueCoupon:
                Positive("templateId", "the coupon template");
                break;
            case NodeKinds.AwardPoints:
                Positive("points", "how many points");
                break;
            case NodeKinds.AddTag:
            case NodeKinds.RemoveTag:
                Positive("tagId", "the tag");
                break;
            case NodeKinds.UpdateTrait:
                Need("trait", "the trait's name");
                if (node.Text("trait") is { Length: > 64 }) error(at, "A trait name has at most 64 characters.");
                if (node.Element("value") is null) error(at, "An update_trait node needs value (null clears the trait).");
                break;
            case NodeKinds.OpenTicket:
                Need("subject", "what the ticket is about");
                if (node.Text("subject") is { Length: > 200 } || node.Text("note") is { Length: > 2000 } || node.Text("queue") is { Length: > 64 })
                    error(at, "An open_ticket node's subject has at most 200 characters, its note 2000 and its queue 64.");
                break;
            case NodeKinds.Webhook:
                if (node.Text("url") is not { } url || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                    error(at, "A webhook node needs url (http or https).");
                if (node.Text("secret") is not { } secret || !IsBase64Secret(secret)) error(at, "A webhook node needs secret (whsec_ and base64, as webhook endpoints have) to sign its body.");
                break;
        }
    }

    private static bool IsBase64Secret(string secret)
    {
        var raw = secret.StartsWith("whsec_", StringComparison.Ordinal) ? secret["whsec_".Length..] : secret;
        var buffer = new byte[raw.Length];
        return raw.Length >= 16 && Convert.TryFromBase64String(raw, buffer, out _);
    }

    /// <summary>"90s", "30m", "1h", "7d" (at most 3660 days).</summary>
    public static TimeSpan? Duration(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length < 2) return null;
        if (!long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0) return null;
        TimeSpan? span = text[^1] switch
        {
            's' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMinutes(n),
            'h' => TimeSpan.FromHours(Math.Min(n, 1_000_000)),
            'd' => TimeSpan.FromDays(Math.Min(n, 100_000)),
            _ => null,
        };
        return span is { } s && s <= TimeSpan.FromDays(3660) ? s : null;
    }

    /// <summary>A node on a cycle that passes no wait node, or null. Waits cut the graph: a cycle through one advances in time.</summary>
    private static string? CycleWithoutWait(Dictionary<string, JourneyNode> nodes, List<JourneyEdge> edges)
    {
        var state = new Dictionary<string, int>();
        string? found = null;
        bool Visit(string id)
        {
            state[id] = 1;
            foreach (var e in edges.Where(e => e.From == id && !NodeKinds.Waits.Contains(nodes[e.To].Type)))
            {
                var s = state.GetValueOrDefault(e.To);
                if (s == 1) { found = e.To; return true; }
                if (s == 0 && Visit(e.To)) return true;
            }
            state[id] = 2;
            return false;
        }
        foreach (var id in nodes.Keys.Where(id => !NodeKinds.Waits.Contains(nodes[id].Type)))
            if (state.GetValueOrDefault(id) == 0 && Visit(id)) return found;
        return null;
    }
}
