using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Meridian.Messaging.Templates;

/// <summary>
/// The template language, deliberately tiny so that a template can never run code or reach anything but the values it is
/// given: literal text and <c>{{ path }}</c> or <c>{{ path | default: "fallback" }}</c>. A path is dot-separated names
/// (<c>traits.city</c>, <c>event.order.total</c>, <c>event.items.0.sku</c>); the values are looked up in data, never by
/// reflection. <c>{{{{</c> writes a literal <c>{{</c>.
/// </summary>
public sealed class TemplateText
{
    public abstract record Part;
    public sealed record Literal(string Text) : Part;
    public sealed record Variable(string Path, string? Default) : Part;

    public IReadOnlyList<Part> Parts { get; }

    private TemplateText(List<Part> parts) => Parts = parts;

    public IEnumerable<Variable> Variables => Parts.OfType<Variable>();

    /// <summary>The parsed template, or the reason it cannot be parsed (with the position).</summary>
    public static (TemplateText? Template, string? Error) Parse(string text)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (string.CompareOrdinal(text, i, "{{{{", 0, 4) == 0)
            {
                literal.Append("{{");
                i += 4;
                continue;
            }
            if (string.CompareOrdinal(text, i, "{{", 0, 2) != 0)
            {
                literal.Append(text[i++]);
                continue;
            }
            var end = text.IndexOf("}}", i + 2, StringComparison.Ordinal);
            if (end < 0) return (null, $"'{{{{' at position {i} is never closed with '}}}}'.");
            var (variable, error) = ParseVariable(text[(i + 2)..end].Trim());
            if (variable is null) return (null, $"'{{{{{text[(i + 2)..end]}}}}}' at position {i}: {error}");
            if (literal.Length > 0) parts.Add(new Literal(literal.ToString()));
            literal.Clear();
            parts.Add(variable);
            i = end + 2;
        }
        if (literal.Length > 0) parts.Add(new Literal(literal.ToString()));
        return (new TemplateText(parts), null);
    }

    private static (Variable?, string?) ParseVariable(string inner)
    {
        var pipe = inner.IndexOf('|');
        var path = (pipe < 0 ? inner : inner[..pipe]).Trim();
        if (!IsPath(path)) return (null, "a variable is a dot-separated path of names, e.g. traits.city.");
        if (pipe < 0) return (new Variable(path, null), null);
        var filter = inner[(pipe + 1)..].Trim();
        const string name = "default:";
        if (!filter.StartsWith(name, StringComparison.Ordinal)) return (null, "the only filter is default: \"text\".");
        var quoted = filter[name.Length..].Trim();
        if (quoted.Length < 2 || quoted[0] != '"' || quoted[^1] != '"' || quoted[1..^1].Contains('"'))
            return (null, "the default is one text in double quotes, e.g. default: \"friend\".");
        var fallback = quoted[1..^1];
        if (fallback.Trim().Length == 0) return (null, "the default must not be blank.");
        return (new Variable(path, fallback), null);
    }

    private static bool IsPath(string path) =>
        path.Length is > 0 and <= 200 && path.Split('.').All(s => s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'));

    /// <summary>
    /// The text with every variable replaced, or null and the variables that had neither a value nor a default: a message
    /// is never sent with a blank where a value should be.
    /// </summary>
    public (string? Text, List<string> Missing) Render(Func<string, string?> lookup)
    {
        var text = new StringBuilder();
        var missing = new List<string>();
        foreach (var part in Parts)
        {
            switch (part)
            {
                case Literal l:
                    text.Append(l.Text);
                    break;
                case Variable v:
                    var value = lookup(v.Path);
                    if (string.IsNullOrWhiteSpace(value)) value = v.Default;
                    if (value is null) missing.Add(v.Path);
                    else text.Append(value);
                    break;
            }
        }
        return missing.Count > 0 ? (null, missing.Distinct().ToList()) : (text.ToString(), missing);
    }

    /// <summary>A JSON value as it reads in a message: text as is, numbers and booleans as written, lists joined; objects and nulls have no text.</summary>
    public static string? Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Array => string.Join(", ", value.EnumerateArray().Select(Text).Where(t => !string.IsNullOrWhiteSpace(t))) is { Length: > 0 } joined ? joined : null,
        _ => null,
    };

    /// <summary>Follows a dot path through JSON objects (and arrays by index).</summary>
    public static JsonElement? At(JsonElement root, IEnumerable<string> path)
    {
        var current = root;
        foreach (var segment in path)
        {
            if (current.ValueKind == JsonValueKind.Object && current.TryGetProperty(segment, out var next)) current = next;
            else if (current.ValueKind == JsonValueKind.Array && int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                     && index < current.GetArrayLength()) current = current[index];
            else return null;
        }
        return current;
    }
}
