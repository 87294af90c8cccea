using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Login.Linking;

/// <summary>
/// A trusted back end's word that whoever holds this proof owns an identifier (e.g. the mini-program's server got the
/// unionid from WeChat): single-use, short-lived, stored as a hash. A signed-in customer redeems it to link the
/// identifier to their account's profile.
/// </summary>
public sealed class IdentityProof : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    /// <summary>The confidential client that vouched for the identifier.</summary>
    public required string ClientId { get; init; }
    public required string Type { get; init; }
    /// <summary>Normalised as the brand's ID-Mapping normalises the type.</summary>
    public required string Value { get; init; }
    public required string TokenHash { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime ExpiresAt { get; init; }
    public DateTime? UsedAt { get; set; }
    public long? UsedByAccountId { get; set; }
}

internal sealed class IdentityProofMap : IEntityTypeConfiguration<IdentityProof>
{
    public void Configure(EntityTypeBuilder<IdentityProof> b)
    {
        b.ToTable("login_identity_proofs");
        b.Property(x => x.ClientId).HasMaxLength(100);
        b.Property(x => x.Type).HasMaxLength(64);
        b.Property(x => x.Value).HasMaxLength(256);
        b.Property(x => x.TokenHash).HasMaxLength(64);
        b.HasIndex(x => x.TokenHash).IsUnique();
        b.HasIndex(x => x.ExpiresAt);
    }
}
