using System.Text;
using Meridian.Data;
using Meridian.Ingestion.Sources;
using Meridian.Platform.Access;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace Meridian.Ingestion.Tracking;

public sealed record WriteKeySource(long SourceId, long TenantId, long GroupId, bool Enabled);

/// <summary>
/// Resolves a source's write key (HTTP Basic user name, as the Segment SDKs send it, or <c>writeKey</c> in the body).
/// Cached briefly like API keys; rotating, disabling or deleting a source evicts it on this node at once.
/// </summary>
public sealed class WriteKeyStore(IServiceScopeFactory scopes, IMemoryCache cache)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);

    public async Task<WriteKeySource?> FindAsync(string writeKey, CancellationToken ct)
    {
        var hash = Secrets.Hash(writeKey);
        if (cache.TryGetValue("writekey:" + hash, out WriteKeySource? cached)) return cached;
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var found = await (from s in db.Set<Source>()
                           join b in db.Set<Brand>() on s.TenantId equals b.Id
                           where s.WriteKeyHash == hash
                           select new WriteKeySource(s.Id, s.TenantId, b.GroupId, s.Enabled)).SingleOrDefaultAsync(ct);
        if (found is not null) cache.Set("writekey:" + hash, found, CacheFor);
        return found;
    }

    public void Forget(string writeKeyHash) => cache.Remove("writekey:" + writeKeyHash);

    /// <summary>The write key from <c>Authorization: Basic base64(writeKey:)</c>, if the request carries one.</summary>
    public static string? FromBasicAuth(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        if (header is null || !header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
            var user = decoded.Split(':', 2)[0];
            return user.Length > 0 ? user : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
