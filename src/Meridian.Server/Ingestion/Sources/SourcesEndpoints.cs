using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Ingestion.Sources;

public sealed record SourceDto(long Id, long BrandId, string Name, Channel Channel, bool Enabled, string WriteKeyPrefix, DateTime CreatedAt, DateTime UpdatedAt)
{
    public static SourceDto From(Source s) => new(s.Id, s.TenantId, s.Name, s.Channel, s.Enabled, s.WriteKeyPrefix, s.CreatedAt, s.UpdatedAt);
}

/// <summary>Returned once, when a source is created or its write key rotated: the key is not stored and cannot be shown again.</summary>
public sealed record SourceWithKeyDto(SourceDto Source, string WriteKey);

public sealed record CreateSourceRequest(
    [property: Required, StringLength(100, MinimumLength = 1), RegularExpression(@"^[a-z0-9][a-z0-9\-_.]*$", ErrorMessage = "Use lower-case letters, digits, '-', '_' and '.'.")] string Name,
    [property: Required] Channel? Channel);

public sealed record UpdateSourceRequest(
    [property: StringLength(100, MinimumLength = 1), RegularExpression(@"^[a-z0-9][a-z0-9\-_.]*$", ErrorMessage = "Use lower-case letters, digits, '-', '_' and '.'.")] string? Name,
    Channel? Channel,
    bool? Enabled);

public sealed record SourceCreated(long SourceId, string Name, Channel Channel) : IDomainEvent
{
    public string EventType => "source.created";
}

public sealed record SourceUpdated(long SourceId, string Name, Channel Channel, bool Enabled) : IDomainEvent
{
    public string EventType => "source.updated";
}

public sealed record SourceDeleted(long SourceId) : IDomainEvent
{
    public string EventType => "source.deleted";
}

public static class SourcesEndpoints
{
    public static IEndpointRouteBuilder MapSources(this IEndpointRouteBuilder app)
    {
        var sources = app.MapGroup("/api/v1/sources").WithTags("Sources");
        sources.MapGet("/", List).RequireAuthorization(Permissions.SourcesRead);
        sources.MapGet("/{id}", Get).RequireAuthorization(Permissions.SourcesRead);
        sources.MapPost("/", Create).RequireAuthorization(Permissions.SourcesWrite).RequireBrand();
        sources.MapPatch("/{id}", Update).RequireAuthorization(Permissions.SourcesWrite);
        sources.MapDelete("/{id}", Delete).RequireAuthorization(Permissions.SourcesWrite);
        sources.MapPost("/{id}/rotate-write-key", RotateWriteKey).RequireAuthorization(Permissions.SourcesWrite);
        return app;
    }

    public static async Task<Ok<Page<SourceDto>>> List([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<Source>().Where(s => s.Id > page.After).OrderBy(s => s.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(SourceDto.From).ToList(), s => s.Id));
    }

    public static async Task<Results<Ok<SourceDto>, ProblemHttpResult>> Get(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<Source>().SingleOrDefaultAsync(s => s.Id == id, ct) is { } source
            ? TypedResults.Ok(SourceDto.From(source))
            : Problems.NotFound($"Source {id}");

    public static async Task<Results<Created<SourceWithKeyDto>, ProblemHttpResult>> Create(
        CreateSourceRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, EventPublisher events, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<Source>().AnyAsync(s => s.TenantId == tenant.Brand && s.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a source named '{request.Name}'.");

        var now = time.GetUtcNow().UtcDateTime;
        var writeKey = Secrets.NewKey(Secrets.WriteKeyPrefix);
        var source = new Source
        {
            TenantId = tenant.Brand,
            Name = request.Name,
            Channel = request.Channel!.Value,
            WriteKeyPrefix = Secrets.Display(writeKey),
            WriteKeyHash = Secrets.Hash(writeKey),
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Add(source);
        audit.Record(source.TenantId, () => new AuditChange("source.created", "source", source.Id, null, SourceDto.From(source)));
        events.Publish(tenant.GroupId, source.TenantId, () => new SourceCreated(source.Id, source.Name, source.Channel));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/sources/{source.Id}", new SourceWithKeyDto(SourceDto.From(source), writeKey));
    }

    public static async Task<Results<Ok<SourceDto>, ProblemHttpResult>> Update(
        long id, UpdateSourceRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, EventPublisher events, WriteKeyStore writeKeys, TimeProvider time, CancellationToken ct)
    {
        var source = await db.Set<Source>().SingleOrDefaultAsync(s => s.Id == id, ct);
        if (source is null) return Problems.NotFound($"Source {id}");
        if (request.Name is { } name && name != source.Name && await db.Set<Source>().AnyAsync(s => s.TenantId == source.TenantId && s.Name == name, ct))
            return Problems.Conflict($"The brand already has a source named '{name}'.");

        var before = SourceDto.From(source);
        source.Name = request.Name ?? source.Name;
        source.Channel = request.Channel ?? source.Channel;
        source.Enabled = request.Enabled ?? source.Enabled;
        source.UpdatedAt = time.GetUtcNow().UtcDateTime;
        audit.Record(source.TenantId, () => new AuditChange("source.updated", "source", source.Id, before, SourceDto.From(source)));
        events.Publish(tenant.GroupId, source.TenantId, () => new SourceUpdated(source.Id, source.Name, source.Channel, source.Enabled));
        await db.SaveChangesAsync(ct);
        writeKeys.Forget(source.WriteKeyHash);
        return TypedResults.Ok(SourceDto.From(source));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        long id, MeridianDb db, TenantScope tenant, AuditLog audit, EventPublisher events, WriteKeyStore writeKeys, CancellationToken ct)
    {
        var source = await db.Set<Source>().SingleOrDefaultAsync(s => s.Id == id, ct);
        if (source is null) return Problems.NotFound($"Source {id}");
        writeKeys.Forget(source.WriteKeyHash);
        db.Remove(source);
        audit.Record(source.TenantId, () => new AuditChange("source.deleted", "source", id, SourceDto.From(source), null));
        events.Publish(tenant.GroupId, source.TenantId, () => new SourceDeleted(id));
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    public static async Task<Results<Ok<SourceWithKeyDto>, ProblemHttpResult>> RotateWriteKey(
        long id, MeridianDb db, AuditLog audit, WriteKeyStore writeKeys, TimeProvider time, CancellationToken ct)
    {
        var source = await db.Set<Source>().SingleOrDefaultAsync(s => s.Id == id, ct);
        if (source is null) return Problems.NotFound($"Source {id}");
        writeKeys.Forget(source.WriteKeyHash);
        var writeKey = Secrets.NewKey(Secrets.WriteKeyPrefix);
        var before = SourceDto.From(source);
        source.WriteKeyPrefix = Secrets.Display(writeKey);
        source.WriteKeyHash = Secrets.Hash(writeKey);
        source.UpdatedAt = time.GetUtcNow().UtcDateTime;
        audit.Record(source.TenantId, () => new AuditChange("source.write-key-rotated", "source", source.Id, before, SourceDto.From(source)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new SourceWithKeyDto(SourceDto.From(source), writeKey));
    }
}
