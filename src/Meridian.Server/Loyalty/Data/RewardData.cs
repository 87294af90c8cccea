using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Loyalty.Data;

/// <summary>
/// An entry of a programme's rewards catalogue: members spend <see cref="PointsCost"/> points for a coupon of an offer
/// template (a voucher, a free item, free shipping). The offer's own stock and per-customer limits still apply.
/// </summary>
public sealed class LoyaltyReward : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    public required string Name { get; set; }
    public long PointsCost { get; set; }
    public long CouponTemplateId { get; init; }
    public bool Active { get; set; }
    public DateTime CreatedAt { get; init; }
}

internal sealed class LoyaltyRewardMap : IEntityTypeConfiguration<LoyaltyReward>
{
    public void Configure(EntityTypeBuilder<LoyaltyReward> b)
    {
        b.ToTable("loyalty_rewards");
        b.Property(x => x.Name).HasMaxLength(200);
        b.HasIndex(x => new { x.ProgrammeId, x.Id });
        b.HasOne<LoyaltyProgramme>().WithMany().HasForeignKey(x => x.ProgrammeId);
    }
}
