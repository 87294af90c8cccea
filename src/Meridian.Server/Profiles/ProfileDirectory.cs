using Meridian.Data;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Profiles;

/// <summary>What other modules may ask about profiles without reading the Profiles tables.</summary>
public sealed class ProfileDirectory(MeridianDb db)
{
    /// <summary>
    /// The live profile a profile id stands for now, within the caller's brands: the id itself, or the profile it was
    /// merged into; null when no such profile exists or it was erased.
    /// </summary>
    public async Task<(long ProfileId, long BrandId)?> FindLiveAsync(long profileId, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().AsNoTracking().Where(p => p.Id == profileId)
            .Select(p => new { p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt }).SingleOrDefaultAsync(ct);
        for (var hops = 0; profile?.MergedIntoId is { } next && hops < 100; hops++)
            profile = await db.Set<Profile>().AsNoTracking().Where(p => p.Id == next)
                .Select(p => new { p.Id, p.TenantId, p.MergedIntoId, p.ErasedAt }).SingleOrDefaultAsync(ct);
        return profile is null || profile.ErasedAt is not null || profile.MergedIntoId is not null ? null : (profile.Id, profile.TenantId);
    }
}
