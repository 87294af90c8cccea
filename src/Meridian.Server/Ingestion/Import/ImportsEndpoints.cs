using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Sources;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Meridian.Ingestion.Import;

internal sealed record ImportDto(
    long Id, long BrandId, long SourceId, ImportKind Kind, ImportFormat Format, string? FileName, long FileBytes,
    IReadOnlyDictionary<string, string>? Mapping, ImportStatus Status, long RowsRead, long Accepted, long Duplicates, long Rejected,
    long Skipped, long BytesRead, double Percent, long NextLine, int Attempts, string? Error, string CreatedBy, DateTime CreatedAt,
    DateTime? StartedAt, DateTime? FinishedAt)
{
    public static ImportDto From(ImportJob j) => new(
        j.Id, j.TenantId, j.SourceId, j.Kind, j.Format, j.FileName, j.FileBytes,
        j.Mapping is null ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(j.Mapping), j.Status, j.RowsRead, j.Accepted,
        j.Duplicates, j.Rejected, j.Skipped, j.NextOffset, ImportProgress.Of(j).Percent, j.NextLine, j.Attempts, j.Error, j.CreatedBy,
        j.CreatedAt, j.StartedAt, j.FinishedAt);
}

/// <summary>The options of an upload, from the query string (or, in a multipart body, from form fields).</summary>
internal sealed record CreateImportParameters
{
    /// <summary><c>customers</c>, <c>orders</c> or <c>events</c>.</summary>
    [FromQuery(Name = "kind")] public string? Kind { get; init; }
    /// <summary><c>csv</c> or <c>jsonl</c>; by default from the content type or the file name, else csv (jsonl for events).</summary>
    [FromQuery(Name = "format")] public string? Format { get; init; }
    /// <summary>The brand's source the rows are stored under (e.g. one with channel <c>import</c> or <c>pos</c>).</summary>
    [FromQuery(Name = "sourceId")] public long? SourceId { get; init; }
    [FromQuery(Name = "fileName")] public string? FileName { get; init; }
    /// <summary>CSV column mapping, repeated: <c>map=member_no=user_id</c>.</summary>
    [FromQuery(Name = "map")] public string[]? Map { get; init; }
}

/// <summary>
/// Bulk import: a CSV or JSON lines file is streamed to the data directory (never held in memory) and imported in the
/// background by <see cref="ImportWorker"/>; <c>GET</c> follows its progress. Every row becomes a Segment message stored
/// through the same <see cref="EventStore"/> as the tracking API, so identity resolution sees imported and live data alike.
/// </summary>
internal static class ImportsEndpoints
{
    // Room for the multipart envelope (boundaries, part headers, small form fields) around a file of the maximum size.
    private const long MultipartOverhead = 1024 * 1024;
    private const int MaxFormFieldChars = 64 * 1024;

    public static IEndpointRouteBuilder MapImports(this IEndpointRouteBuilder app)
    {
        var maxBytes = app.ServiceProvider.GetRequiredService<IOptions<ImportOptions>>().Value.MaxFileBytes;
        var imports = app.MapGroup("/api/v1/imports").WithTags("Imports");
        imports.MapGet("/", List).RequireAuthorization(Permissions.SourcesRead);
        imports.MapGet("/{id}", Get).RequireAuthorization(Permissions.SourcesRead);
        // The one route past the global 1 MiB body limit: routing raises Kestrel's limit from this metadata, and the
        // early Content-Length check in HostingModule reads it too.
        imports.MapPost("/", Create).RequireAuthorization(Permissions.SourcesWrite).RequireBrand()
            .WithMetadata(new RequestSizeLimitAttribute(maxBytes + MultipartOverhead), new SkipAdmissionAttribute())
            .WithDescription("""
                Upload a file to import: the raw body (`Content-Type: text/csv` or `application/x-ndjson`) with the options in the
                query string, or `multipart/form-data` with one file part and the options as fields. Options: `kind` (customers,
                orders, events), `format` (csv, jsonl), `sourceId`, `map` (repeated `header=field`), `fileName`. Answers 202 with the
                import; follow it with `GET /api/v1/imports/{id}`.
                """);
        return app;
    }

    public static async Task<Ok<Page<ImportDto>>> List([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<ImportJob>().Where(j => j.Id > page.After).OrderBy(j => j.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(ImportDto.From).ToList(), j => j.Id));
    }

