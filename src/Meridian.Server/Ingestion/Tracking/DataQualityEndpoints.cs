using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Sources;
using Meridian.Platform.Access;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Ingestion.Tracking;

/// <param name="IdentifierFailures">Identifiers by type that came in accepted events but could not be normalised (counted as identity resolution reads them).</param>
public sealed record SourceDayDto(string Day, long Accepted, long Duplicates, long Rejected, double DuplicateRate,
    IReadOnlyDictionary<string, long> RejectedByReason, IReadOnlyDictionary<string, long> IdentifierFailures, DateTime? LastEventAt);

public sealed record SourceQualityDto(long SourceId, string Name, Channel Channel, bool Enabled, DateTime? LastEventAt, IReadOnlyList<SourceDayDto> Days);

/// <summary>The rejects themselves; their payloads hold personal data, so they are shown only with <c>pii.read</c>.</summary>
public sealed record RejectedEventDto(long Id, DateTime ReceivedAt, string Reason, string Detail, string? MessageId, int? BatchIndex, string? Payload);

/// <summary>Data quality per source and day: accepted, duplicates, rejected by reason, freshness; and the rejects to inspect.</summary>
public static class DataQualityEndpoints
{
    public static IEndpointRouteBuilder MapDataQuality(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/data-quality", Report).WithTags("Data quality").RequireAuthorization(Permissions.SourcesRead);
        app.MapGet("/api/v1/sources/{id}/rejects", Rejects).WithTags("Data quality").RequireAuthorization(Permissions.EventsRead);
        return app;
    }

    public static async Task<Results<Ok<List<SourceQualityDto>>, ValidationProblem>> Report(
        [FromQuery, Range(1, 366)] int? days, TimeProvider time, MeridianDb db, CancellationToken ct)
    {
        var from = time.GetUtcNow().UtcDateTime.Date.AddDays(1 - (days ?? 30)).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var sources = await db.Set<Source>().OrderBy(s => s.Id).ToListAsync(ct);
        var stats = await db.Set<SourceDailyStats>().Where(s => string.Compare(s.Day, from) >= 0).ToListAsync(ct);
        var reasons = await db.Set<SourceDailyRejections>().Where(s => string.Compare(s.Day, from) >= 0).ToListAsync(ct);
        var failures = await db.Set<SourceDailyIdentifierFailures>().Where(s => string.Compare(s.Day, from) >= 0).ToListAsync(ct);
        return TypedResults.Ok(sources.Select(source =>
        {
            var rows = stats.Where(s => s.SourceId == source.Id).OrderBy(s => s.Day).Select(s => new SourceDayDto(
                s.Day, s.Accepted, s.Duplicates, s.Rejected,
                s.Accepted + s.Duplicates == 0 ? 0 : (double)s.Duplicates / (s.Accepted + s.Duplicates),
                reasons.Where(r => r.SourceId == source.Id && r.Day == s.Day).ToDictionary(r => r.Reason, r => r.Count),
                failures.Where(f => f.SourceId == source.Id && f.Day == s.Day).ToDictionary(f => f.IdentifierType, f => f.Count),
                s.LastEventAt)).ToList();
            return new SourceQualityDto(source.Id, source.Name, source.Channel, source.Enabled, rows.Max(r => r.LastEventAt), rows);
        }).ToList());
    }

    public static async Task<Results<Ok<Page<RejectedEventDto>>, ProblemHttpResult>> Rejects(
        long id, [AsParameters] PageRequest page, [FromQuery] string? reason, HttpContext http, MeridianDb db, CancellationToken ct)
    {
        if (!await db.Set<Source>().AnyAsync(s => s.Id == id, ct)) return Problems.NotFound($"Source {id}");
        var pii = http.Caller().Permissions.Contains(Permissions.PiiRead);
        var query = db.Set<RejectedEvent>().Where(r => r.SourceId == id && r.Id > page.After);
        if (reason is not null) query = query.Where(r => r.Reason == reason);
        var rows = await query.OrderBy(r => r.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(r => new RejectedEventDto(r.Id, r.ReceivedAt, r.Reason, r.Detail, r.MessageId, r.BatchIndex,
            pii ? r.Payload : null)).ToList(), r => r.Id));
    }
}
