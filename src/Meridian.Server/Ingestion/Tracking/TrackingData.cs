using Meridian.Ingestion.Sources;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Ingestion.Tracking;

/// <summary>
/// One accepted Segment-Spec message, exactly as the client sent it (<see cref="Payload"/> is the item's own JSON
/// text; a batch's shared <c>context</c> is kept beside it). Append-only, with as few indexes as the write path allows:
/// the primary key and the (source, messageId) key that drops retries.
/// </summary>
public sealed class RawEvent : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long SourceId { get; init; }
    public required string MessageId { get; init; }
    public required string Type { get; init; }
    /// <summary>The event name of a track, the name of a page or screen.</summary>
    public string? Name { get; init; }
    public string? UserId { get; init; }
    public string? AnonymousId { get; init; }
    /// <summary>When it happened, corrected for the client's clock skew.</summary>
    public DateTime Timestamp { get; init; }
    public DateTime ReceivedAt { get; init; }
    public required string Payload { get; init; }
    public string? BatchContext { get; init; }
}

/// <summary>Something a client sent that could not be accepted, kept with the reason so that nothing is lost.</summary>
public sealed class RejectedEvent : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long SourceId { get; init; }
    public DateTime ReceivedAt { get; init; }
    public required string Reason { get; init; }
    public required string Detail { get; init; }
    public string? MessageId { get; init; }
    /// <summary>Position in the batch, when it came in one.</summary>
    public int? BatchIndex { get; init; }
    public required string Payload { get; init; }
}

/// <summary>Per source and UTC day: what came in. Updated in the same transaction as the events it counts.</summary>
public sealed class SourceDailyStats : ITenantOwned
{
    public long TenantId { get; init; }
    public long SourceId { get; init; }
    /// <summary><c>yyyy-MM-dd</c>, UTC.</summary>
    public required string Day { get; init; }
    public long Accepted { get; init; }
    public long Duplicates { get; init; }
    public long Rejected { get; init; }
    public DateTime? LastEventAt { get; init; }
}

public sealed class SourceDailyRejections : ITenantOwned
{
    public long TenantId { get; init; }
    public long SourceId { get; init; }
    public required string Day { get; init; }
    public required string Reason { get; init; }
    public long Count { get; init; }
}

/// <summary>
/// Per source, UTC day of receipt and identifier type: identifiers that came in but could not be normalised (a phone
/// that is no number, an email without a domain). Counted by identity resolution, which is where they are read.
/// </summary>
public sealed class SourceDailyIdentifierFailures : ITenantOwned
{
    public long TenantId { get; init; }
    public long SourceId { get; init; }
    public required string Day { get; init; }
    public required string IdentifierType { get; init; }
    public long Count { get; init; }
}

internal sealed class RawEventMap : IEntityTypeConfiguration<RawEvent>
{
    public void Configure(EntityTypeBuilder<RawEvent> b)
    {
        b.ToTable("events");
        b.HasIndex(x => new { x.SourceId, x.MessageId }).IsUnique();
        b.Property(x => x.MessageId).HasMaxLength(200);
        b.Property(x => x.Type).HasMaxLength(16);
        b.Property(x => x.Name).HasMaxLength(500);
        b.Property(x => x.UserId).HasMaxLength(500);
        b.Property(x => x.AnonymousId).HasMaxLength(500);
    }
}

internal sealed class RejectedEventMap : IEntityTypeConfiguration<RejectedEvent>
{
    public void Configure(EntityTypeBuilder<RejectedEvent> b)
    {
        b.ToTable("rejected_events");
        b.HasIndex(x => new { x.SourceId, x.Id });
        b.Property(x => x.Reason).HasMaxLength(64);
        b.Property(x => x.Detail).HasMaxLength(1000);
        b.Property(x => x.MessageId).HasMaxLength(200);
    }
}

internal sealed class SourceDailyStatsMap : IEntityTypeConfiguration<SourceDailyStats>
{
    public void Configure(EntityTypeBuilder<SourceDailyStats> b)
    {
        b.ToTable("source_daily_stats");
        b.HasKey(x => new { x.SourceId, x.Day });
        b.HasOne<Source>().WithMany().HasForeignKey(x => x.SourceId);
        b.Property(x => x.Day).HasMaxLength(10);
    }
}

internal sealed class SourceDailyRejectionsMap : IEntityTypeConfiguration<SourceDailyRejections>
{
    public void Configure(EntityTypeBuilder<SourceDailyRejections> b)
    {
        b.ToTable("source_daily_rejections");
        b.HasKey(x => new { x.SourceId, x.Day, x.Reason });
        b.HasOne<Source>().WithMany().HasForeignKey(x => x.SourceId);
        b.Property(x => x.Day).HasMaxLength(10);
        b.Property(x => x.Reason).HasMaxLength(64);
    }
}

internal sealed class SourceDailyIdentifierFailuresMap : IEntityTypeConfiguration<SourceDailyIdentifierFailures>
{
    public void Configure(EntityTypeBuilder<SourceDailyIdentifierFailures> b)
    {
        b.ToTable("source_daily_identifier_failures");
        b.HasKey(x => new { x.SourceId, x.Day, x.IdentifierType });
        b.HasOne<Source>().WithMany().HasForeignKey(x => x.SourceId);
        b.Property(x => x.Day).HasMaxLength(10);
        b.Property(x => x.IdentifierType).HasMaxLength(64);
    }
}
