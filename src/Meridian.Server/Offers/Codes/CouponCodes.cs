using System.Security.Cryptography;

namespace Meridian.Offers.Codes;

/// <summary>
/// Coupon codes: 12 characters of a 32-letter alphabet without 0/O and 1/I (read aloud or typed from a receipt without
/// doubt), drawn from the operating system's cryptographic generator: 60 bits, so a million codes of one brand leave
/// an attacker about one chance in a million million per guess. Shown in groups of four (<c>ABCD-EFGH-JKLM</c>); any
/// case, spaces and dashes are accepted back.
/// </summary>
public static class CouponCodes
{
    public const string Alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    public const int Length = 12;

    public static string New()
    {
        Span<byte> random = stackalloc byte[Length];
        RandomNumberGenerator.Fill(random);
        Span<char> code = stackalloc char[Length];
        // 32 letters: the low five bits of a uniform byte are uniform, so no letter is likelier than another.
        for (var i = 0; i < Length; i++) code[i] = Alphabet[random[i] & 31];
        return new string(code);
    }

    /// <summary>The code as stored: upper case, without spaces or dashes. Null when it cannot be a code at all.</summary>
    public static string? Normalize(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        Span<char> buffer = stackalloc char[Math.Min(text.Length, 128)];
        var n = 0;
        foreach (var c in text)
        {
            if (c is ' ' or '-' or '\t') continue;
            var u = char.ToUpperInvariant(c);
            if (!char.IsAsciiLetterOrDigit(u) || n == buffer.Length) return null;
            buffer[n++] = u;
        }
        return n is >= 4 and <= 64 ? new string(buffer[..n]) : null;
    }

    public static string Display(string code) => code.Length == Length ? $"{code[..4]}-{code[4..8]}-{code[8..]}" : code;
}
