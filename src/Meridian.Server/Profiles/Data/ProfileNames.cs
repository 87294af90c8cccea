using System.Text;
using System.Text.Json;

namespace Meridian.Profiles.Data;

/// <summary>
/// A customer's name folded for prefix search: full-width forms made plain (ｚｈａｎｇ is zhang, as Chinese input methods
/// type it; the host runs without ICU, so this is done here rather than by Unicode normalisation), trimmed, inner spaces
/// collapsed, lower-cased. Stored in <c>profiles.search_name</c> and compared by code point on both databases (PostgreSQL gives the
/// column the "C" collation), so a prefix is a range of the index: <c>search_name &gt;= '张' AND search_name &lt; '张'+1</c>.
/// The name is taken as written: 张伟 is found by 张 (family name first); John Smith by "john", not by "smith".
/// </summary>
public static class ProfileNames
{
    public const int MaxLength = 200;

    /// <summary>The search key of a profile's traits JSON (<c>{"name":{"v":"张伟",...}}</c>), or null without a name.</summary>
    public static string? SearchKey(string traitsJson)
    {
        if (traitsJson.Length <= 2) return null;
        using var traits = JsonDocument.Parse(traitsJson);
        var name = Text(traits.RootElement, "name");
        if (name is null)
        {
            var first = Text(traits.RootElement, "first_name") ?? Text(traits.RootElement, "firstName");
            var last = Text(traits.RootElement, "last_name") ?? Text(traits.RootElement, "lastName");
            // Chinese, Japanese and Korean names are written family name first, without a space.
            name = last is not null && last.Any(IsCjk) ? last + first : $"{first} {last}";
        }
        return Fold(name);
    }

    /// <summary>The folded form of a name or of a typed prefix; null when nothing searchable is left.</summary>
    public static string? Fold(string text)
    {
        var plain = string.Create(text.Length, text, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
                span[i] = source[i] switch { '\u3000' => ' ', >= '\uFF01' and <= '\uFF5E' and var c => (char)(c - 0xFEE0), var c => c };
        });
        var folded = string.Join(' ', plain.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToLowerInvariant();
        if (folded.Length == 0) return null;
        return folded.Length <= MaxLength ? folded : folded[..(char.IsHighSurrogate(folded[MaxLength - 1]) ? MaxLength - 1 : MaxLength)];
    }

    /// <summary>
    /// The least string above every string that starts with <paramref name="prefix"/>: the prefix with its last code
    /// point incremented (code point order is UTF-8 byte order, the order of both databases' index on the column).
    /// </summary>
    public static string UpperBound(string prefix)
    {
        var last = Rune.GetRuneAt(prefix, prefix.Length - (char.IsLowSurrogate(prefix[^1]) ? 2 : 1));
        var next = last.Value + 1 == 0xD800 ? 0xE000 : last.Value + 1;
        return prefix[..^last.Utf16SequenceLength] + (next > 0x10FFFF ? "\U0010FFFF" : new Rune(next).ToString());
    }

    private static string? Text(JsonElement traits, string trait) =>
        traits.TryGetProperty(trait, out var t) && t.ValueKind == JsonValueKind.Object && t.TryGetProperty("v", out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : null;

    private static bool IsCjk(char c) => c is >= '\u3040' and <= '\u30FF' or >= '\u3400' and <= '\u9FFF' or >= '\uAC00' and <= '\uD7AF';
}
