using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Platform.Access;

/// <summary>A named set of permissions, owned by a group. Built-in roles are created with the group.</summary>
public sealed class Role
{
    public long Id { get; private set; }
    public long GroupId { get; init; }
    public required string Name { get; init; }
    public string Description { get; set; } = "";
    public List<string> Permissions { get; set; } = [];
    public bool BuiltIn { get; init; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>A person who works in the console; their API keys act on their behalf.</summary>
public sealed class StaffUser
{
    public long Id { get; private set; }
    public long GroupId { get; init; }
    /// <summary>Null: the user works across the whole group.</summary>
    public long? BrandId { get; init; }
    public required string Email { get; set; }
    public required string DisplayName { get; set; }
    public long RoleId { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? DisabledAt { get; set; }
}

/// <summary>
/// A credential for the staff API. Scoped to one brand or (BrandId null) to the whole group, and to a role.
/// The secret is shown once at creation; only its hash is kept.
/// </summary>
public sealed class ApiKey
{
    public long Id { get; private set; }
    public long GroupId { get; init; }
    public long? BrandId { get; init; }
    public long RoleId { get; init; }
    public long? StaffUserId { get; init; }
    public required string Name { get; init; }
    public required string Prefix { get; init; }
    public required string Hash { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? ExpiresAt { get; init; }
    public DateTime? RevokedAt { get; private set; }
    public DateTime? LastUsedAt { get; set; }

    public bool IsActive(DateTime now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);

    public void Revoke(DateTime now)
    {
        if (RevokedAt is not null) throw new Hosting.BusinessRuleException("The key is already revoked.");
        RevokedAt = now;
    }
}

internal sealed class RoleMap : IEntityTypeConfiguration<Role>
{
    public void Configure(EntityTypeBuilder<Role> b)
    {
        b.ToTable("roles");
        b.HasIndex(x => new { x.GroupId, x.Name }).IsUnique();
        b.HasOne<Group>().WithMany().HasForeignKey(x => x.GroupId);
        b.Property(x => x.Name).HasMaxLength(64);
        b.Property(x => x.Description).HasMaxLength(500);
    }
}

internal sealed class StaffUserMap : IEntityTypeConfiguration<StaffUser>
{
    public void Configure(EntityTypeBuilder<StaffUser> b)
    {
        b.ToTable("staff_users");
        b.HasIndex(x => new { x.GroupId, x.Email }).IsUnique();
        b.HasOne<Group>().WithMany().HasForeignKey(x => x.GroupId);
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.BrandId);
        b.HasOne<Role>().WithMany().HasForeignKey(x => x.RoleId);
        b.Property(x => x.Email).HasMaxLength(320);
        b.Property(x => x.DisplayName).HasMaxLength(200);
    }
}

internal sealed class ApiKeyMap : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> b)
    {
        b.ToTable("api_keys");
        b.HasIndex(x => x.Hash).IsUnique();
        b.HasIndex(x => x.GroupId);
        b.HasOne<Group>().WithMany().HasForeignKey(x => x.GroupId);
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.BrandId);
        b.HasOne<Role>().WithMany().HasForeignKey(x => x.RoleId);
        b.HasOne<StaffUser>().WithMany().HasForeignKey(x => x.StaffUserId);
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.Prefix).HasMaxLength(16);
        b.Property(x => x.Hash).HasMaxLength(64);
    }
}
