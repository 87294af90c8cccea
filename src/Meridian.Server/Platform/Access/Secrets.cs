using System.Security.Cryptography;
using System.Text;

namespace Meridian.Platform.Access;

/// <summary>
/// API keys and write keys: 190 bits of cryptographic randomness behind a recognisable prefix
/// (<c>mdn_sk_</c> staff keys, <c>mdn_wk_</c> write keys) so that a leaked key is easy to spot in code or logs.
/// Only a SHA-256 hash is stored: the keys are random, so a slow password hash would add nothing but latency.
/// </summary>
public static class Secrets
{
    public const string StaffKeyPrefix = "mdn_sk_";
    public const string WriteKeyPrefix = "mdn_wk_";
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string NewKey(string prefix) => prefix + new string(RandomNumberGenerator.GetItems<char>(Alphabet, 32));

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>What staff see of a key after creation: enough to recognise it, never enough to use it.</summary>
    public static string Display(string key) => key.Length <= 12 ? key[..Math.Min(4, key.Length)] + "…" : key[..12] + "…";
}
