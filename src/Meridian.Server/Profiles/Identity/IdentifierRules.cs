using Meridian.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace Meridian.Profiles.Identity;

/// <summary>
/// A brand's identifier types and default phone region, which every lookup needs to normalise what it is asked:
/// cached briefly per node (as API keys are), and dropped on this node at once when the brand replaces its types.
/// </summary>
public sealed class IdentifierRules(IMemoryCache cache)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);

    public async Task<(IReadOnlyList<IdentifierType> Types, string Region)> ForAsync(MeridianDb db, long brandId, CancellationToken ct)
    {
        if (cache.TryGetValue(Key(brandId), out (IReadOnlyList<IdentifierType>, string) cached)) return cached;
        var configured = await db.Set<IdentifierType>().AsNoTracking().Where(t => t.TenantId == brandId).ToListAsync(ct);
        var region = await db.Set<Brand>().Where(b => b.Id == brandId).Select(b => b.DefaultPhoneRegion).SingleAsync(ct);
        (IReadOnlyList<IdentifierType>, string) rules = (DefaultIdentifierTypes.Effective(configured, brandId), region);
        cache.Set(Key(brandId), rules, CacheFor);
        return rules;
    }

    public void Forget(long brandId) => cache.Remove(Key(brandId));

    private static string Key(long brandId) => "identifier-rules:" + brandId;
}
