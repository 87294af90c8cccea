using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Service.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Service;

public sealed record AgentDto(long Id, string Name, string Queue, bool Active, int OpenTickets, DateTime? LastAssignedAt, DateTime CreatedAt)
{
    internal static AgentDto From(ServiceAgent a) => new(a.Id, a.Name, a.Queue, a.Active, a.OpenTickets, a.LastAssignedAt, a.CreatedAt);
}

public sealed record CreateAgentRequest(
    [property: Required, StringLength(100, MinimumLength = 1)] string Name,
    [property: StringLength(64, MinimumLength = 1)] string? Queue,
    bool? Active);

public sealed record UpdateAgentRequest([property: Required] bool? Active);

public sealed record OpenTicketRequest(
    [property: Required] long? ProfileId,
    [property: Required, StringLength(200, MinimumLength = 1)] string Subject,
    [property: StringLength(2000)] string? Note,
    [property: StringLength(64, MinimumLength = 1)] string? Queue);

public sealed record AssignTicketRequest([property: Required] long? AgentId);

public sealed record TicketQuery
{
    [FromQuery(Name = "status")] public TicketStatus? Status { get; init; }
    [FromQuery(Name = "agentId")] public long? AgentId { get; init; }
    [FromQuery(Name = "profileId")] public long? ProfileId { get; init; }
    [FromQuery(Name = "queue"), StringLength(64)] public string? Queue { get; init; }
}

/// <summary>
/// The service desk: agents in queues, and tickets about customers assigned to them round the least-loaded agent
/// (a simple assignment queue; the CRM's service app builds on it). Opening a ticket takes an optional Idempotency-Key.
/// </summary>
public static class ServiceEndpoints
{
    private const string IdempotencyHeader = "Idempotency-Key";

    public static IEndpointRouteBuilder MapServiceRoutes(this IEndpointRouteBuilder app)
    {
        var service = app.MapGroup("/api/v1/service").WithTags("Service").RequireAuthorization(Permissions.ServiceRead);
        service.MapGet("/agents", Agents);
        service.MapPost("/agents", CreateAgent).RequireAuthorization(Permissions.ServiceWrite).RequireBrand();
        service.MapPut("/agents/{id}", UpdateAgent).RequireAuthorization(Permissions.ServiceWrite);
        service.MapGet("/tickets", Tickets);
        service.MapPost("/tickets", OpenTicket).RequireAuthorization(Permissions.ServiceWrite).RequireBrand();
        service.MapGet("/tickets/{id}", Ticket);
        service.MapPost("/tickets/{id}/assign", Assign).RequireAuthorization(Permissions.ServiceWrite);
        service.MapPost("/tickets/{id}/close", Close).RequireAuthorization(Permissions.ServiceWrite);
        return app;
    }

    public static async Task<Ok<Page<AgentDto>>> Agents([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<ServiceAgent>().AsNoTracking().Where(a => a.Id > page.After).OrderBy(a => a.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(AgentDto.From).ToList(), a => a.Id));
    }

    /// <summary>Adds an agent to a queue; an active agent takes the queue's waiting tickets at once.</summary>
    public static async Task<Created<AgentDto>> CreateAgent(
        CreateAgentRequest request, MeridianDb db, TenantScope tenant, ServiceDesk desk, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var agent = new ServiceAgent
        {
            TenantId = tenant.Brand, Name = request.Name, Queue = request.Queue ?? ServiceDesk.DefaultQueue, Active = request.Active ?? true,
            CreatedAt = Instants.Now(time),
        };
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        db.Add(agent);
        audit.Record(agent.TenantId, () => new AuditChange("service.agent.created", "service_agent", agent.Id, null, AgentDto.From(agent)));
        await db.SaveChangesAsync(ct);
        if (agent.Active) await desk.AssignWaitingAsync(tenant.GroupId, agent.TenantId, agent.Queue, ct);
        await transaction.CommitAsync(ct);
        return TypedResults.Created($"/api/v1/service/agents/{agent.Id}", AgentDto.From(await db.Set<ServiceAgent>().AsNoTracking().SingleAsync(a => a.Id == agent.Id, ct)));
    }

