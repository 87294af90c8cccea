using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Meridian.Ingestion.Import;

/// <summary>What the API and the CLI share to create an import: reading the options, checking the file's header, naming its messages.</summary>
internal static class ImportSetup
{
    public static bool TryParseKind(string? text, out ImportKind kind) =>
        Enum.TryParse(text, ignoreCase: true, out kind) && Enum.IsDefined(kind) && !int.TryParse(text, out _);

    public static bool TryParseFormat(string? text, out ImportFormat format)
    {
        format = ImportFormat.Csv;
        switch (text?.Trim().ToLowerInvariant())
        {
            case "csv":
                return true;
            case "jsonl" or "ndjson":
                format = ImportFormat.Jsonl;
                return true;
            default:
                return false;
        }
    }

    /// <summary>The format a media type or a file name implies, if any.</summary>
    public static ImportFormat? FormatOf(string? mediaType, string? fileName)
    {
        switch (mediaType?.ToLowerInvariant())
        {
            case "text/csv" or "application/csv":
                return ImportFormat.Csv;
            case "application/x-ndjson" or "application/ndjson" or "application/jsonl" or "application/x-jsonlines" or "application/jsonlines":
                return ImportFormat.Jsonl;
        }
        return Path.GetExtension(fileName ?? "").ToLowerInvariant() switch
        {
            ".csv" => ImportFormat.Csv,
            ".jsonl" or ".ndjson" => ImportFormat.Jsonl,
            _ => null,
        };
    }

    public static ImportFormat DefaultFormat(ImportKind kind) => kind == ImportKind.Events ? ImportFormat.Jsonl : ImportFormat.Csv;

    /// <summary>Customers and orders are CSV exports; events are Segment messages, one JSON object a line.</summary>
    public static string? CheckCombination(ImportKind kind, ImportFormat format) => (kind, format) switch
    {
        (ImportKind.Events, ImportFormat.Csv) => "An events import reads JSON lines (format jsonl), one Segment message a line.",
        (not ImportKind.Events, ImportFormat.Jsonl) => $"A {kind.ToString().ToLowerInvariant()} import reads a CSV file (format csv).",
        _ => null,
    };

    /// <summary>
    /// For CSV, reads the file's header and fixes the mapping every column will follow (JSON, stored with the job); for
    /// JSONL there is none. The error names the field to blame: <c>file</c> or <c>map</c>.
    /// </summary>
    public static (string? Mapping, string? Field, string? Error) Plan(ImportKind kind, ImportFormat format, string path, IReadOnlyDictionary<string, string> overrides)
    {
        if (format == ImportFormat.Jsonl)
            return overrides.Count > 0 ? (null, "map", "A JSON lines import takes each message as it is: it has no column mapping.") : (null, null, null);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        var (header, error) = ImportReader.ReadHeader(new CsvReader(new LineReader(stream, 0, 1, ImportReader.MaxCsvRecordBytes), ImportReader.MaxCsvRecordBytes));
        if (header is null) return (null, "file", error);
        var (plan, planError) = CsvPlan.Build(kind, header.Fields!, overrides);
        return plan is null ? (null, "map", planError) : (JsonSerializer.Serialize(plan.Mapping), null, null);
    }

    /// <summary>
    /// Row messages are named <c>imp-{hash}-{line}</c>, the hash over the file's content, the kind and the mapping: the
    /// same file imported the same way gives the same ids (duplicates, dropped), a corrected mapping gives new ones.
    /// </summary>
    public static string MessageIdPrefix(string fileSha256, ImportKind kind, string? mapping)
    {
        var canonical = $"{fileSha256}\n{kind}\n";
        if (mapping is not null)
            canonical += string.Join('\n', JsonSerializer.Deserialize<Dictionary<string, string>>(mapping)!
                .OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => m.Key + "=" + m.Value));
        return "imp-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))[..24] + "-";
    }

    public static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
    }
}
