using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Messaging.Data;

/// <summary>What a brand sends on one channel: a body (and a subject for email) with <c>{{ variables }}</c>, see <see cref="Templates.TemplateText"/>.</summary>
public sealed class MessageTemplate : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public required string Channel { get; init; }
    public string? Subject { get; set; }
    public required string Body { get; set; }
    public bool Archived { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
}

public enum MessageStatus
{
    /// <summary>Waiting for the delivery worker (due at <see cref="Message.NextAttemptAt"/>: a retry, the end of quiet hours).</summary>
    Queued,
    /// <summary>Handed to the channel (the gateway accepted it, the SMTP server took it, the inbox holds it).</summary>
    Sent,
    /// <summary>The channel confirmed delivery (an SMS gateway's receipt).</summary>
    Delivered,
    /// <summary>Will not be sent: a permanent error or retries exhausted. These are the dead letters; staff may retry one.</summary>
    Failed,
    /// <summary>Not sent on purpose at send time: no consent, frequency cap, profile erased. <see cref="Message.Reason"/> says which.</summary>
    Suppressed,
    /// <summary>Could never be sent (unknown template, profile not found, channel mismatch); decided when it was asked for.</summary>
    Rejected,
}

/// <summary>
/// One message to one customer, from the request (<see cref="Sending.MessageDispatch"/>) to its last receipt. The row is the
/// state of its delivery: a node leases it (<see cref="LeaseOwner"/>/<see cref="LeaseUntil"/>), so two nodes never send it twice
/// and a restart resumes where the rows say.
/// </summary>
public sealed class Message : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; init; }
    public required string Channel { get; init; }
    public long TemplateId { get; init; }
    public required string Purpose { get; init; }
    /// <summary>Unique per brand: a second request with the same key gets the first outcome and creates nothing.</summary>
    public required string IdempotencyKey { get; init; }
    public required string Origin { get; init; }
    /// <summary>The triggering event's properties (JSON), for <c>{{ event.* }}</c>.</summary>
    public string? Event { get; init; }
    public MessageStatus Status { get; set; }
    /// <summary>Why it was rejected, suppressed, deferred or failed; never contains the message or the address.</summary>
    public string? Reason { get; set; }
    public int Attempts { get; set; }
    public DateTime NextAttemptAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    /// <summary>Rendered at send time (the profile as it is then); kept for the inbox and for staff with <c>pii.read</c>.</summary>
    public string? Subject { get; set; }
    public string? Body { get; set; }
    /// <summary>The channel's id for it (an SMS gateway's message id), which receipts name.</summary>
    public string? ExternalId { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? SentAt { get; set; }
    public DateTime? DeliveredAt { get; set; }
    public DateTime? FailedAt { get; set; }
    /// <summary>When it was counted against the brand's marketing frequency cap (under the profile's cap lock).</summary>
    public DateTime? CappedAt { get; set; }
    /// <summary>In-app inbox: when the customer read it.</summary>
    public DateTime? ReadAt { get; set; }
}

/// <summary>A brand's settings for one channel (gateway URL and token, SMTP host...), as JSON; secrets are never shown back in full.</summary>
public sealed class ChannelSettings : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Channel { get; init; }
    public required string Config { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>A brand's sending policy: quiet hours (local time of the brand) and the marketing frequency cap.</summary>
public sealed class MessagingPolicy : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    /// <summary>Minutes after local midnight; quiet hours may wrap midnight (21:00-08:00). Both null: none.</summary>
    public int? QuietStartMinute { get; set; }
    public int? QuietEndMinute { get; set; }
    /// <summary>At most this many marketing messages per customer in <see cref="CapDays"/> days, across all journeys; null: no cap.</summary>
    public int? MarketingCap { get; set; }
    public int CapDays { get; set; } = 7;
    public DateTime UpdatedAt { get; set; }
}

/// <summary>One row per customer that has been sent marketing: taken (row-locked) while the cap is counted, so two nodes cannot both send the one too many.</summary>
public sealed class CapLock
{
    public long ProfileId { get; init; }
    public long TenantId { get; init; }
    public DateTime TouchedAt { get; set; }
}

internal sealed class MessagingMaps : IEntityTypeConfiguration<MessageTemplate>, IEntityTypeConfiguration<Message>, IEntityTypeConfiguration<ChannelSettings>,
    IEntityTypeConfiguration<MessagingPolicy>, IEntityTypeConfiguration<CapLock>
{
    public void Configure(EntityTypeBuilder<MessageTemplate> b)
    {
        b.ToTable("messaging_templates");
        b.HasIndex(x => x.TenantId);
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.Channel).HasMaxLength(16);
        b.Property(x => x.Subject).HasMaxLength(500);
        b.Property(x => x.Body).HasMaxLength(20_000);
    }

    public void Configure(EntityTypeBuilder<Message> b)
    {
        b.ToTable("messaging_messages");
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.HasIndex(x => new { x.TenantId, x.IdempotencyKey }).IsUnique();
        b.HasIndex(x => new { x.Status, x.NextAttemptAt });
        b.HasIndex(x => new { x.ProfileId, x.Channel, x.Status });
        b.HasIndex(x => new { x.ProfileId, x.CappedAt });
        b.HasIndex(x => new { x.Channel, x.ExternalId });
        b.Property(x => x.Channel).HasMaxLength(16);
        b.Property(x => x.Purpose).HasMaxLength(32);
        b.Property(x => x.IdempotencyKey).HasMaxLength(200);
        b.Property(x => x.Origin).HasMaxLength(200);
        b.Property(x => x.Reason).HasMaxLength(1000);
        b.Property(x => x.LeaseOwner).HasMaxLength(200);
        b.Property(x => x.Subject).HasMaxLength(1000);
        b.Property(x => x.ExternalId).HasMaxLength(200);
    }

    public void Configure(EntityTypeBuilder<ChannelSettings> b)
    {
        b.ToTable("messaging_channel_settings");
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.HasIndex(x => new { x.TenantId, x.Channel }).IsUnique();
        b.Property(x => x.Channel).HasMaxLength(16);
        b.Property(x => x.Config).HasMaxLength(10_000);
    }

    public void Configure(EntityTypeBuilder<MessagingPolicy> b)
    {
        b.ToTable("messaging_policies");
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.HasIndex(x => x.TenantId).IsUnique();
    }

    public void Configure(EntityTypeBuilder<CapLock> b)
    {
        b.ToTable("messaging_cap_locks");
        b.HasKey(x => x.ProfileId);
        b.Property(x => x.ProfileId).ValueGeneratedNever();
    }
}
