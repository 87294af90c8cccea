using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Ingestion.Sources;

public enum Channel
{
    App,
    MiniProgram,
    Web,
    Pos,
    CallCenter,
    Import,
    Server,
}

/// <summary>One channel's way in: its events arrive with its write key and are counted per source.</summary>
public sealed class Source : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public Channel Channel { get; set; }
    public bool Enabled { get; set; } = true;
    public required string WriteKeyPrefix { get; set; }
    public required string WriteKeyHash { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
}

internal sealed class SourceMap : IEntityTypeConfiguration<Source>
{
    public void Configure(EntityTypeBuilder<Source> b)
    {
        b.ToTable("sources");
        b.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        b.HasIndex(x => x.WriteKeyHash).IsUnique();
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.Property(x => x.Name).HasMaxLength(100);
        b.Property(x => x.Channel).HasConversion<string>().HasMaxLength(20);
        b.Property(x => x.WriteKeyPrefix).HasMaxLength(16);
        b.Property(x => x.WriteKeyHash).HasMaxLength(64);
    }
}
