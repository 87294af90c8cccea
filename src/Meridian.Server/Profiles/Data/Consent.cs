using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Meridian.Platform.Tenancy;

namespace Meridian.Profiles.Data;

/// <summary>
/// One change of a customer's consent for a channel and purpose (e.g. sms/marketing), with when and where it came
/// from. Append-only: the current state is the latest change per channel and purpose, and the history is the evidence.
/// </summary>
public sealed class ConsentChange : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; set; }
    public Profile? Profile { get; set; }
    public required string Channel { get; init; }
    public required string Purpose { get; init; }
    public bool Granted { get; init; }
    public DateTime ChangedAt { get; init; }
    /// <summary><c>source:12</c> (an event from that source), <c>key:5</c> (staff, through the API)...</summary>
    public required string Origin { get; init; }
    public long? EventId { get; init; }
}

internal sealed class ConsentChangeMap : IEntityTypeConfiguration<ConsentChange>
{
    public void Configure(EntityTypeBuilder<ConsentChange> b)
    {
        b.ToTable("consent_changes");
        b.HasOne(x => x.Profile).WithMany().HasForeignKey(x => x.ProfileId);
        b.HasIndex(x => new { x.ProfileId, x.Channel, x.Purpose, x.ChangedAt });
        b.Property(x => x.Channel).HasMaxLength(32);
        b.Property(x => x.Purpose).HasMaxLength(32);
        b.Property(x => x.Origin).HasMaxLength(64);
    }
}

public static class Consents
{
    public static readonly string[] Channels = ["sms", "email", "push", "wechat", "phone", "in_app"];
    public static readonly string[] Purposes = ["marketing", "service", "analytics", "personalisation"];
    /// <summary>The track event that carries a consent change from a front end: properties channel, purpose, granted.</summary>
    public const string EventName = "Consent Updated";
}
