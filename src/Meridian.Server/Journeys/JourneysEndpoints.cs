using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Journeys.Data;
using Meridian.Journeys.Graph;
using Meridian.Journeys.Triggers;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Journeys;

public sealed record JourneyDto(long Id, long BrandId, string Name, JourneyStatus Status, JsonElement Draft, int? PublishedVersion, int LatestVersion,
    DateTime CreatedAt, DateTime UpdatedAt);

public sealed record JourneyVersionDto(long Id, long JourneyId, int Version, JsonElement Graph, DateTime PublishedAt);

/// <summary>A journey's name and its graph (see docs/journeys.md for the graph's schema).</summary>
public sealed record SaveJourneyRequest([property: Required, StringLength(200, MinimumLength = 1)] string Name, JsonElement Graph);

/// <summary>Customers to let in: one <c>profileId</c> or up to 1,000 <c>profileIds</c>; <c>properties</c> are the trigger's data for the steps.</summary>
public sealed record EnterRequest(long? ProfileId, [property: MaxLength(1000)] List<long>? ProfileIds, JsonElement? Properties);

public sealed record EntryDto(long ProfileId, EntryOutcome Outcome, long? InstanceId);

public sealed record StepDto(int Step, string Node, string Outcome, string? Detail, string By, DateTime At);

public sealed record InstanceDto(long Id, long JourneyId, int Version, long ProfileId, InstanceState State, string CurrentNode, DateTime? DueAt, int Attempts,
    JsonElement Context, DateTime EnteredAt, DateTime? FinishedAt, IReadOnlyList<StepDto>? Steps);

public sealed record NodeStatsDto(string Node, string? Type, long Entered, long Waiting, long Passed, long Failed);

/// <summary>Instances by state, per node counts, and conversion: the share of entered customers who reached a goal.</summary>
public sealed record JourneyStatsDto(long JourneyId, long Entered, long Running, long Waiting, long Completed, long Converted, long Failed, long Stopped,
    double ConversionRate, IReadOnlyList<NodeStatsDto> Nodes);

/// <summary>
/// Journeys: saved as drafts (validated on every save), published as frozen versions, paused, resumed and stopped; customers
/// let in by API; the instances and their steps; statistics per node.
/// </summary>
public static class JourneysEndpoints
{
    public static IEndpointRouteBuilder MapJourneysRoutes(this IEndpointRouteBuilder app)
    {
        var journeys = app.MapGroup("/api/v1/journeys").WithTags("Journeys").RequireAuthorization(Permissions.JourneysRead);
        journeys.MapGet("/", List);
        journeys.MapPost("/", Create).RequireAuthorization(Permissions.JourneysWrite).RequireBrand();
        journeys.MapGet("/{id}", Get);
        journeys.MapPut("/{id}", Update).RequireAuthorization(Permissions.JourneysWrite);
        journeys.MapPost("/{id}/publish", Publish).RequireAuthorization(Permissions.JourneysWrite);
        journeys.MapPost("/{id}/pause", Pause).RequireAuthorization(Permissions.JourneysWrite);
        journeys.MapPost("/{id}/resume", Resume).RequireAuthorization(Permissions.JourneysWrite);
        journeys.MapPost("/{id}/stop", Stop).RequireAuthorization(Permissions.JourneysWrite);
        journeys.MapGet("/{id}/versions/{version}", Version);
        journeys.MapPost("/{id}/entries", Enter).RequireAuthorization(Permissions.JourneysWrite);
        journeys.MapGet("/{id}/instances", Instances);
        journeys.MapGet("/{id}/instances/{instanceId}", Instance);
        journeys.MapGet("/{id}/stats", Stats);
        return app;
    }

