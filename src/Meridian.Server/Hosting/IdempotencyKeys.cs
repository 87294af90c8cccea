using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Meridian.Hosting;

/// <summary>What the modules that take an <c>Idempotency-Key</c> (loyalty postings, offer claims and redemptions) share.</summary>
public static class IdempotencyKeys
{
    /// <summary>
    /// The request as the endpoint understood it (method, path, bound body), so that formatting does not matter: a replay
    /// with the same key and the same hash gets the first answer, the same key with another hash 422.
    /// </summary>
    public static string RequestHash(string method, string path, object request) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{method} {path}\n{JsonSerializer.Serialize(request, request.GetType(), MeridianJson.Options)}")));
}
