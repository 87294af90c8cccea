using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Profiles.Data;

/// <summary>
/// One customer. <see cref="Traits"/> holds each trait with its provenance as JSON
/// (<c>{"city":{"v":"Hangzhou","t":"2026-...","s":12}}</c>): value, event time and source.
/// A merged profile keeps its row, pointing at the survivor, so that old ids still resolve and a merge can be undone.
/// </summary>
public sealed class Profile : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long? MergedIntoId { get; set; }
    public Profile? MergedInto { get; set; }

    /// <summary>Setting the traits also sets <see cref="SearchName"/>, so every path that changes a name (events, staff, merge, split, erasure) keeps the search index right.</summary>
    public string Traits
    {
        get => traits;
        set
        {
            traits = value;
            SearchName = ProfileNames.SearchKey(value);
        }
    }
    private string traits = "{}";

    /// <summary>The name trait folded for prefix search (see <see cref="ProfileNames"/>); indexed with the tenant.</summary>
    public string? SearchName { get; private set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
    public DateTime? FirstSeenAt { get; set; }
    public DateTime? LastSeenAt { get; set; }
    public long EventCount { get; set; }
    public long OrderCount { get; set; }
    /// <summary>Completed orders less refunds, in minor units of the brand's currency.</summary>
    public long TotalSpendMinor { get; set; }
    public DateTime? FirstOrderAt { get; set; }
    public DateTime? LastOrderAt { get; set; }
    /// <summary>The order before the last, to tell a customer won back after a long gap.</summary>
    public DateTime? PreviousOrderAt { get; set; }
    /// <summary>Set when the person's data was erased; the row stays as a pseudonymous tombstone.</summary>
    public DateTime? ErasedAt { get; set; }

    // RFM and value scores, relative to the brand's other buying customers; written by the periodic ProfileScorer.
    // Null for a profile the last run did not score (no order yet, merged, erased).
    public int? RecencyScore { get; private set; }
    public int? FrequencyScore { get; private set; }
    public int? MonetaryScore { get; private set; }
    public string? RfmSegment { get; private set; }
    public int? ValueScore { get; private set; }

    /// <summary>
    /// Optimistic concurrency between the projector and staff actions (merge, split, erase): whichever commits
    /// second sees the version moved and starts again, so neither overwrites the other.
    /// </summary>
    public long Version { get; set; }
}

/// <summary>An identifier (normalised) and the one profile it belongs to in its brand.</summary>
public sealed class ProfileIdentifier : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; set; }
    public Profile? Profile { get; set; }
    public required string Type { get; init; }
    public required string Value { get; init; }
    public long SourceId { get; init; }
    public DateTime FirstSeenAt { get; init; }
    public DateTime LastSeenAt { get; set; }
}

/// <summary>The timeline: which profile an event belongs to now, and which it was first attributed to (for splits).</summary>
public sealed class ProfileEvent : ITenantOwned
{
    public long EventId { get; init; }
    public long TenantId { get; init; }
    public long ProfileId { get; set; }
    public Profile? Profile { get; set; }
    public long AttributedProfileId { get; set; }
    public DateTime Timestamp { get; init; }
    /// <summary>The event's name (a copy of <c>events.name</c>): "an event of this name in a window" is one probe of the (profile, name, time) index.</summary>
    public string? Name { get; init; }
}

/// <summary>Every merge: the event and identifier that caused it, and what each side held before.</summary>
public sealed class IdentityMerge : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long KeptProfileId { get; set; }
    public Profile? KeptProfile { get; set; }
    public long MergedProfileId { get; set; }
    public Profile? MergedProfile { get; set; }
    public long? EventId { get; init; }
    public required string IdentifierType { get; init; }
    public required string IdentifierValue { get; init; }
    public required string KeptSnapshot { get; init; }
    public required string MergedSnapshot { get; init; }
    public DateTime MergedAt { get; init; }
    public DateTime? UndoneAt { get; set; }
}

/// <summary>An event whose identifiers pointed at two profiles that may not merge (e.g. two user ids on one shared device).</summary>
public sealed class IdentityConflict : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long EventId { get; init; }
    public long ProfileId { get; set; }
    public Profile? Profile { get; set; }
    public long? OtherProfileId { get; set; }
    public Profile? OtherProfile { get; set; }
    public required string IdentifierType { get; init; }
    public required string IdentifierValue { get; init; }
    public required string Reason { get; init; }
    public DateTime At { get; init; }
}