    public static async Task<Ok<Page<JourneyDto>>> List([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<Journey>().AsNoTracking().Where(j => j.Id > page.After).OrderBy(j => j.Id).Take(page.Take + 1).ToListAsync(ct);
        var versions = await VersionsOfAsync(db, rows, ct);
        return TypedResults.Ok(page.ToPage(rows.Select(j => ToDto(j, versions)).ToList(), j => j.Id));
    }

    public static async Task<Results<Created<JourneyDto>, ValidationProblem, ProblemHttpResult>> Create(
        SaveJourneyRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (Validate(request.Graph) is { } invalid) return invalid;
        if (await db.Set<Journey>().AnyAsync(j => j.TenantId == tenant.Brand && j.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a journey named '{request.Name}'.");
        var now = time.GetUtcNow().UtcDateTime;
        var journey = new Journey { TenantId = tenant.Brand, Name = request.Name, Draft = request.Graph.GetRawText(), Status = JourneyStatus.Draft, CreatedAt = now, UpdatedAt = now };
        db.Add(journey);
        audit.Record(journey.TenantId, () => new AuditChange("journey.created", "journey", journey.Id, null, new { journey.Name }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/journeys/{journey.Id}", ToDto(journey, []));
    }

    public static async Task<Results<Ok<JourneyDto>, ProblemHttpResult>> Get(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<Journey>().AsNoTracking().SingleOrDefaultAsync(j => j.Id == id, ct) is { } journey
            ? TypedResults.Ok(ToDto(journey, await VersionsOfAsync(db, [journey], ct)))
            : Problems.NotFound($"Journey {id}");

    /// <summary>Saves the draft; what runs changes only when it is published.</summary>
    public static async Task<Results<Ok<JourneyDto>, ValidationProblem, ProblemHttpResult>> Update(
        long id, SaveJourneyRequest request, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<Journey>().SingleOrDefaultAsync(j => j.Id == id, ct) is not { } journey) return Problems.NotFound($"Journey {id}");
        if (Validate(request.Graph) is { } invalid) return invalid;
        if (request.Name != journey.Name && await db.Set<Journey>().AnyAsync(j => j.TenantId == journey.TenantId && j.Name == request.Name, ct))
            return Problems.Conflict($"The brand already has a journey named '{request.Name}'.");
        journey.Name = request.Name;
        journey.Draft = request.Graph.GetRawText();
        journey.UpdatedAt = time.GetUtcNow().UtcDateTime;
        audit.Record(journey.TenantId, () => new AuditChange("journey.saved", "journey", journey.Id, null, new { journey.Name }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToDto(journey, await VersionsOfAsync(db, [journey], ct)));
    }

    /// <summary>
    /// Freezes the draft as the next version: new entries start on it, instances already running finish on theirs. A draft
    /// or stopped journey becomes active; a paused one stays paused.
    /// </summary>
    public static async Task<Results<Ok<JourneyVersionDto>, ValidationProblem, ProblemHttpResult>> Publish(
        long id, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<Journey>().SingleOrDefaultAsync(j => j.Id == id, ct) is not { } journey) return Problems.NotFound($"Journey {id}");
        using (var draft = JsonDocument.Parse(journey.Draft))
            if (Validate(draft.RootElement) is { } invalid) return invalid;
        var now = time.GetUtcNow().UtcDateTime;
        var version = new JourneyVersion { TenantId = journey.TenantId, JourneyId = journey.Id, Version = journey.LatestVersion + 1, Graph = journey.Draft, PublishedAt = now };
        db.Add(version);
        journey.LatestVersion = version.Version;
        if (journey.Status != JourneyStatus.Paused) journey.Status = JourneyStatus.Active;
        journey.UpdatedAt = now;
        db.AfterKeysAssigned(() => journey.CurrentVersionId = version.Id);
        audit.Record(journey.TenantId, () => new AuditChange("journey.published", "journey", journey.Id, null, new { version.Version }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToDto(version));
    }

    /// <summary>Paused: nobody enters, and running instances hold where they are; a timer due meanwhile fires on resume.</summary>
    public static Task<Results<Ok<JourneyDto>, ProblemHttpResult>> Pause(long id, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct) =>
        ChangeStatusAsync(id, JourneyStatus.Paused, [JourneyStatus.Active], db, audit, time, ct);

    public static Task<Results<Ok<JourneyDto>, ProblemHttpResult>> Resume(long id, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct) =>
        ChangeStatusAsync(id, JourneyStatus.Active, [JourneyStatus.Paused], db, audit, time, ct);

    /// <summary>Stopped: nobody enters, and every running instance ends where it is (state <c>stopped</c>). Publishing again restarts entries.</summary>
    public static async Task<Results<Ok<JourneyDto>, ProblemHttpResult>> Stop(long id, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var result = await ChangeStatusAsync(id, JourneyStatus.Stopped, [JourneyStatus.Active, JourneyStatus.Paused], db, audit, time, ct);
        if (result.Result is Ok<JourneyDto>)
        {
            var now = time.GetUtcNow().UtcDateTime;
            await db.Set<JourneyInstance>().Where(x => x.JourneyId == id && (x.State == InstanceState.Active || x.State == InstanceState.Waiting))
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.State, InstanceState.Stopped).SetProperty(x => x.FinishedAt, now).SetProperty(x => x.DueAt, (DateTime?)null), ct);
        }
        return result;
    }

    private static async Task<Results<Ok<JourneyDto>, ProblemHttpResult>> ChangeStatusAsync(long id, JourneyStatus to, JourneyStatus[] from, MeridianDb db,
        AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (await db.Set<Journey>().SingleOrDefaultAsync(j => j.Id == id, ct) is not { } journey) return Problems.NotFound($"Journey {id}");
        if (!from.Contains(journey.Status))
            return TypedResults.Problem(statusCode: 409, type: ProblemTypes.BusinessRule, title: "A business rule prevents this change.",
                detail: $"A {Name(journey.Status)} journey cannot be made {Name(to)}" + (journey.Status == JourneyStatus.Draft ? ": publish it first." : "."));
        journey.Status = to;
        journey.UpdatedAt = time.GetUtcNow().UtcDateTime;
        audit.Record(journey.TenantId, () => new AuditChange($"journey.{Name(to)}", "journey", journey.Id, null, null));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToDto(journey, await VersionsOfAsync(db, [journey], ct)));
    }

    public static async Task<Results<Ok<JourneyVersionDto>, ProblemHttpResult>> Version(long id, int version, MeridianDb db, CancellationToken ct) =>
        await db.Set<JourneyVersion>().AsNoTracking().SingleOrDefaultAsync(v => v.JourneyId == id && v.Version == version, ct) is { } found
            ? TypedResults.Ok(ToDto(found))
            : Problems.NotFound($"Version {version} of journey {id}");

    /// <summary>
    /// Lets customers in by API, each by the journey's re-entry policy and entry limit. With an <c>Idempotency-Key</c> the
    /// call enters each customer once however often it is repeated; without one every call is a new entry.
    /// </summary>
    public static async Task<Results<Ok<List<EntryDto>>, ValidationProblem, ProblemHttpResult>> Enter(
        long id, EnterRequest request, HttpContext http, MeridianDb db, JourneyEntries entries, CancellationToken ct)
    {
        if (await db.Set<Journey>().AsNoTracking().SingleOrDefaultAsync(j => j.Id == id, ct) is not { } journey) return Problems.NotFound($"Journey {id}");
        if ((request.ProfileId is null) == (request.ProfileIds is null)) return Problems.Validation("profileId", "Give profileId or profileIds.");
        if (request.Properties is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) }) return Problems.Validation("properties", "An object of the trigger's data.");
        if (journey.Status != JourneyStatus.Active)
            return TypedResults.Problem(statusCode: 409, type: ProblemTypes.BusinessRule, title: "A business rule prevents this change.",
                detail: $"The journey is {Name(journey.Status)}: only an active journey lets customers in.");
        var key = http.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 150) return Problems.Validation("Idempotency-Key", "An Idempotency-Key has at most 150 characters.");
        var entryKey = JourneyEntries.Key("api", key.Length > 0 ? key : Guid.NewGuid().ToString("N"));
        var properties = request.Properties is { ValueKind: JsonValueKind.Object } p ? p : (JsonElement?)null;
        var answers = new List<EntryDto>();
        foreach (var profileId in request.ProfileIds?.Distinct() ?? [request.ProfileId!.Value])
        {
            var (outcome, instance) = await entries.EnterAsync(journey, profileId, entryKey, properties, ct);
            answers.Add(new EntryDto(profileId, outcome, instance));
        }
        return TypedResults.Ok(answers);
    }

