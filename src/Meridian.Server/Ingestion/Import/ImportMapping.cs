namespace Meridian.Ingestion.Import;

/// <summary>What a CSV column becomes in the Segment message built from its row.</summary>
internal enum FieldRole
{
    Ignore,
    UserId,
    AnonymousId,
    /// <summary>The brand the row belongs to (exports often hold several): rows of another brand are skipped.</summary>
    Brand,
    Timestamp,
    OrderId,
    Total,
    Currency,
    Products,
    Status,
    /// <summary><c>traits.{name}</c> of an identify.</summary>
    Trait,
    /// <summary><c>context.traits.{name}</c> of a track: who the shopper is, for identity resolution.</summary>
    ContextTrait,
    /// <summary><c>properties.{name}</c> of a track.</summary>
    Property,
}

internal enum FieldCheck
{
    None,
    Date,
    DateTime,
}

internal sealed record ColumnTarget(FieldRole Role, string? Name = null, FieldCheck Check = FieldCheck.None);

/// <summary>
/// The fields a CSV column can be mapped to, per kind of import, and the default mapping: the demo data's store exports
/// (<c>customers-pos.csv</c>, <c>orders-pos.csv</c>) and any column already named after a field need no mapping. A column
/// left unmapped is kept, under its own header, as a trait (customers) or a property (orders): an import loses nothing.
/// </summary>
internal static class ImportFields
{
    public const string Ignore = "ignore";

    private static readonly Dictionary<string, ColumnTarget> Common = new()
    {
        ["user_id"] = new(FieldRole.UserId),
        ["anonymous_id"] = new(FieldRole.AnonymousId),
        ["brand"] = new(FieldRole.Brand),
        ["timestamp"] = new(FieldRole.Timestamp),
        [Ignore] = new(FieldRole.Ignore),
    };

    // Trait names as the Segment Spec reserves them (camelCase), so identify messages read like an SDK's.
    private static readonly Dictionary<string, ColumnTarget> CustomerFields = new(Common)
    {
        ["name"] = new(FieldRole.Trait, "name"),
        ["first_name"] = new(FieldRole.Trait, "firstName"),
        ["last_name"] = new(FieldRole.Trait, "lastName"),
        ["phone"] = new(FieldRole.Trait, "phone"),
        ["email"] = new(FieldRole.Trait, "email"),
        ["gender"] = new(FieldRole.Trait, "gender"),
        ["birthday"] = new(FieldRole.Trait, "birthday", FieldCheck.Date),
        ["created_at"] = new(FieldRole.Trait, "createdAt", FieldCheck.DateTime),
    };

    // Property names as in the Segment e-commerce spec's Order Completed, the shape the tracking API's orders have.
    private static readonly Dictionary<string, ColumnTarget> OrderFields = new(Common)
    {
        ["order_id"] = new(FieldRole.OrderId),
        ["total"] = new(FieldRole.Total),
        ["currency"] = new(FieldRole.Currency),
        ["products"] = new(FieldRole.Products),
        ["status"] = new(FieldRole.Status),
        ["store"] = new(FieldRole.Property, "store"),
        ["phone"] = new(FieldRole.ContextTrait, "phone"),
        ["email"] = new(FieldRole.ContextTrait, "email"),
    };

    private static readonly Dictionary<string, string> CustomerDefaults = new(StringComparer.OrdinalIgnoreCase)
    {
        ["member_no"] = "user_id",
        ["joined_at"] = "created_at",
    };

    private static readonly Dictionary<string, string> OrderDefaults = new(StringComparer.OrdinalIgnoreCase)
    {
        ["member_no"] = "user_id",
        ["total_fen"] = "total",
        ["completed_at"] = "timestamp",
        ["items"] = "products",
    };

    public static IReadOnlyCollection<string> Names(ImportKind kind) => kind == ImportKind.Customers
        ? [.. CustomerFields.Keys, "traits.<name>"]
        : [.. OrderFields.Keys, "properties.<name>", "traits.<name>"];

    public static bool TryParse(ImportKind kind, string field, out ColumnTarget target)
    {
        var known = kind == ImportKind.Customers ? CustomerFields : OrderFields;
        if (known.TryGetValue(field.ToLowerInvariant(), out target!)) return true;
        var (prefix, name) = field.IndexOf('.') is var dot and > 0 ? (field[..dot], field[(dot + 1)..]) : ("", "");
        target = (kind, prefix) switch
        {
            (_, _) when name.Length is 0 or > 100 => null!,
            (ImportKind.Customers, "traits") => new ColumnTarget(FieldRole.Trait, name),
            (ImportKind.Orders, "properties") => new ColumnTarget(FieldRole.Property, name),
            (ImportKind.Orders, "traits") => new ColumnTarget(FieldRole.ContextTrait, name),
            _ => null!,
        };
        return target is not null;
    }

