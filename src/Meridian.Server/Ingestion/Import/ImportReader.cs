using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Ingestion.Tracking;

namespace Meridian.Ingestion.Import;

/// <summary>
/// One row of a file, read: the message it became or why it was rejected, or nothing (a blank line, a row of another
/// brand); with where the next row starts, which is what progress records.
/// </summary>
internal readonly record struct ImportItem(long Line, long End, long NextLine, AcceptedMessage? Accepted, RejectedMessage? Rejected, bool Skipped)
{
    public bool Counts => Accepted is not null || Rejected is not null || Skipped;
}

/// <summary>The import cannot go on whatever the attempt (its source was deleted, its file no longer matches): it fails.</summary>
internal sealed class ImportFailedException(string message) : Exception(message);

/// <summary>
/// Turns the rows of an import's file, from where the job stands, into Segment messages validated by
/// <see cref="SegmentMessages.Read"/> exactly as the tracking API validates them: a customer row becomes an
/// <c>identify</c>, an order row a <c>track</c> (<c>Order Completed</c> or <c>Order Refunded</c>), a JSONL line is the
/// message itself. Holds one row at a time, whatever the size of the file.
/// </summary>
internal sealed class ImportReader
{
    public const int MaxCsvRecordBytes = 256 * 1024;
    private const int MaxJsonLineBytes = 64 * 1024;
    private const int MaxRejectPayloadChars = 32 * 1024;
    /// <summary><c>context.library.name</c> of every imported message: identifier rules can tell imported rows by it.</summary>
    internal const string Library = "meridian-import";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    // Stored payloads are read by people and by the profile builder, never embedded in HTML: keep CJK readable.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions NodeOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };
    private static readonly string[] DateFormats = ["yyyy-MM-dd", "yyyy-M-d", "yyyy/MM/dd", "yyyy/M/d", "yyyy.MM.dd", "yyyyMMdd"];

    private readonly ImportJob job;
    private readonly string brandSlug;
    private readonly CsvReader? csv;
    private readonly CsvPlan? plan;
    private readonly LineReader? jsonLines;
    private readonly ArrayBufferWriter<byte> buffer = new(2048);
    private readonly Utf8JsonWriter json;

    private ImportReader(ImportJob job, string brandSlug, CsvReader? csv, CsvPlan? plan, LineReader? jsonLines)
    {
        this.job = job;
        this.brandSlug = brandSlug;
        this.csv = csv;
        this.plan = plan;
        this.jsonLines = jsonLines;
        json = new Utf8JsonWriter(buffer, WriterOptions);
    }

    /// <summary>Reads the header (CSV) and positions the reader where the job's last committed chunk ended.</summary>
    public static ImportReader Open(ImportJob job, Stream stream, string brandSlug)
    {
        if (job.Format == ImportFormat.Jsonl)
            return new ImportReader(job, brandSlug, null, null, new LineReader(stream, job.NextOffset, job.NextLine, MaxJsonLineBytes));

        var reader = new CsvReader(new LineReader(stream, 0, 1, MaxCsvRecordBytes), MaxCsvRecordBytes);
        var (header, error) = ReadHeader(reader);
        if (header is null) throw new ImportFailedException(error!);
        var mapping = JsonSerializer.Deserialize<Dictionary<string, string>>(job.Mapping ?? "{}") ?? [];
        var (plan, planError) = CsvPlan.Build(job.Kind, header.Fields!, mapping);
        if (plan is null) throw new ImportFailedException($"The file no longer matches its mapping: {planError}");
        if (job.NextOffset > header.End)
            reader = new CsvReader(new LineReader(stream, job.NextOffset, job.NextLine, MaxCsvRecordBytes), MaxCsvRecordBytes);
        return new ImportReader(job, brandSlug, reader, plan, null);
    }

    /// <summary>The header of a CSV file (its first non-blank line), or why there is none.</summary>
    public static (CsvRecord? Header, string? Error) ReadHeader(CsvReader reader)
    {
        CsvRecord? header;
        do header = reader.Read();
        while (header is { IsBlank: true });
        if (header is null) return (null, "The file is empty: a CSV import needs a header line naming the columns.");
        if (header.Fields is null) return (null, $"The header (line {header.Line}) cannot be read: {header.Error}.");
        return (header, null);
    }

    public bool AtEnd => csv?.AtEnd ?? jsonLines!.AtEnd;

