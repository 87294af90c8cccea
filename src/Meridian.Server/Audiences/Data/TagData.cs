using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Audiences.Data;

/// <summary>A brand's folder of tags ("Interests", "Service", "Campaign 2026").</summary>
public sealed class TagGroup : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>
/// A label on customers. Manual tags are set and removed by staff and front ends (one by one or from a list of
/// identifiers); a rule tag (<see cref="SegmentId"/> set) is carried by exactly the members of a segment, set and
/// removed by segment maintenance as they enter and leave — a computed tag is a rule tag whose rule reads a score
/// (<c>rfm_segment</c>, <c>value_score</c>), evaluated again after each scoring run.
/// </summary>
public sealed class Tag : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long? GroupId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    /// <summary>For a rule tag: the segment whose members carry it. Such a tag cannot be set or removed by hand.</summary>
    public long? SegmentId { get; init; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>A tag a profile carries now, and who or what set it when.</summary>
public sealed class ProfileTag : ITenantOwned
{
    public long TagId { get; init; }
    public long ProfileId { get; init; }
    public long TenantId { get; init; }
    public DateTime SetAt { get; init; }
    /// <summary><c>key:5</c> (an API key or the staff member behind it), later <c>rule:3</c> or <c>journey:7</c>.</summary>
    public required string SetBy { get; init; }
}

/// <summary>The history of a profile's tags: every time one was set or removed, by whom, and why if given.</summary>
public sealed class TagChange : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; init; }
    public long TagId { get; init; }
    public bool Added { get; init; }
    public required string By { get; init; }
    public string? Reason { get; init; }
    public DateTime At { get; init; }
}

internal sealed class TagMaps : IEntityTypeConfiguration<TagGroup>, IEntityTypeConfiguration<Tag>, IEntityTypeConfiguration<ProfileTag>, IEntityTypeConfiguration<TagChange>
{
    public void Configure(EntityTypeBuilder<TagGroup> b)
    {
        b.ToTable("tag_groups");
        b.Property(x => x.Name).HasMaxLength(100);
        b.Property(x => x.Description).HasMaxLength(500);
        b.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
    }

    public void Configure(EntityTypeBuilder<Tag> b)
    {
        b.ToTable("tags");
        b.Property(x => x.Name).HasMaxLength(100);
        b.Property(x => x.Description).HasMaxLength(500);
        b.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        b.HasOne<TagGroup>().WithMany().HasForeignKey(x => x.GroupId).OnDelete(DeleteBehavior.Restrict);
        b.HasOne<Segment>().WithMany().HasForeignKey(x => x.SegmentId).OnDelete(DeleteBehavior.Restrict);
    }

    public void Configure(EntityTypeBuilder<ProfileTag> b)
    {
        b.ToTable("profile_tags");
        b.HasKey(x => new { x.TagId, x.ProfileId });
        b.HasIndex(x => x.ProfileId);
        b.HasOne<Tag>().WithMany().HasForeignKey(x => x.TagId).OnDelete(DeleteBehavior.Cascade);
        b.Property(x => x.SetBy).HasMaxLength(64);
    }

    public void Configure(EntityTypeBuilder<TagChange> b)
    {
        b.ToTable("tag_changes");
        b.HasIndex(x => new { x.ProfileId, x.Id });
        b.HasIndex(x => new { x.TagId, x.Id });
        b.HasOne<Tag>().WithMany().HasForeignKey(x => x.TagId).OnDelete(DeleteBehavior.Cascade);
        b.Property(x => x.By).HasMaxLength(64);
        b.Property(x => x.Reason).HasMaxLength(500);
    }
}
