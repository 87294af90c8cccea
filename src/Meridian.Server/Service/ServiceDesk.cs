using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Service.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Service;

public sealed record TicketOpened(long TicketId, long ProfileId, string Queue, string Origin) : IDomainEvent
{
    public string EventType => "ticket.opened";
}

public sealed record TicketAssigned(long TicketId, long ProfileId, long AgentId, string Queue) : IDomainEvent
{
    public string EventType => "ticket.assigned";
}

public sealed record TicketClosed(long TicketId, long ProfileId, long? AgentId) : IDomainEvent
{
    public string EventType => "ticket.closed";
}

/// <summary>A ticket to open for a customer of a brand. <paramref name="IdempotencyKey"/>: a retry with it returns the first ticket.</summary>
public sealed record TicketRequest(long TenantId, long ProfileId, string Subject, string? Note, string? Queue, string? IdempotencyKey, string Origin);

public sealed record TicketDto(long Id, long ProfileId, string Subject, string? Note, string Queue, TicketStatus Status, long? AgentId,
    string Origin, DateTime CreatedAt, DateTime? AssignedAt, DateTime? ClosedAt)
{
    internal static TicketDto From(ServiceTicket t) =>
        new(t.Id, t.ProfileId, t.Subject, t.Note, t.Queue, t.Status, t.AgentId, t.Origin, t.CreatedAt, t.AssignedAt, t.ClosedAt);
}

public enum OpenOutcome
{
    Opened,
    /// <summary>A ticket with the same idempotency key existed: it is returned and nothing new was opened.</summary>
    Existing,
    ProfileNotFound,
}

public sealed record OpenResult(OpenOutcome Outcome, TicketDto? Ticket);

/// <summary>
/// The service desk's public surface (used by its endpoints and by journey steps): open a ticket for a customer and
/// assign it at once to the active agent of its queue with the fewest open tickets (ties: the one whose last
/// assignment is oldest); with nobody active the ticket waits in the queue and goes to the next agent who becomes
/// active or frees up. The queue's agent rows are locked while one is chosen (SQLite: the transaction holds the write
/// lock), so two nodes opening tickets at once cannot both count the same agent as the least loaded.
/// </summary>
public sealed class ServiceDesk(MeridianDb db, ProfileDirectory profiles, EventPublisher events, TimeProvider time)
{
    public const string DefaultQueue = "general";

    public async Task<OpenResult> OpenTicketAsync(TicketRequest request, CancellationToken ct)
    {
        if (await ByKeyAsync(request.TenantId, request.IdempotencyKey, ct) is { } existing) return new(OpenOutcome.Existing, TicketDto.From(existing));
        if (await profiles.FindLiveAsync(request.ProfileId, ct) is not { } live || live.BrandId != request.TenantId)
            return new(OpenOutcome.ProfileNotFound, null);

        var groupId = await db.GroupOfAsync(request.TenantId, ct);
        var ticket = new ServiceTicket
        {
            TenantId = request.TenantId, ProfileId = live.ProfileId, Subject = request.Subject, Note = request.Note,
            Queue = request.Queue ?? DefaultQueue, Status = TicketStatus.Waiting, Origin = request.Origin,
            IdempotencyKey = request.IdempotencyKey, CreatedAt = Instants.Now(time),
        };
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        db.Add(ticket);
        events.Publish(groupId, ticket.TenantId, () => new TicketOpened(ticket.Id, ticket.ProfileId, ticket.Queue, ticket.Origin));
        try
        {
            // The insert comes first: on SQLite it takes the write lock that makes the choice of agent below exact.
            await db.SaveChangesAsync(ct);
        }
        catch (Exception ex) when (request.IdempotencyKey is not null && ProblemExceptionHandler.IsUniqueViolation(ex))
        {
            // Another node opened the ticket with this key a moment ago.
            await transaction.RollbackAsync(ct);
            db.ChangeTracker.Clear();
            return new(OpenOutcome.Existing, TicketDto.From((await ByKeyAsync(request.TenantId, request.IdempotencyKey, ct))!));
        }
        await AssignWaitingAsync(groupId, ticket.TenantId, ticket.Queue, ct);
        await transaction.CommitAsync(ct);
        return new(OpenOutcome.Opened, TicketDto.From(ticket));
    }