    /// <summary>The next row, or null at the end of the file.</summary>
    public ImportItem? Next(DateTime receivedAt) => csv is not null ? NextCsv(receivedAt) : NextJson(receivedAt);

    private ImportItem? NextCsv(DateTime receivedAt)
    {
        var record = csv!.Read();
        if (record is null) return null;
        if (record.IsBlank) return new ImportItem(record.Line, record.End, record.NextLine, null, null, false);
        if (record.Fields is not { } fields) return Reject(record, record.Reason!, record.Error!);
        if (fields.Length != plan!.Columns.Length)
            return Reject(record, RejectReasons.InvalidCsv, $"the row has {fields.Length} fields; the header has {plan.Columns.Length}");
        if (Text(fields, plan.IndexOf(FieldRole.Brand)) is { } brand && !brand.Trim().Equals(brandSlug, StringComparison.OrdinalIgnoreCase))
            return new ImportItem(record.Line, record.End, record.NextLine, null, null, true);

        buffer.ResetWrittenCount();
        json.Reset(buffer);
        var error = job.Kind == ImportKind.Customers ? WriteIdentify(record, fields) : WriteTrack(record, fields);
        if (error is { } e) return Reject(record, e.Reason, e.Detail);
        json.Flush();

        var raw = Encoding.UTF8.GetString(buffer.WrittenSpan);
        using var document = JsonDocument.Parse(buffer.WrittenMemory, DocumentOptions);
        var (accepted, rejected) = SegmentMessages.Read(document.RootElement, raw, null, LineIndex(record.Line), receivedAt, null);
        return rejected is not null
            ? Reject(record, rejected.Reason, rejected.Detail)
            : new ImportItem(record.Line, record.End, record.NextLine, accepted, null, false);
    }

    private (string Reason, string Detail)? WriteIdentify(CsvRecord record, string[] fields)
    {
        var userId = Text(fields, plan!.IndexOf(FieldRole.UserId))?.Trim();
        var anonymousId = Text(fields, plan.IndexOf(FieldRole.AnonymousId))?.Trim();
        if (userId is null && anonymousId is null)
            return (RejectReasons.MissingIdentity, $"the row has no {IdentityColumns()}");
        var (timestamp, timestampError) = Timestamp(fields);
        if (timestampError is not null) return timestampError;

        // Checked before anything is written, so that a rejected row leaves no half-written message behind.
        var traits = new List<(string Name, string Value)>();
        for (var i = 0; i < plan.Columns.Length; i++)
        {
            if (plan.Columns[i] is not { Role: FieldRole.Trait } column || Text(fields, i) is not { } value) continue;
            var (normalised, error) = Check(plan.Header[i], column.Check, value);
            if (error is not null) return (RejectReasons.InvalidDate, error);
            traits.Add((column.Name!, normalised));
        }

        json.WriteStartObject();
        json.WriteString("type", "identify");
        json.WriteString("messageId", job.MessageIdPrefix + record.Line.ToString(CultureInfo.InvariantCulture));
        if (userId is not null) json.WriteString("userId", userId);
        if (anonymousId is not null) json.WriteString("anonymousId", anonymousId);
        if (timestamp is not null) json.WriteString("timestamp", timestamp);
        json.WriteStartObject("traits");
        foreach (var (name, value) in traits) json.WriteString(name, value);
        json.WriteEndObject();
        WriteContext(record.Line, []);
        json.WriteEndObject();
        return null;
    }

