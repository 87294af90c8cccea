using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Profiles.Identity;

/// <summary>
/// One kind of identifier a brand maps to profiles. <see cref="Priority"/> decides which profile an event belongs to
/// when its identifiers disagree (1 is strongest); <see cref="MaxPerProfile"/> stops a merge that would give one
/// customer two user ids (or a family's shared device becoming one person); <see cref="Paths"/> say where in a
/// message the value is read, optionally only when a condition holds (<c>userId?context.channel=pos</c>).
/// A type that does not <see cref="Links">link</see> (a device a family shares) follows the profile the event's other
/// identifiers decide: it is attached to it, but never decides a profile, pulls new identifiers into its own, or merges two.
/// </summary>
public sealed class IdentifierType : ITenantOwned
{
    public long TenantId { get; init; }
    public required string Name { get; init; }
    public int Priority { get; set; }
    public int MaxPerProfile { get; set; }
    public string Normalizer { get; set; } = Normalizers.Trim;
    public List<string> Paths { get; set; } = [];
    public List<string> BlockedValues { get; set; } = [];
    public bool Links { get; set; } = true;
}

internal sealed class IdentifierTypeMap : IEntityTypeConfiguration<IdentifierType>
{
    public void Configure(EntityTypeBuilder<IdentifierType> b)
    {
        b.ToTable("identifier_types");
        b.HasKey(x => new { x.TenantId, x.Name });
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.Property(x => x.Name).HasMaxLength(64);
        b.Property(x => x.Normalizer).HasMaxLength(16);
    }
}

/// <summary>The identifier types every brand starts with; a brand's own configuration replaces them.</summary>
public static class DefaultIdentifierTypes
{
    public static readonly string[] Blocked = ["null", "undefined", "none", "unknown", "anonymous", "n/a", "0", "-1", "0000000", "00000000000", "test"];

    /// <summary>The brand's types, strongest first: those it configured, else the defaults.</summary>
    public static List<IdentifierType> Effective(IReadOnlyList<IdentifierType> configured, long tenantId) =>
        (configured.Count > 0 ? configured : For(tenantId)).OrderBy(t => t.Priority).ToList();

    public static IReadOnlyList<IdentifierType> For(long tenantId) =>
    [
        New(tenantId, "user_id", 1, 1, Normalizers.Trim, "userId"),
        New(tenantId, "member_no", 2, 1, Normalizers.Trim, "traits.member_no", "context.traits.member_no"),
        New(tenantId, "unionid", 3, 1, Normalizers.Trim, "traits.unionid", "context.traits.unionid", "context.wechat.unionid"),
        New(tenantId, "phone", 4, 3, Normalizers.Phone, "traits.phone", "context.traits.phone"),
        New(tenantId, "email", 5, 3, Normalizers.Email, "traits.email", "context.traits.email"),
        New(tenantId, "openid", 6, 5, Normalizers.Trim, "traits.openid", "context.traits.openid", "context.wechat.openid"),
        // Families share a tablet: the device tells nothing about who is holding it, so it never joins two people's activity.
        Sharable(New(tenantId, "device_id", 7, 5, Normalizers.Trim, "context.device.id")),
        New(tenantId, "anonymous_id", 8, 50, Normalizers.Trim, "anonymousId"),
    ];

    private static IdentifierType Sharable(IdentifierType type)
    {
        type.Links = false;
        return type;
    }

    private static IdentifierType New(long tenantId, string name, int priority, int max, string normalizer, params string[] paths) => new()
    {
        TenantId = tenantId, Name = name, Priority = priority, MaxPerProfile = max, Normalizer = normalizer, Paths = [.. paths], BlockedValues = [.. Blocked],
    };
}
