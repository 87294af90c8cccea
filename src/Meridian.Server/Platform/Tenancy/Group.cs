using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Platform.Tenancy;

/// <summary>A company group that owns one or more brands; group-level keys read across its brands.</summary>
public sealed class Group
{
    public long Id { get; private set; }
    public required string Slug { get; init; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>A brand is the tenant: every module row carries its id as <c>tenant_id</c>.</summary>
public sealed class Brand
{
    public long Id { get; private set; }
    public long GroupId { get; init; }
    public required string Slug { get; init; }
    public required string Name { get; set; }
    /// <summary>ISO 3166 region used to read phone numbers written without a country code.</summary>
    public required string DefaultPhoneRegion { get; set; }
    /// <summary>IANA time zone for "end of day", "birthday", quiet hours...</summary>
    public required string TimeZone { get; set; }
    /// <summary>ISO 4217 currency; amounts are stored in its minor units.</summary>
    public required string Currency { get; set; }
    public DateTime CreatedAt { get; init; }
}

internal sealed class GroupMap : IEntityTypeConfiguration<Group>
{
    public void Configure(EntityTypeBuilder<Group> b)
    {
        b.ToTable("groups");
        b.HasIndex(g => g.Slug).IsUnique();
        b.Property(g => g.Slug).HasMaxLength(64);
        b.Property(g => g.Name).HasMaxLength(200);
    }
}

internal sealed class BrandMap : IEntityTypeConfiguration<Brand>
{
    public void Configure(EntityTypeBuilder<Brand> b)
    {
        b.ToTable("brands");
        b.HasIndex(x => x.Slug).IsUnique();
        b.HasIndex(x => x.GroupId);
        b.HasOne<Group>().WithMany().HasForeignKey(x => x.GroupId);
        b.Property(x => x.Slug).HasMaxLength(64);
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.DefaultPhoneRegion).HasMaxLength(2);
        b.Property(x => x.TimeZone).HasMaxLength(64);
        b.Property(x => x.Currency).HasMaxLength(3);
    }
}