    /// <summary>Activates or deactivates an agent. A deactivated agent keeps the tickets it has and gets no new ones.</summary>
    public static async Task<Results<Ok<AgentDto>, ProblemHttpResult>> UpdateAgent(
        long id, UpdateAgentRequest request, MeridianDb db, TenantScope tenant, ServiceDesk desk, AuditLog audit, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var agent = await db.Set<ServiceAgent>().SingleOrDefaultAsync(a => a.Id == id, ct);
        if (agent is null) return Problems.NotFound($"service agent {id}");
        var before = AgentDto.From(agent);
        agent.Active = request.Active!.Value;
        audit.Record(agent.TenantId, () => new AuditChange("service.agent.updated", "service_agent", agent.Id, before, AgentDto.From(agent)));
        await db.SaveChangesAsync(ct);
        if (agent.Active) await desk.AssignWaitingAsync(tenant.GroupId, agent.TenantId, agent.Queue, ct);
        await transaction.CommitAsync(ct);
        return TypedResults.Ok(AgentDto.From(await db.Set<ServiceAgent>().AsNoTracking().SingleAsync(a => a.Id == id, ct)));
    }

    public static async Task<Ok<Page<TicketDto>>> Tickets([AsParameters] TicketQuery query, [AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = db.Set<ServiceTicket>().AsNoTracking().Where(t => t.Id > page.After);
        if (query.Status is { } status) rows = rows.Where(t => t.Status == status);
        if (query.AgentId is { } agent) rows = rows.Where(t => t.AgentId == agent);
        if (query.ProfileId is { } profile) rows = rows.Where(t => t.ProfileId == profile);
        if (query.Queue is { } queue) rows = rows.Where(t => t.Queue == queue);
        var list = await rows.OrderBy(t => t.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(list.Select(TicketDto.From).ToList(), t => t.Id));
    }

    public static async Task<Results<Ok<TicketDto>, ProblemHttpResult>> Ticket(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<ServiceTicket>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is { } ticket
            ? TypedResults.Ok(TicketDto.From(ticket))
            : Problems.NotFound($"ticket {id}");

    /// <summary>Opens a ticket for a customer of the brand and assigns it; with an Idempotency-Key a retry returns the first ticket (200).</summary>
    public static async Task<Results<Created<TicketDto>, Ok<TicketDto>, ValidationProblem>> OpenTicket(
        OpenTicketRequest request, HttpContext http, TenantScope tenant, ServiceDesk desk, CancellationToken ct)
    {
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        if (key.Length > 200) return Problems.Validation(IdempotencyHeader, "An Idempotency-Key has at most 200 characters.");
        var caller = http.Features.Get<ApiKeyIdentity>();
        var result = await desk.OpenTicketAsync(new TicketRequest(tenant.Brand, request.ProfileId!.Value, request.Subject, request.Note, request.Queue,
            key.Length == 0 ? null : key, caller is null ? "api" : $"key:{caller.KeyId}"), ct);
        return result.Outcome switch
        {
            OpenOutcome.ProfileNotFound => Problems.Validation("profileId", $"The brand has no customer {request.ProfileId}."),
            OpenOutcome.Existing => TypedResults.Ok(result.Ticket!),
            _ => TypedResults.Created($"/api/v1/service/tickets/{result.Ticket!.Id}", result.Ticket!),
        };
    }

    public static async Task<Results<Ok<TicketDto>, ValidationProblem, ProblemHttpResult>> Assign(
        long id, AssignTicketRequest request, MeridianDb db, ServiceDesk desk, AuditLog audit, CancellationToken ct)
    {
        var ticket = await db.Set<ServiceTicket>().SingleOrDefaultAsync(t => t.Id == id, ct);
        if (ticket is null) return Problems.NotFound($"ticket {id}");
        var agent = await db.Set<ServiceAgent>().AsNoTracking().SingleOrDefaultAsync(a => a.Id == request.AgentId && a.TenantId == ticket.TenantId, ct);
        if (agent is null) return Problems.Validation("agentId", $"The ticket's brand has no service agent {request.AgentId}.");
        if (ticket.Status == TicketStatus.Closed) return Problems.Conflict($"Ticket {id} is closed.");
        var before = TicketDto.From(ticket);
        audit.Record(ticket.TenantId, () => new AuditChange("service.ticket.assigned", "service_ticket", ticket.Id, before, TicketDto.From(ticket)));
        await desk.ReassignAsync(ticket, agent, ct);
        return TypedResults.Ok(TicketDto.From(ticket));
    }

    public static async Task<Results<Ok<TicketDto>, ProblemHttpResult>> Close(long id, MeridianDb db, ServiceDesk desk, CancellationToken ct)
    {
        if (!await db.Set<ServiceTicket>().AnyAsync(t => t.Id == id, ct)) return Problems.NotFound($"ticket {id}");
        var ticket = await desk.CloseAsync(id, ct);
        return TypedResults.Ok(TicketDto.From(ticket!));
    }
}