    public static async Task<Results<Ok<Page<InstanceDto>>, ProblemHttpResult>> Instances(
        long id, [AsParameters] PageRequest page, [FromQuery] long? profileId, [FromQuery] InstanceState? state, MeridianDb db, CancellationToken ct)
    {
        if (!await db.Set<Journey>().AnyAsync(j => j.Id == id, ct)) return Problems.NotFound($"Journey {id}");
        var query = db.Set<JourneyInstance>().AsNoTracking().Where(x => x.JourneyId == id && x.Id > page.After);
        if (profileId is { } p) query = query.Where(x => x.ProfileId == p);
        if (state is { } s) query = query.Where(x => x.State == s);
        var rows = await query.OrderBy(x => x.Id).Take(page.Take + 1).ToListAsync(ct);
        var versions = await VersionNumbersAsync(db, rows.Select(r => r.VersionId), ct);
        return TypedResults.Ok(page.ToPage(rows.Select(r => ToDto(r, versions[r.VersionId], null)).ToList(), r => r.Id));
    }

    /// <summary>One instance with every node it has left, in order.</summary>
    public static async Task<Results<Ok<InstanceDto>, ProblemHttpResult>> Instance(long id, long instanceId, MeridianDb db, CancellationToken ct)
    {
        if (await db.Set<JourneyInstance>().AsNoTracking().SingleOrDefaultAsync(x => x.Id == instanceId && x.JourneyId == id, ct) is not { } instance)
            return Problems.NotFound($"Instance {instanceId} of journey {id}");
        var steps = await db.Set<JourneyStep>().AsNoTracking().Where(s => s.InstanceId == instanceId).OrderBy(s => s.Step)
            .Select(s => new StepDto(s.Step, s.Node, s.Outcome, s.Detail, s.By, s.At)).ToListAsync(ct);
        var versions = await VersionNumbersAsync(db, [instance.VersionId], ct);
        return TypedResults.Ok(ToDto(instance, versions[instance.VersionId], steps));
    }

