using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Audiences.Data;

/// <summary>
/// A saved audience: its rule (JSON, see <see cref="Segments.SegmentRule"/>) and its members, materialised in
/// <see cref="SegmentMember"/> and kept current by <see cref="Segments.SegmentMaintenance"/>.
/// </summary>
public sealed class Segment : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public required string Rule { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    /// <summary><see cref="SegmentStatus.Evaluating"/> from a save until the whole brand has been evaluated against the rule, then <see cref="SegmentStatus.Ready"/>.</summary>
    public SegmentStatus Status { get; set; }
    /// <summary>Bumped by every change of the rule, so that a full evaluation of an older rule does not mark the newer one ready.</summary>
    public int RuleVersion { get; set; }
    public DateTime? EvaluatedAt { get; set; }
}

public enum SegmentStatus
{
    Evaluating,
    Ready,
}

/// <summary>A profile in a segment now, since when.</summary>
public sealed class SegmentMember : ITenantOwned
{
    public long SegmentId { get; init; }
    public long ProfileId { get; init; }
    public long TenantId { get; init; }
    public DateTime EnteredAt { get; init; }
}

/// <summary>
/// When a profile's answer to a segment's rule can next change by time alone (an event leaving a window, a date
/// falling out of "within the last N days"): the profile is evaluated again then.
/// </summary>
public sealed class SegmentRecheck
{
    public long SegmentId { get; init; }
    public long ProfileId { get; init; }
    public DateTime DueAt { get; set; }
}

/// <summary>A profile to evaluate again against every segment of its brand (its tags changed, or a segment it may depend on did).</summary>
public sealed class SegmentDirtyProfile
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; init; }
}

/// <summary>A background job of the module, claimed with a lease so that one node runs it at a time, with its place in the event log.</summary>
public sealed class AudienceJob
{
    public required string Name { get; init; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public long PositionTx { get; set; }
    public long PositionId { get; set; }
}

internal sealed class SegmentMap : IEntityTypeConfiguration<Segment>, IEntityTypeConfiguration<SegmentMember>, IEntityTypeConfiguration<SegmentRecheck>,
    IEntityTypeConfiguration<SegmentDirtyProfile>, IEntityTypeConfiguration<AudienceJob>
{
    public void Configure(EntityTypeBuilder<Segment> b)
    {
        b.ToTable("segments");
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.Description).HasMaxLength(1000);
        b.Property(x => x.Status).HasConversion<string>().HasMaxLength(20);
        b.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
    }

    public void Configure(EntityTypeBuilder<SegmentMember> b)
    {
        b.ToTable("segment_members");
        b.HasKey(x => new { x.SegmentId, x.ProfileId });
        b.HasIndex(x => x.ProfileId);
        b.HasOne<Segment>().WithMany().HasForeignKey(x => x.SegmentId).OnDelete(DeleteBehavior.Cascade);
    }

    public void Configure(EntityTypeBuilder<SegmentRecheck> b)
    {
        b.ToTable("segment_rechecks");
        b.HasKey(x => new { x.SegmentId, x.ProfileId });
        b.HasIndex(x => x.DueAt);
        b.HasOne<Segment>().WithMany().HasForeignKey(x => x.SegmentId).OnDelete(DeleteBehavior.Cascade);
    }

    public void Configure(EntityTypeBuilder<SegmentDirtyProfile> b) => b.ToTable("segment_dirty_profiles");

    public void Configure(EntityTypeBuilder<AudienceJob> b)
    {
        b.ToTable("audience_jobs");
        b.HasKey(x => x.Name);
        b.Property(x => x.Name).HasMaxLength(50);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
    }
}