    /// <summary>The field of a column nobody mapped: a default for the header, the field it is named after, or kept as is.</summary>
    public static string Default(ImportKind kind, string header)
    {
        var defaults = kind == ImportKind.Customers ? CustomerDefaults : OrderDefaults;
        if (defaults.TryGetValue(header, out var field)) return field;
        var known = kind == ImportKind.Customers ? CustomerFields : OrderFields;
        var lower = header.ToLowerInvariant();
        if (known.ContainsKey(lower)) return lower;
        if (header.Length == 0) return Ignore;
        return (kind == ImportKind.Customers ? "traits." : "properties.") + header;
    }
}

/// <summary>How each column of a CSV file becomes part of a message: built from the header and the mapping, checked once.</summary>
internal sealed class CsvPlan
{
    private CsvPlan(ImportKind kind, string[] header, ColumnTarget[] columns, Dictionary<string, string> mapping)
    {
        Kind = kind;
        Header = header;
        Columns = columns;
        Mapping = mapping;
    }

    public ImportKind Kind { get; }
    public string[] Header { get; }
    public ColumnTarget[] Columns { get; }
    /// <summary>Every column of the header with its field: what the import will do, shown to the client and stored.</summary>
    public Dictionary<string, string> Mapping { get; }

    /// <summary>The column of a role that can appear once, or -1.</summary>
    public int IndexOf(FieldRole role) => Array.FindIndex(Columns, c => c.Role == role);

    /// <summary>
    /// Builds the plan, or says what is wrong with the header or the mapping: <paramref name="mapping"/> gives fields
    /// for some headers (case-insensitive), the rest get <see cref="ImportFields.Default"/>.
    /// </summary>
    public static (CsvPlan? Plan, string? Error) Build(ImportKind kind, string[] header, IReadOnlyDictionary<string, string> mapping)
    {
        var names = header.Select(h => h.Trim()).ToArray();
        var twice = names.Where(n => n.Length > 0).GroupBy(n => n, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) return (null, $"The header names the column '{twice.Key}' twice.");
        var byHeader = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (column, field) in mapping)
        {
            if (!names.Contains(column.Trim(), StringComparer.OrdinalIgnoreCase))
                return (null, $"The mapping names the column '{column}', which is not in the file's header ({string.Join(", ", names)}).");
            byHeader[column.Trim()] = field.Trim();
        }

        var columns = new ColumnTarget[names.Length];
        var effective = new Dictionary<string, string>();
        var written = new HashSet<(FieldRole, string)>();
        for (var i = 0; i < names.Length; i++)
        {
            var field = byHeader.TryGetValue(names[i], out var given) ? given : ImportFields.Default(kind, names[i]);
            if (!ImportFields.TryParse(kind, field, out var target))
                return (null, $"'{field}' (for the column '{names[i]}') is not a field of a {kind.ToString().ToLowerInvariant()} import; use one of {string.Join(", ", ImportFields.Names(kind))}.");
            if (target.Role != FieldRole.Ignore && !written.Add((target.Role, target.Name ?? "")))
            {
                var other = names[Array.FindIndex(columns, c => c is not null && c.Role == target.Role && c.Name == target.Name)];
                return (null, $"The columns '{other}' and '{names[i]}' both map to '{field}'.");
            }
            columns[i] = target;
            if (names[i].Length > 0) effective[names[i]] = field;
        }

        var plan = new CsvPlan(kind, names, columns, effective);
        var hasIdentity = plan.IndexOf(FieldRole.UserId) >= 0 || plan.IndexOf(FieldRole.AnonymousId) >= 0;
        if (kind == ImportKind.Customers && !hasIdentity)
            return (null, "No column gives the customer's identity: map one to user_id (e.g. member_no=user_id) or anonymous_id.");
        if (kind == ImportKind.Orders && plan.IndexOf(FieldRole.OrderId) < 0)
            return (null, "No column gives the order id: map one to order_id.");
        if (kind == ImportKind.Orders && !hasIdentity && !columns.Any(c => c.Role == FieldRole.ContextTrait && c.Name is "phone" or "email"))
            return (null, "No column names the shopper: map one to user_id, anonymous_id, phone or email.");
        return (plan, null);
    }

    /// <summary>Reads <c>header=field</c> pairs, as the CLI's <c>--map</c> and the API's <c>map</c> parameter give them.</summary>
    public static (Dictionary<string, string> Mapping, string? Error) ParsePairs(IEnumerable<string> pairs)
    {
        var mapping = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in pairs)
        {
            var at = pair.LastIndexOf('=');
            if (at <= 0 || at == pair.Length - 1) return (mapping, $"'{pair}' is not header=field (e.g. member_no=user_id).");
            var header = pair[..at].Trim();
            if (!mapping.TryAdd(header, pair[(at + 1)..].Trim())) return (mapping, $"The column '{header}' is mapped twice.");
        }
        return (mapping, null);
    }
}