    public static async Task<Results<Ok<ImportDto>, ProblemHttpResult>> Get(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<ImportJob>().SingleOrDefaultAsync(j => j.Id == id, ct) is { } job
            ? TypedResults.Ok(ImportDto.From(job))
            : Problems.NotFound($"Import {id}");

    private sealed record Upload(string Path, long Bytes, string Sha256);

    private sealed class Options
    {
        public string? Kind;
        public string? Format;
        public string? SourceId;
        public string? FileName;
        public List<string> Map = [];
    }

    private sealed record Checked(ImportKind Kind, ImportFormat Format, Source Source, Dictionary<string, string> Map, string? FileName);

    public static async Task<Results<Accepted<ImportDto>, ProblemHttpResult, ValidationProblem>> Create(
        HttpContext http, [AsParameters] CreateImportParameters query, MeridianDb db, TenantScope tenant, AuditLog audit, ImportSignal signal,
        IOptions<ImportOptions> options, TimeProvider time, CancellationToken ct)
    {
        var opts = options.Value;
        var given = new Options
        {
            Kind = query.Kind, Format = query.Format, SourceId = query.SourceId?.ToString(System.Globalization.CultureInfo.InvariantCulture),
            FileName = query.FileName, Map = [.. query.Map ?? []],
        };
        MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var media);
        var mediaType = media?.MediaType.Value?.ToLowerInvariant();

        Upload? upload = null;
        Checked? request;
        try
        {
            if (mediaType == "multipart/form-data")
            {
                var boundary = HeaderUtilities.RemoveQuotes(media!.Boundary).Value;
                if (string.IsNullOrEmpty(boundary)) return Problems.Validation("file", "The multipart body has no boundary in its Content-Type.");
                var reader = new MultipartReader(boundary, http.Request.Body);
                try
                {
                    while (await reader.ReadNextSectionAsync(ct) is { } section)
                    {
                        if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                            || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                            return Problems.Validation("file", "Every part of the multipart body must be form-data.");
                        if (disposition.IsFileDisposition())
                        {
                            if (upload is not null) return Problems.Validation("file", "Send one file per import.");
                            given.FileName ??= disposition.FileNameStar.Value ?? disposition.FileName.Value;
                            given.Format ??= ImportSetup.FormatOf(section.ContentType?.Split(';')[0].Trim(), given.FileName)?.ToString();
                            (upload, var tooLarge) = await SaveAsync(section.Body, opts, ct);
                            if (tooLarge is not null) return tooLarge;
                            continue;
                        }
                        var value = await ReadFieldAsync(section.Body, ct);
                        if (value is null) return Problems.Validation(disposition.Name.Value ?? "form", $"A form field may be at most {MaxFormFieldChars / 1024} KB.");
                        switch (HeaderUtilities.RemoveQuotes(disposition.Name).Value)
                        {
                            case "kind": given.Kind = value; break;
                            case "format": given.Format = value; break;
                            case "sourceId": given.SourceId = value; break;
                            case "fileName": given.FileName = value; break;
                            case "map": given.Map.Add(value); break;
                        }
                    }
                }
                catch (Exception ex) when (ex is InvalidDataException or IOException && ex is not BadHttpRequestException)
                {
                    return Problems.Validation("file", "The multipart body is malformed: " + ex.Message);
                }
                if (upload is null) return Problems.Validation("file", "The multipart body has no file part (a part with a filename).");
                var (ok, problem) = await CheckAsync(given, null, db, tenant, ct);
                if (problem is not null) return problem;
                request = ok;
            }
            else
            {
                // A raw body: everything is checked before a byte of a possibly huge file is read.
                if (mediaType is not null && mediaType != "application/octet-stream" && mediaType != "text/plain" && ImportSetup.FormatOf(mediaType, null) is null)
                    return TypedResults.Problem(statusCode: 415, type: ProblemTypes.UnsupportedMediaType, title: "Unsupported media type.",
                        detail: "Send the file as text/csv, application/x-ndjson (JSON lines) or in a multipart/form-data body.");
                var (ok, problem) = await CheckAsync(given, ImportSetup.FormatOf(mediaType, given.FileName), db, tenant, ct);
                if (problem is not null) return problem;
                request = ok;
                (upload, var tooLarge) = await SaveAsync(http.Request.Body, opts, ct);
                if (tooLarge is not null) return tooLarge;
            }

            if (upload!.Bytes == 0) return Problems.Validation("file", "The file is empty.");
            var (mapping, field, error) = ImportSetup.Plan(request!.Kind, request.Format, upload.Path, request.Map);
            if (error is not null) return Problems.Validation(field!, error);

            var final = Path.ChangeExtension(upload.Path, request.Format == ImportFormat.Csv ? ".csv" : ".jsonl");
            File.Move(upload.Path, final);
            upload = upload with { Path = final };
            var now = time.GetUtcNow().UtcDateTime;
            var job = new ImportJob
            {
                TenantId = tenant.Brand, SourceId = request.Source.Id, Kind = request.Kind, Format = request.Format, Mapping = mapping,
                FileName = request.FileName, FilePath = upload.Path, OwnsFile = true, FileBytes = upload.Bytes, FileSha256 = upload.Sha256,
                MessageIdPrefix = ImportSetup.MessageIdPrefix(upload.Sha256, request.Kind, mapping), Status = ImportStatus.Queued,
                NextLine = 1, CreatedBy = $"key:{http.Caller().KeyName}", CreatedAt = now,
            };
            db.Add(job);
            audit.Record(job.TenantId, () => new AuditChange("import.created", "import", job.Id, null, ImportDto.From(job)));
            await db.SaveChangesAsync(ct);
            upload = null; // the job owns the file now
            signal.Notify();
            return TypedResults.Accepted($"/api/v1/imports/{job.Id}", ImportDto.From(job));
        }
        finally
        {
            if (upload is not null) File.Delete(upload.Path);
        }
    }

