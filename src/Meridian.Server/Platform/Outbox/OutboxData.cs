using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Platform.Outbox;

/// <summary>A domain event, written in the same transaction as the change that caused it.</summary>
public sealed class OutboxMessage
{
    public long Id { get; internal init; }
    public long GroupId { get; init; }
    public long? BrandId { get; init; }
    public required string Type { get; init; }
    public required string Payload { get; init; }
    public DateTime OccurredAt { get; init; }
}

/// <summary>
/// How far the dispatcher has fanned the outbox out: the last message it created deliveries for, in the order it reads
/// them (see <see cref="OutboxDispatcher"/>). One row, moved on by the transaction that inserts those deliveries.
/// </summary>
internal sealed class OutboxPosition
{
    public const string FanOut = "fan-out";

    public required string Name { get; init; }
    /// <summary>The transaction that wrote the message (PostgreSQL; always 0 on SQLite, and for the messages written before positions were kept).</summary>
    public long PositionTx { get; set; }
    public long PositionId { get; set; }
}

public enum DeliveryStatus
{
    Pending = 0,
    Delivered = 1,
    /// <summary>Gave up after the maximum number of attempts; visible through the API for a manual retry.</summary>
    Dead = 2,
}

/// <summary>
/// One event for one subscriber (and target, e.g. one webhook endpoint). Claimed with a lease, so that of all
/// the nodes polling the table exactly one works on it at a time.
/// </summary>
public sealed class OutboxDelivery
{
    public long Id { get; private set; }
    public long MessageId { get; init; }
    public required string Subscriber { get; init; }
    /// <summary>"" when the subscriber has a single target.</summary>
    public required string Target { get; init; }
    public DeliveryStatus Status { get; set; }
    public int Attempts { get; set; }
    public DateTime NextAttemptAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public DateTime? DeliveredAt { get; set; }
    public string? DeliveredBy { get; set; }
    public string? LastError { get; set; }
}

internal sealed class OutboxMessageMap : IEntityTypeConfiguration<OutboxMessage>
{
    public void Configure(EntityTypeBuilder<OutboxMessage> b)
    {
        b.ToTable("outbox_messages");
        b.HasIndex(x => new { x.GroupId, x.Id });
        b.Property(x => x.Type).HasMaxLength(100);
    }
}

internal sealed class OutboxPositionMap : IEntityTypeConfiguration<OutboxPosition>
{
    public void Configure(EntityTypeBuilder<OutboxPosition> b)
    {
        b.ToTable("outbox_positions");
        b.HasKey(x => x.Name);
        b.Property(x => x.Name).HasMaxLength(64);
    }
}

internal sealed class OutboxDeliveryMap : IEntityTypeConfiguration<OutboxDelivery>
{
    public void Configure(EntityTypeBuilder<OutboxDelivery> b)
    {
        b.ToTable("outbox_deliveries");
        b.HasIndex(x => new { x.MessageId, x.Subscriber, x.Target }).IsUnique();
        b.HasIndex(x => new { x.Status, x.NextAttemptAt });
        b.HasOne<OutboxMessage>().WithMany().HasForeignKey(x => x.MessageId);
        b.Property(x => x.Subscriber).HasMaxLength(100);
        b.Property(x => x.Target).HasMaxLength(100);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
        b.Property(x => x.DeliveredBy).HasMaxLength(100);
        b.Property(x => x.LastError).HasMaxLength(1000);
    }
}
