namespace Meridian.Profiles.Identity;

/// <summary>
/// Identifiers are compared only after normalisation, so that <c>+86 138 1234 5678</c> and <c>13812345678</c> are
/// one phone, and <c> Zhang.Wei@Example.COM </c> and <c>zhang.wei@example.com</c> one email.
/// </summary>
public static class Normalizers
{
    public const string Phone = "phone";
    public const string Email = "email";
    public const string Trim = "trim";

    /// <summary>Null when the value cannot be an identifier of that kind (counted as a normalisation failure).</summary>
    public static string? Normalize(string normalizer, string raw, string defaultRegion) => normalizer switch
    {
        Phone => PhoneToE164(raw, defaultRegion),
        Email => EmailAddress(raw),
        _ => raw.Trim() is { Length: > 0 and <= 500 } trimmed ? trimmed : null,
    };

    public static string? EmailAddress(string raw)
    {
        var email = raw.Trim().ToLowerInvariant();
        var at = email.IndexOf('@');
        return at > 0 && at == email.LastIndexOf('@') && email.IndexOf('.', at) > at + 1 && !email.EndsWith('.') && email.Length <= 320
               && !email.Any(char.IsWhiteSpace)
            ? email
            : null;
    }

    private static readonly Dictionary<string, (string Code, int[] NationalLengths)> Regions = new()
    {
        ["CN"] = ("86", [10, 11]),
        ["HK"] = ("852", [8]),
        ["MO"] = ("853", [8]),
        ["TW"] = ("886", [9]),
        ["SG"] = ("65", [8]),
        ["US"] = ("1", [10]),
        ["GB"] = ("44", [10]),
        ["JP"] = ("81", [10]),
    };

    /// <summary>
    /// E.164 (<c>+8613812345678</c>). Accepts the ways people write numbers: spaces, dashes, dots and brackets,
    /// <c>+</c>/<c>00</c> international prefixes, the country code without a plus, and a national trunk 0.
    /// Numbers without a country code take the brand's default region.
    /// </summary>
    public static string? PhoneToE164(string raw, string defaultRegion)
    {
        var text = raw.Trim();
        if (text.Length == 0 || text.Any(c => !(char.IsAsciiDigit(c) || " -.()+\u00A0".Contains(c)))) return null;
        var digits = new string(text.Where(char.IsAsciiDigit).ToArray());
        var region = Regions.GetValueOrDefault(defaultRegion.ToUpperInvariant(), Regions["CN"]);
        var e164 =
            text.Contains('+') ? digits
            : digits.StartsWith("00", StringComparison.Ordinal) ? digits[2..]
            : digits.StartsWith(region.Code, StringComparison.Ordinal) && region.NationalLengths.Contains(digits.Length - region.Code.Length) ? digits
            : region.Code + digits.TrimStart('0');
        return IsPlausible(e164) ? "+" + e164 : null;
    }

    private static bool IsPlausible(string digits)
    {
        if (digits.Length is < 8 or > 15) return false;
        var known = Regions.Values.Where(r => digits.StartsWith(r.Code, StringComparison.Ordinal)).MaxBy(r => r.Code.Length);
        if (known.Code is null) return true; // a country we hold no rules for: length only
        var national = digits[known.Code.Length..];
        // Mainland China: 11-digit mobiles start with 1; landlines (area code + number) are 10 or 11 digits, and their
        // area codes start with 2-9, or are Beijing's 10.
        return known.Code == "86"
            ? (national.Length == 11 && national[0] == '1' && !national.StartsWith("10", StringComparison.Ordinal))
              || (national.Length is 10 or 11 && (national[0] is >= '2' and <= '9' || national.StartsWith("10", StringComparison.Ordinal)))
            : known.NationalLengths.Contains(national.Length);
    }
}
