using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Loyalty.Data;

/// <summary>How fractional points (an amount times points per unit, a multiplier) become whole points.</summary>
public enum PointsRounding
{
    Down = 0,
    Nearest = 1,
    Up = 2,
}

/// <summary>How the multipliers that apply to one earning (the tier's, each running campaign's) combine.</summary>
public enum MultiplierCombination
{
    /// <summary>×1.5 and ×2 make ×3.</summary>
    Multiply = 0,
    /// <summary>The bonuses add: ×1.5 and ×2 make ×2.5 (1 + 0.5 + 1).</summary>
    Add = 1,
    /// <summary>Only the best one counts: ×1.5 and ×2 make ×2.</summary>
    Highest = 2,
}

/// <summary>
/// Points for a tracked event other than an order (<c>Review Posted</c>, <c>Checked In</c>): a fixed number of points
/// (before multipliers) each time a member's event arrives, at most <see cref="PerDayCap"/> times per member and UTC
/// day and <see cref="PerMemberCap"/> times per member ever (null: no cap).
/// </summary>
public sealed class EarningRule : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    public required string Event { get; init; }
    public long Points { get; set; }
    public int? PerDayCap { get; set; }
    public int? PerMemberCap { get; set; }
    public bool Active { get; set; } = true;
    public DateTime CreatedAt { get; init; }
}

/// <summary>
/// A campaign multiplier ("double points this weekend"): applies to every earning of the programme between
/// <see cref="StartsAt"/> (inclusive) and <see cref="EndsAt"/> (exclusive), for members of <see cref="TierId"/> only when set,
/// and for members whose profile is in <see cref="SegmentId"/> (Audiences) at posting time only when set.
/// </summary>
public sealed class LoyaltyCampaign : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    public required string Name { get; set; }
    /// <summary>In percent: 200 doubles.</summary>
    public int MultiplierPercent { get; set; }
    public DateTime StartsAt { get; set; }
    public DateTime EndsAt { get; set; }
    public long? TierId { get; set; }
    /// <summary>
    /// A segment of a brand of the programme: the member's profile at that brand must be in it when the points are posted
    /// (read then, never cached: membership follows behaviour).
    /// </summary>
    public long? SegmentId { get; set; }
    public DateTime CreatedAt { get; init; }

    public bool Runs(DateTime now) => StartsAt <= now && now < EndsAt;

    /// <summary>Whether the campaign multiplies an earning now; <paramref name="inSegment"/>: the member is in <see cref="SegmentId"/> (ignored without one).</summary>
    public bool AppliesTo(DateTime now, long? memberTierId, bool inSegment) => Runs(now) && (TierId is null || TierId == memberTierId) && (SegmentId is null || inSegment);
}

internal sealed class EarningMaps : IEntityTypeConfiguration<EarningRule>, IEntityTypeConfiguration<LoyaltyCampaign>
{
    public void Configure(EntityTypeBuilder<EarningRule> b)
    {
        b.ToTable("loyalty_earning_rules");
        b.HasIndex(x => new { x.ProgrammeId, x.Event }).IsUnique();
        b.HasOne<LoyaltyProgramme>().WithMany().HasForeignKey(x => x.ProgrammeId);
        b.Property(x => x.Event).HasMaxLength(200);
    }

    public void Configure(EntityTypeBuilder<LoyaltyCampaign> b)
    {
        b.ToTable("loyalty_campaigns");
        b.HasIndex(x => new { x.ProgrammeId, x.EndsAt });
        b.HasOne<LoyaltyProgramme>().WithMany().HasForeignKey(x => x.ProgrammeId);
        b.HasOne<LoyaltyTier>().WithMany().HasForeignKey(x => x.TierId);
        b.Property(x => x.Name).HasMaxLength(200);
    }
}