    /// <summary>Closes a ticket (once; closing a closed ticket changes nothing) and gives the freed agent the next waiting one.</summary>
    public async Task<ServiceTicket?> CloseAsync(long ticketId, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var ticket = await db.Set<ServiceTicket>().SingleOrDefaultAsync(t => t.Id == ticketId, ct);
        if (ticket is null || ticket.Status == TicketStatus.Closed) return ticket;
        var groupId = await db.GroupOfAsync(ticket.TenantId, ct);
        var agentId = ticket.AgentId;
        ticket.Status = TicketStatus.Closed;
        ticket.ClosedAt = Instants.Now(time);
        events.Publish(groupId, ticket.TenantId, () => new TicketClosed(ticket.Id, ticket.ProfileId, agentId));
        await db.SaveChangesAsync(ct);
        if (agentId is { } id)
            await db.Set<ServiceAgent>().Where(a => a.Id == id && a.OpenTickets > 0).ExecuteUpdateAsync(s => s.SetProperty(a => a.OpenTickets, a => a.OpenTickets - 1), ct);
        await AssignWaitingAsync(groupId, ticket.TenantId, ticket.Queue, ct);
        await transaction.CommitAsync(ct);
        return ticket;
    }

    /// <summary>Staff move an open ticket to a named agent (of any queue of the brand, active or not).</summary>
    public async Task<ServiceTicket?> ReassignAsync(ServiceTicket ticket, ServiceAgent agent, CancellationToken ct)
    {
        if (ticket.Status == TicketStatus.Closed || ticket.AgentId == agent.Id) return ticket;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var groupId = await db.GroupOfAsync(ticket.TenantId, ct);
        if (ticket.AgentId is { } previous)
            await db.Set<ServiceAgent>().Where(a => a.Id == previous && a.OpenTickets > 0).ExecuteUpdateAsync(s => s.SetProperty(a => a.OpenTickets, a => a.OpenTickets - 1), ct);
        await GiveAsync(groupId, ticket, agent.Id, ct);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return ticket;
    }

    /// <summary>
    /// Gives the queue's waiting tickets, oldest first, to its least-loaded active agents, while both last. Call inside a
    /// transaction that has already written (SQLite) or with nothing else locked (PostgreSQL locks the queue's agents).
    /// </summary>
    public async Task AssignWaitingAsync(long groupId, long brandId, string queue, CancellationToken ct)
    {
        var agents = await LockQueueAsync(brandId, queue, ct);
        if (agents.Count == 0) return;
        var waiting = await db.Set<ServiceTicket>()
            .Where(t => t.TenantId == brandId && t.Queue == queue && t.Status == TicketStatus.Waiting).OrderBy(t => t.Id).Take(100).ToListAsync(ct);
        foreach (var ticket in waiting)
        {
            var agent = agents.OrderBy(a => a.OpenTickets).ThenBy(a => a.LastAssignedAt ?? DateTime.MinValue).ThenBy(a => a.Id).First();
            await GiveAsync(groupId, ticket, agent.Id, ct);
            agent.OpenTickets++;
            agent.LastAssignedAt = ticket.AssignedAt;
        }
        await db.SaveChangesAsync(ct);
    }

    private async Task GiveAsync(long groupId, ServiceTicket ticket, long agentId, CancellationToken ct)
    {
        var now = Instants.Now(time);
        ticket.AgentId = agentId;
        ticket.Status = TicketStatus.Assigned;
        ticket.AssignedAt = now;
        await db.Set<ServiceAgent>().Where(a => a.Id == agentId)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.OpenTickets, a => a.OpenTickets + 1).SetProperty(a => a.LastAssignedAt, now), ct);
        events.Publish(groupId, ticket.TenantId, () => new TicketAssigned(ticket.Id, ticket.ProfileId, agentId, ticket.Queue));
    }

    /// <summary>The queue's active agents, as they are now, locked until the transaction ends (PostgreSQL).</summary>
    private async Task<List<ServiceAgent>> LockQueueAsync(long brandId, string queue, CancellationToken ct)
    {
        var query = db.Database.IsNpgsql()
            ? db.Set<ServiceAgent>().FromSql($"SELECT * FROM service_agents WHERE tenant_id = {brandId} AND queue = {queue} AND active FOR UPDATE")
            : db.Set<ServiceAgent>().Where(a => a.TenantId == brandId && a.Queue == queue && a.Active);
        return await query.IgnoreQueryFilters().AsNoTracking().ToListAsync(ct);
    }

    private async Task<ServiceTicket?> ByKeyAsync(long brandId, string? key, CancellationToken ct) =>
        key is null ? null : await db.Set<ServiceTicket>().AsNoTracking().SingleOrDefaultAsync(t => t.TenantId == brandId && t.IdempotencyKey == key, ct);
}