    /// <summary>
    /// Per node: <c>entered</c> (customers who reached it, on any version), <c>waiting</c> (there now), <c>passed</c> (left by
    /// a normal exit), <c>failed</c> (an action gave up). Conversion is converted instances over entered ones.
    /// </summary>
    public static async Task<Results<Ok<JourneyStatsDto>, ProblemHttpResult>> Stats(long id, MeridianDb db, Engine.JourneyGraphs graphs, CancellationToken ct)
    {
        if (await db.Set<Journey>().AsNoTracking().SingleOrDefaultAsync(j => j.Id == id, ct) is not { } journey) return Problems.NotFound($"Journey {id}");
        var states = await db.Set<JourneyInstance>().Where(x => x.JourneyId == id).GroupBy(x => x.State)
            .Select(g => new { g.Key, Count = g.LongCount() }).ToDictionaryAsync(x => x.Key, x => x.Count, ct);
        var here = await db.Set<JourneyInstance>().Where(x => x.JourneyId == id && (x.State == InstanceState.Active || x.State == InstanceState.Waiting || x.State == InstanceState.Stopped))
            .GroupBy(x => new { x.CurrentNode, x.State }).Select(g => new { g.Key.CurrentNode, g.Key.State, Count = g.LongCount() }).ToListAsync(ct);
        var left = await db.Set<JourneyStep>().Where(s => s.JourneyId == id).GroupBy(s => new { s.Node, s.Outcome })
            .Select(g => new { g.Key.Node, g.Key.Outcome, Count = g.LongCount() }).ToListAsync(ct);
        var graph = journey.CurrentVersionId is { } v ? await graphs.GetAsync(db, v, ct) : null;
        var nodes = (graph?.Nodes.Keys ?? []).Concat(here.Select(h => h.CurrentNode)).Concat(left.Select(l => l.Node)).Distinct().ToList();
        var stats = nodes.Select(n => new NodeStatsDto(n, graph?.Nodes.GetValueOrDefault(n)?.Type,
            Entered: left.Where(l => l.Node == n).Sum(l => l.Count) + here.Where(h => h.CurrentNode == n).Sum(h => h.Count),
            Waiting: here.Where(h => h.CurrentNode == n && h.State != InstanceState.Stopped).Sum(h => h.Count),
            Passed: left.Where(l => l.Node == n && l.Outcome != "failed").Sum(l => l.Count),
            Failed: left.Where(l => l.Node == n && l.Outcome == "failed").Sum(l => l.Count))).ToList();
        long Of(InstanceState s) => states.GetValueOrDefault(s);
        var entered = states.Values.Sum();
        return TypedResults.Ok(new JourneyStatsDto(id, entered, Of(InstanceState.Active), Of(InstanceState.Waiting), Of(InstanceState.Completed),
            Of(InstanceState.Converted), Of(InstanceState.Failed), Of(InstanceState.Stopped), entered == 0 ? 0 : (double)Of(InstanceState.Converted) / entered, stats));
    }

