namespace Meridian.Platform.Tenancy;

/// <summary>A row that belongs to one brand (tenant). The database context filters every query on it.</summary>
public interface ITenantOwned
{
    long TenantId { get; }
}

/// <summary>
/// The brands the current request (or background job) may see, and the brand it acts on.
/// Authentication fills it per request; background work declares itself <see cref="RunAsSystem"/> explicitly.
/// </summary>
public sealed class TenantScope
{
    public bool Unrestricted { get; private set; }
    public long GroupId { get; private set; }
    public long[] BrandIds { get; private set; } = [];
    /// <summary>The brand the request acts on; null for a group-level key that named no brand.</summary>
    public long? ActingBrandId { get; private set; }

    /// <summary>The brand a write goes to. Endpoints that write are guarded by <c>RequireBrand()</c>, so this is set.</summary>
    public long Brand => ActingBrandId ?? throw new InvalidOperationException("No acting brand: the endpoint is missing RequireBrand().");

    public void RunAsSystem() => Unrestricted = true;

    public void Restrict(long groupId, long[] brandIds, long? actingBrandId)
    {
        Unrestricted = false;
        GroupId = groupId;
        BrandIds = brandIds;
        ActingBrandId = actingBrandId;
    }

    /// <summary>Narrow a group-wide read to the acting brand when the caller named one.</summary>
    public long[] ReadableBrandIds => ActingBrandId is { } b ? [b] : BrandIds;
}
