using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Audiences.Data;

/// <summary>A saved audience: its rule (JSON, see <see cref="Segments.SegmentRule"/>), evaluated when asked.</summary>
public sealed class Segment : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public required string Rule { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
}

internal sealed class SegmentMap : IEntityTypeConfiguration<Segment>
{
    public void Configure(EntityTypeBuilder<Segment> b)
    {
        b.ToTable("segments");
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.Description).HasMaxLength(1000);
        b.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
    }
}