    private (string Reason, string Detail)? WriteTrack(CsvRecord record, string[] fields)
    {
        var orderColumn = plan!.IndexOf(FieldRole.OrderId);
        var orderId = Text(fields, orderColumn)?.Trim();
        if (orderId is null) return (RejectReasons.MissingOrderId, $"the row has no order id ('{plan.Header[orderColumn]}')");

        var statusColumn = plan.IndexOf(FieldRole.Status);
        var status = Text(fields, statusColumn)?.Trim().ToLowerInvariant();
        var eventName = status switch
        {
            null or "completed" or "complete" or "paid" or "order completed" => "Order Completed",
            "refunded" or "refund" or "returned" or "order refunded" => "Order Refunded",
            _ => null,
        };
        if (eventName is null)
            return (RejectReasons.InvalidField, $"{plan.Header[statusColumn]}: '{Cut(status!)}' is neither completed nor refunded");

        var contextTraits = new List<(string Name, string Value)>();
        for (var i = 0; i < plan.Columns.Length; i++)
            if (plan.Columns[i] is { Role: FieldRole.ContextTrait } column && Text(fields, i) is { } value)
                contextTraits.Add((column.Name!, value));

        var userId = Text(fields, plan.IndexOf(FieldRole.UserId))?.Trim();
        var anonymousId = Text(fields, plan.IndexOf(FieldRole.AnonymousId))?.Trim();
        // A receipt that names the shopper only by phone or e-mail is still theirs: the message gets an id of its own
        // (the order's), and the phone or e-mail goes in context.traits, where identity resolution reads it.
        if (userId is null && anonymousId is null)
        {
            if (!contextTraits.Any(t => t.Name is "phone" or "email"))
                return (RejectReasons.MissingIdentity, $"the row has no {IdentityColumns()}");
            anonymousId = "order:" + orderId;
        }
        var (timestamp, timestampError) = Timestamp(fields);
        if (timestampError is not null) return timestampError;

        long? total = null;
        var totalColumn = plan.IndexOf(FieldRole.Total);
        if (Text(fields, totalColumn)?.Trim() is { } totalText)
        {
            if (!long.TryParse(totalText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed))
                return (RejectReasons.InvalidNumber, $"{plan.Header[totalColumn]}: '{Cut(totalText)}' is not a whole amount in minor units (fen)");
            total = parsed;
        }
        var productsColumn = plan.IndexOf(FieldRole.Products);
        var products = Text(fields, productsColumn);
        if (products is not null && !IsJsonArray(products))
            return (RejectReasons.InvalidField, $"{plan.Header[productsColumn]}: not a JSON array of products");

        json.WriteStartObject();
        json.WriteString("type", "track");
        json.WriteString("event", eventName);
        json.WriteString("messageId", job.MessageIdPrefix + record.Line.ToString(CultureInfo.InvariantCulture));
        if (userId is not null) json.WriteString("userId", userId);
        if (anonymousId is not null) json.WriteString("anonymousId", anonymousId);
        if (timestamp is not null) json.WriteString("timestamp", timestamp);
        json.WriteStartObject("properties");
        for (var i = 0; i < plan.Columns.Length; i++)
        {
            switch (plan.Columns[i].Role)
            {
                case FieldRole.OrderId:
                    json.WriteString("order_id", orderId);
                    break;
                case FieldRole.Total when total is { } amount:
                    json.WriteNumber("total", amount);
                    break;
                case FieldRole.Currency when Text(fields, i) is { } currency:
                    json.WriteString("currency", currency.Trim());
                    break;
                case FieldRole.Products when products is not null:
                    json.WritePropertyName("products");
                    json.WriteRawValue(products, skipInputValidation: true);
                    break;
                case FieldRole.Property when Text(fields, i) is { } value:
                    json.WriteString(plan.Columns[i].Name!, value);
                    break;
            }
        }
        json.WriteEndObject();
        WriteContext(record.Line, contextTraits);
        json.WriteEndObject();
        return null;
    }

    private void WriteContext(long line, List<(string Name, string Value)> traits)
    {
        json.WriteStartObject("context");
        if (traits.Count > 0)
        {
            json.WriteStartObject("traits");
            foreach (var (name, value) in traits) json.WriteString(name, value);
            json.WriteEndObject();
        }
        json.WriteStartObject("library");
        json.WriteString("name", Library);
        json.WriteEndObject();
        json.WriteStartObject("import");
        json.WriteNumber("id", job.Id);
        json.WriteNumber("line", line);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>The row's timestamp column, checked: kept as written (with its offset) once it is known to be a date and time.</summary>
    private (string? Value, (string Reason, string Detail)? Error) Timestamp(string[] fields)
    {
        var column = plan!.IndexOf(FieldRole.Timestamp);
        if (Text(fields, column)?.Trim() is not { } text) return (null, null);
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) && parsed.Year is >= 1970 and <= 9000
            ? (text, null)
            : (null, (RejectReasons.InvalidTimestamp, $"{plan.Header[column]}: '{Cut(text)}' is not an ISO 8601 date and time"));
    }

    private static (string Value, string? Error) Check(string header, FieldCheck check, string value)
    {
        switch (check)
        {
            case FieldCheck.Date:
                return DateOnly.TryParseExact(value.Trim(), DateFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
                    ? (date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), null)
                    : (value, $"{header}: '{Cut(value)}' is not a date (yyyy-MM-dd)");
            case FieldCheck.DateTime:
                return DateTimeOffset.TryParse(value.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out _)
                    ? (value.Trim(), null)
                    : (value, $"{header}: '{Cut(value)}' is not an ISO 8601 date and time");
            default:
                return (value, null);
        }
    }

