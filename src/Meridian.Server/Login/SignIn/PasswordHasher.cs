using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Meridian.Login.SignIn;

/// <summary>
/// PBKDF2-HMAC-SHA512 with a random 16-byte salt per password; the stored form names its iterations
/// (<c>pbkdf2-sha512$iterations$salt$hash</c>) so that they can be raised later without breaking old hashes.
/// </summary>
public sealed class PasswordHasher(IOptions<LoginOptions> options)
{
    public const int MinLength = 8;
    public const int MaxLength = 128;

    /// <summary>Among the most common passwords in public breach corpora: refused whatever their length.</summary>
    private static readonly HashSet<string> Common = new(StringComparer.OrdinalIgnoreCase)
    {
        "password", "password1", "password123", "12345678", "123456789", "1234567890", "qwertyuiop", "qwerty123", "iloveyou",
        "11111111", "00000000", "88888888", "66666666", "abc12345", "abcd1234", "1qaz2wsx", "a1234567", "aa123456", "woaini1314",
        "5201314520", "letmein1", "welcome1", "admin123", "passw0rd", "sunshine", "football", "baseball", "princess", "superman",
    };

    /// <summary>Why a new password is refused (null: acceptable). Length, not composition rules (NIST SP 800-63B).</summary>
    public static string? Weakness(string password) =>
        password.Length < MinLength ? $"Use at least {MinLength} characters."
        : password.Length > MaxLength ? $"Use at most {MaxLength} characters."
        : Common.Contains(password) ? "That password is too common; choose another."
        : password.Distinct().Count() < 3 ? "That password is too easy to guess; choose another."
        : null;

    public string Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var iterations = options.Value.PasswordIterations;
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA512, 32);
        return $"pbkdf2-sha512${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    /// <summary>Checks a password; with no stored hash (unknown account) it still does the work, so timing tells nothing.</summary>
    public bool Verify(string password, string? stored)
    {
        var parts = stored?.Split('$');
        if (parts is not ["pbkdf2-sha512", var iterationText, var saltText, var hashText] || !int.TryParse(iterationText, out var iterations))
        {
            Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), new byte[16], options.Value.PasswordIterations, HashAlgorithmName.SHA512, 32);
            return false;
        }
        var expected = Convert.FromBase64String(hashText);
        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), Convert.FromBase64String(saltText), iterations, HashAlgorithmName.SHA512, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }
}