    /// <summary>Validation errors of a graph as a 400 naming each node at fault (<c>errors["nodes.{id}"]</c>), or null when it is valid.</summary>
    private static ValidationProblem? Validate(JsonElement graph) =>
        JourneyGraphParser.Parse(graph, out var errors) is null
            ? TypedResults.ValidationProblem(errors.ToDictionary(e => e.Key.StartsWith("nodes", StringComparison.Ordinal) || e.Key.StartsWith("edges", StringComparison.Ordinal)
                    || e.Key is "start" or "trigger" or "reentry" or "reentryDays" or "maxEntries" ? "graph." + e.Key : e.Key, e => e.Value),
                type: ProblemTypes.Validation, title: "One or more fields are invalid.",
                detail: "The journey's graph is not valid: " + string.Join(" ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")))
            : null;

    private static string Name(JourneyStatus status) => JsonNamingPolicy.SnakeCaseLower.ConvertName(status.ToString());

    private static async Task<Dictionary<long, int>> VersionNumbersAsync(MeridianDb db, IEnumerable<long> ids, CancellationToken ct)
    {
        var list = ids.Distinct().ToList();
        return await db.Set<JourneyVersion>().AsNoTracking().Where(v => list.Contains(v.Id)).ToDictionaryAsync(v => v.Id, v => v.Version, ct);
    }

    private static Task<Dictionary<long, int>> VersionsOfAsync(MeridianDb db, IEnumerable<Journey> journeys, CancellationToken ct) =>
        VersionNumbersAsync(db, journeys.Where(j => j.CurrentVersionId is not null).Select(j => j.CurrentVersionId!.Value), ct);

    private static JourneyDto ToDto(Journey j, Dictionary<long, int> versions) =>
        new(j.Id, j.TenantId, j.Name, j.Status, Json(j.Draft), j.CurrentVersionId is { } v ? versions.GetValueOrDefault(v, j.LatestVersion) : null, j.LatestVersion,
            j.CreatedAt, j.UpdatedAt);

    private static JourneyVersionDto ToDto(JourneyVersion v) => new(v.Id, v.JourneyId, v.Version, Json(v.Graph), v.PublishedAt);

    private static InstanceDto ToDto(JourneyInstance x, int version, IReadOnlyList<StepDto>? steps) =>
        new(x.Id, x.JourneyId, version, x.ProfileId, x.State, x.CurrentNode, x.DueAt, x.Attempts, Json(x.Context), x.EnteredAt, x.FinishedAt, steps);

    private static JsonElement Json(string text)
    {
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }
}