    private ImportItem? NextJson(DateTime receivedAt)
    {
        var line = jsonLines!.Read();
        if (line is null) return null;
        ImportItem Bad(string reason, string detail, string? messageId, string payload) => new(line.Number, line.End, line.Number + 1, null,
            new RejectedMessage(LineIndex(line.Number), messageId, reason, $"Line {line.Number}: {detail}", Cut(payload, MaxRejectPayloadChars)), false);

        if (line.TooLong)
            return Bad(RejectReasons.EventTooLarge, $"A message may be at most {SegmentMessages.MaxEventBytes / 1024} KB.", null, Encoding.UTF8.GetString(line.Bytes));
        string text;
        try
        {
            text = StrictUtf8.GetString(line.Bytes);
        }
        catch (DecoderFallbackException)
        {
            return Bad(RejectReasons.InvalidEncoding, "The line is not valid UTF-8.", null, Encoding.UTF8.GetString(line.Bytes));
        }
        if (string.IsNullOrWhiteSpace(text)) return new ImportItem(line.Number, line.End, line.Number + 1, null, null, false);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, DocumentOptions);
            // A line without a messageId gets one from its place in the file, so that reading it again is a duplicate.
            if (document.RootElement.ValueKind == JsonValueKind.Object && !HasMessageId(document.RootElement))
            {
                var node = JsonNode.Parse(text)!.AsObject();
                node["messageId"] = job.MessageIdPrefix + line.Number.ToString(CultureInfo.InvariantCulture);
                text = node.ToJsonString(NodeOptions);
                document.Dispose();
                document = JsonDocument.Parse(text, DocumentOptions);
            }
        }
        catch (JsonException)
        {
            return Bad(RejectReasons.InvalidJson, "The line is not valid JSON.", null, text);
        }
        using var _ = document;
        var (accepted, rejected) = SegmentMessages.Read(document.RootElement, text, null, LineIndex(line.Number), receivedAt, null);
        if (rejected is not null) return Bad(rejected.Reason, rejected.Detail, rejected.MessageId, text);

        // Imported history was not sent just now: its timestamp is taken as written, not corrected by sentAt for clock skew.
        if (SegmentMessages.TryDate(document.RootElement, "timestamp", out var timestamp)
            && SegmentMessages.TryDate(document.RootElement, "originalTimestamp", out var original) && (timestamp ?? original) is { } at)
            accepted = accepted! with { Timestamp = at };
        return new ImportItem(line.Number, line.End, line.Number + 1, accepted, null, false);
    }

    /// <summary>An empty or null messageId counts as none: stored as is, every such line would be one duplicate of the first.</summary>
    private static bool HasMessageId(JsonElement message) =>
        message.TryGetProperty("messageId", out var id)
        && (id.ValueKind == JsonValueKind.String ? id.GetString()!.Length > 0 : id.ValueKind != JsonValueKind.Null);

    private static bool IsJsonArray(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text, DocumentOptions);
            return document.RootElement.ValueKind == JsonValueKind.Array;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private ImportItem Reject(CsvRecord record, string reason, string detail) => new(record.Line, record.End, record.NextLine, null,
        new RejectedMessage(LineIndex(record.Line), job.MessageIdPrefix + record.Line.ToString(CultureInfo.InvariantCulture), reason,
            $"Line {record.Line}: {detail}", Cut(record.Raw, MaxRejectPayloadChars)), false);

    private string IdentityColumns()
    {
        var names = plan!.Columns.Select((c, i) => (c, i))
            .Where(x => x.c.Role is FieldRole.UserId or FieldRole.AnonymousId || x.c is { Role: FieldRole.ContextTrait, Name: "phone" or "email" })
            .Select(x => $"'{plan.Header[x.i]}'");
        return "identity (" + string.Join(", ", names) + " are empty)";
    }

    private static string? Text(string[] fields, int column) => column >= 0 && !string.IsNullOrWhiteSpace(fields[column]) ? fields[column] : null;

    private static int LineIndex(long line) => line > int.MaxValue ? int.MaxValue : (int)line;

    private static string Cut(string text, int max = 100) => text.Length <= max ? text : text[..max] + "…";
}
