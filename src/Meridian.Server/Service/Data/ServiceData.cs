using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Service.Data;

/// <summary>
/// A member of the service team who takes tickets from one queue. New tickets go to the active agent of the queue with
/// the fewest open tickets (then the one who waited longest since the last), so work spreads evenly.
/// </summary>
public sealed class ServiceAgent : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public required string Queue { get; set; }
    public bool Active { get; set; }
    /// <summary>Tickets assigned to the agent and not closed; kept in the row so assignment is one indexed read.</summary>
    public int OpenTickets { get; set; }
    public DateTime? LastAssignedAt { get; set; }
    public DateTime CreatedAt { get; init; }
}

public enum TicketStatus
{
    /// <summary>Waiting in its queue for an agent (none was active when it was opened).</summary>
    Waiting,
    Assigned,
    Closed,
}

/// <summary>A service ticket about one customer, opened by staff, a front end or a journey step.</summary>
public sealed class ServiceTicket : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProfileId { get; init; }
    public required string Subject { get; init; }
    public string? Note { get; init; }
    public required string Queue { get; init; }
    public TicketStatus Status { get; set; }
    public long? AgentId { get; set; }
    /// <summary><c>key:5</c> (staff through the API), <c>journey:12/v3/node:assign</c>.</summary>
    public required string Origin { get; init; }
    /// <summary>Unique per brand: opening again with the same key returns this ticket.</summary>
    public string? IdempotencyKey { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? AssignedAt { get; set; }
    public DateTime? ClosedAt { get; set; }
}

internal sealed class ServiceMaps : IEntityTypeConfiguration<ServiceAgent>, IEntityTypeConfiguration<ServiceTicket>
{
    public void Configure(EntityTypeBuilder<ServiceAgent> b)
    {
        b.ToTable("service_agents");
        b.Property(x => x.Name).HasMaxLength(100);
        b.Property(x => x.Queue).HasMaxLength(64);
        b.HasIndex(x => new { x.TenantId, x.Queue, x.Active });
    }

    public void Configure(EntityTypeBuilder<ServiceTicket> b)
    {
        b.ToTable("service_tickets");
        b.Property(x => x.Subject).HasMaxLength(200);
        b.Property(x => x.Note).HasMaxLength(2000);
        b.Property(x => x.Queue).HasMaxLength(64);
        b.Property(x => x.Status).HasConversion<string>().HasMaxLength(16);
        b.Property(x => x.Origin).HasMaxLength(200);
        b.Property(x => x.IdempotencyKey).HasMaxLength(200);
        b.HasIndex(x => new { x.TenantId, x.IdempotencyKey }).IsUnique().HasFilter("idempotency_key IS NOT NULL");
        b.HasIndex(x => new { x.TenantId, x.Queue, x.Status, x.Id });
        b.HasIndex(x => new { x.TenantId, x.ProfileId });
        b.HasIndex(x => new { x.AgentId, x.Status });
        b.HasOne<ServiceAgent>().WithMany().HasForeignKey(x => x.AgentId).OnDelete(DeleteBehavior.Restrict);
    }
}
