using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Platform.Audit;

public sealed record AuditEntryDto(long Id, DateTime OccurredAt, long? BrandId, string Actor, long? ActorKeyId, long? ActorStaffUserId,
    string Action, string EntityType, string EntityId, JsonElement? Before, JsonElement? After, string? RemoteIp);

/// <summary>The audit log, for admins: read-only by design (there is no write route, and the database refuses updates).</summary>
public static class AuditEndpoints
{
    public static IEndpointRouteBuilder MapAudit(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/audit", List).WithTags("Audit").RequireAuthorization(Permissions.AuditRead);
        return app;
    }

    public static async Task<Ok<Page<AuditEntryDto>>> List(
        [AsParameters] PageRequest page, [FromQuery] string? entityType, [FromQuery] string? entityId, [FromQuery] string? action,
        HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var caller = http.Caller();
        var query = db.Set<AuditEntry>().Where(a => a.GroupId == caller.GroupId);
        // A brand key sees its brand's entries; group-level changes (roles, group keys) are for group keys only.
        if (caller.BrandId is { } brand) query = query.Where(a => a.BrandId == brand);
        if (entityType is not null) query = query.Where(a => a.EntityType == entityType);
        if (entityId is not null) query = query.Where(a => a.EntityId == entityId);
        if (action is not null) query = query.Where(a => a.Action == action);
        // Newest first: the cursor walks backwards through ids.
        var before = page.Cursor is null ? long.MaxValue : page.After;
        var rows = await query.Where(a => a.Id < before).OrderByDescending(a => a.Id).Take(page.Take + 1).ToListAsync(ct);
        var dtos = rows.Select(a => new AuditEntryDto(a.Id, a.OccurredAt, a.BrandId, a.Actor, a.ActorKeyId, a.ActorStaffUserId, a.Action,
            a.EntityType, a.EntityId, Parse(a.Before), Parse(a.After), a.RemoteIp)).ToList();
        return TypedResults.Ok(page.ToPage(dtos, a => a.Id));
    }

    private static JsonElement? Parse(string? json) => json is null ? null : JsonDocument.Parse(json).RootElement.Clone();
}
