using System.Collections.Concurrent;
using Meridian.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Platform.Tenancy;

/// <summary>
/// The group a brand belongs to. Brands never move between groups, so each brand is looked up once per process; the
/// lookup ignores the caller's scope (a brand's group is not tenant data, and system work has no scope).
/// </summary>
public static class BrandGroups
{
    private static readonly ConcurrentDictionary<long, long> GroupOfBrand = new();

    /// <summary>The brand's group; throws when the brand does not exist.</summary>
    public static async ValueTask<long> GroupOfAsync(this MeridianDb db, long brandId, CancellationToken ct)
    {
        if (GroupOfBrand.TryGetValue(brandId, out var groupId)) return groupId;
        groupId = await db.Set<Brand>().AsNoTracking().Where(b => b.Id == brandId).Select(b => b.GroupId).SingleAsync(ct);
        return GroupOfBrand[brandId] = groupId;
    }
}