    /// <summary>Checks the options: validation problems first (400), then the source (404 when the brand has none with that id).</summary>
    private static async Task<(Checked?, Results<Accepted<ImportDto>, ProblemHttpResult, ValidationProblem>?)> CheckAsync(
        Options given, ImportFormat? implied, MeridianDb db, TenantScope tenant, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!ImportSetup.TryParseKind(given.Kind, out var kind))
            errors["kind"] = [given.Kind is null ? "Name the kind of rows: customers, orders or events." : $"'{given.Kind}' is not customers, orders or events."];
        var format = implied ?? ImportSetup.DefaultFormat(kind);
        if (given.Format is not null && !ImportSetup.TryParseFormat(given.Format, out format))
            errors["format"] = [$"'{given.Format}' is not csv or jsonl."];
        else if (!errors.ContainsKey("kind") && ImportSetup.CheckCombination(kind, format) is { } combination)
            errors["format"] = [combination];
        long sourceId = 0;
        if (given.SourceId is null) errors["sourceId"] = ["Name the source to import into (sourceId)."];
        else if (!long.TryParse(given.SourceId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out sourceId))
            errors["sourceId"] = [$"'{given.SourceId}' is not a source id."];
        var (map, mapError) = CsvPlan.ParsePairs(given.Map);
        if (mapError is not null) errors["map"] = [mapError];
        var fileName = given.FileName is null ? null : Path.GetFileName(given.FileName.Replace('\\', '/'));
        if (fileName is { Length: > 255 }) errors["fileName"] = ["A file name may be at most 255 characters."];
        if (errors.Count > 0) return (null, TypedResults.ValidationProblem(errors, type: ProblemTypes.Validation, title: "One or more fields are invalid."));

        var source = await db.Set<Source>().SingleOrDefaultAsync(s => s.Id == sourceId && s.TenantId == tenant.Brand, ct);
        if (source is null) return (null, Problems.NotFound($"Source {sourceId}"));
        if (!source.Enabled) return (null, Problems.Conflict($"Source {sourceId} is disabled: enable it before importing into it."));
        return (new Checked(kind, format, source, map, fileName), null);
    }

    /// <summary>Streams a body to a new file in the upload folder, hashing it on the way; too large: deleted and 413.</summary>
    private static async Task<(Upload?, ProblemHttpResult?)> SaveAsync(Stream body, ImportOptions opts, CancellationToken ct)
    {
        var folder = Directory.CreateDirectory(Path.GetFullPath(opts.Directory)).FullName;
        var path = Path.Combine(folder, Guid.CreateVersion7().ToString("N") + ".part");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
        long total = 0;
        var keep = false;
        try
        {
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.Asynchronous))
            {
                int read;
                while ((read = await body.ReadAsync(buffer, ct)) > 0)
                {
                    total += read;
                    if (total > opts.MaxFileBytes)
                        return (null, TypedResults.Problem(statusCode: 413, type: ProblemTypes.PayloadTooLarge, title: "The request body is too large.",
                            detail: $"An import file may be at most {opts.MaxFileBytes} bytes."));
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), ct);
                }
            }
            keep = true;
            return (new Upload(path, total, Convert.ToHexStringLower(hash.GetHashAndReset())), null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (!keep) File.Delete(path);
        }
    }

    private static async Task<string?> ReadFieldAsync(Stream body, CancellationToken ct)
    {
        using var reader = new StreamReader(body, Encoding.UTF8);
        var chars = new char[MaxFormFieldChars + 1];
        var length = 0;
        int read;
        while (length < chars.Length && (read = await reader.ReadAsync(chars.AsMemory(length), ct)) > 0) length += read;
        return length > MaxFormFieldChars ? null : new string(chars, 0, length);
    }
}