/// <summary>A brand's scoring runs: when its profiles were last scored, and which node holds the run's lease.</summary>
public sealed class ProfileScoring : ITenantOwned
{
    public long TenantId { get; init; }
    public DateTime? ScoredAt { get; set; }
    /// <summary>How many profiles the last run scored.</summary>
    public long Scored { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
}

/// <summary>Where the profile projector has got to in the event log, and which node holds it.</summary>
public sealed class ProjectorState
{
    public required string Name { get; init; }
    public long PositionTx { get; set; }
    public long PositionId { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
}

internal sealed class ProfileMaps :
    IEntityTypeConfiguration<Profile>, IEntityTypeConfiguration<ProfileIdentifier>, IEntityTypeConfiguration<ProfileEvent>,
    IEntityTypeConfiguration<IdentityMerge>, IEntityTypeConfiguration<IdentityConflict>, IEntityTypeConfiguration<ProjectorState>,
    IEntityTypeConfiguration<ProfileScoring>
{
    public void Configure(EntityTypeBuilder<Profile> b)
    {
        b.ToTable("profiles");
        b.HasIndex(x => x.TenantId);
        b.Property(x => x.Version).IsConcurrencyToken();
        b.HasOne(x => x.MergedInto).WithMany().HasForeignKey(x => x.MergedIntoId);
        b.Property(x => x.SearchName).HasMaxLength(ProfileNames.MaxLength);
        b.HasIndex(x => new { x.TenantId, x.SearchName });
        b.Property(x => x.RfmSegment).HasMaxLength(32);
    }

    public void Configure(EntityTypeBuilder<ProfileIdentifier> b)
    {
        b.ToTable("profile_identifiers");
        b.HasIndex(x => new { x.TenantId, x.Type, x.Value }).IsUnique();
        b.HasOne(x => x.Profile).WithMany().HasForeignKey(x => x.ProfileId);
        b.Property(x => x.Type).HasMaxLength(64);
        b.Property(x => x.Value).HasMaxLength(500);
    }

    public void Configure(EntityTypeBuilder<ProfileEvent> b)
    {
        b.ToTable("profile_events");
        b.HasKey(x => x.EventId);
        b.Property(x => x.EventId).ValueGeneratedNever();
        b.HasOne(x => x.Profile).WithMany().HasForeignKey(x => x.ProfileId);
        b.HasIndex(x => new { x.ProfileId, x.Timestamp });
        b.HasIndex(x => new { x.ProfileId, x.Name, x.Timestamp });
        b.Property(x => x.Name).HasMaxLength(500);
    }

    public void Configure(EntityTypeBuilder<IdentityMerge> b)
    {
        b.ToTable("identity_merges");
        b.HasIndex(x => new { x.TenantId, x.Id });
        b.HasOne(x => x.KeptProfile).WithMany().HasForeignKey(x => x.KeptProfileId).OnDelete(DeleteBehavior.Restrict);
        b.HasOne(x => x.MergedProfile).WithMany().HasForeignKey(x => x.MergedProfileId).OnDelete(DeleteBehavior.Restrict);
        b.Property(x => x.IdentifierType).HasMaxLength(64);
        b.Property(x => x.IdentifierValue).HasMaxLength(500);
    }

    public void Configure(EntityTypeBuilder<IdentityConflict> b)
    {
        b.ToTable("identity_conflicts");
        b.HasIndex(x => new { x.TenantId, x.Id });
        b.HasOne(x => x.Profile).WithMany().HasForeignKey(x => x.ProfileId).OnDelete(DeleteBehavior.Restrict);
        b.HasOne(x => x.OtherProfile).WithMany().HasForeignKey(x => x.OtherProfileId).OnDelete(DeleteBehavior.Restrict);
        b.Property(x => x.IdentifierType).HasMaxLength(64);
        b.Property(x => x.IdentifierValue).HasMaxLength(500);
        b.Property(x => x.Reason).HasMaxLength(64);
    }

    public void Configure(EntityTypeBuilder<ProfileScoring> b)
    {
        b.ToTable("profile_scoring");
        b.HasKey(x => x.TenantId);
        b.Property(x => x.TenantId).ValueGeneratedNever();
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
    }

    public void Configure(EntityTypeBuilder<ProjectorState> b)
    {
        b.ToTable("projector_state");
        b.HasKey(x => x.Name);
        b.Property(x => x.Name).HasMaxLength(64);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
    }
}
