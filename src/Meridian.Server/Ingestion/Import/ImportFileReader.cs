using System.Text;
using Meridian.Ingestion.Tracking;

namespace Meridian.Ingestion.Import;

/// <summary>One physical line: its bytes without the line end, where it starts and where the next one starts.</summary>
internal sealed record FileLine(long Number, long Start, long End, byte[] Bytes, bool TooLong);

/// <summary>
/// Reads a file as lines of bytes, from any byte offset, with a fixed buffer: what a resumed import needs is the exact
/// byte offset of every line, which a <see cref="StreamReader"/> (decoding ahead into its own buffer) cannot tell.
/// Working on bytes is safe for the line end and for CSV's separators: in UTF-8 no byte of a multi-byte character is
/// ASCII. A line longer than the cap is returned cut (flagged <see cref="FileLine.TooLong"/>), its rest skipped unread
/// into memory, so a file without line ends cannot exhaust the process.
/// </summary>
internal sealed class LineReader
{
    private readonly Stream stream;
    private readonly int maxLineBytes;
    private readonly byte[] buffer = new byte[64 * 1024];
    private int position;
    private int length;
    private long bufferStart;
    private bool endOfStream;

    public LineReader(Stream stream, long offset, long lineNumber, int maxLineBytes)
    {
        this.stream = stream;
        this.maxLineBytes = maxLineBytes;
        stream.Seek(offset, SeekOrigin.Begin);
        bufferStart = offset;
        NextNumber = lineNumber;
        if (offset == 0)
        {
            Fill();
            // A byte order mark is not part of the first column's name.
            if (length >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF) position = 3;
        }
    }

    public long NextNumber { get; private set; }

    /// <summary>Where the next unread byte is.</summary>
    public long Offset => bufferStart + position;

    public bool AtEnd => position == length && (endOfStream || !Fill());

    public FileLine? Read()
    {
        if (AtEnd) return null;
        var start = Offset;
        var line = new List<byte[]>(1);
        var kept = 0;
        var tooLong = false;
        while (true)
        {
            if (position == length && !Fill()) break;
            var span = buffer.AsSpan(position, length - position);
            var newline = span.IndexOf((byte)'\n');
            var piece = newline < 0 ? span : span[..newline];
            if (!tooLong)
            {
                var room = maxLineBytes - kept;
                if (piece.Length > room)
                {
                    tooLong = true;
                    piece = piece[..room];
                }
                if (piece.Length > 0)
                {
                    line.Add(piece.ToArray());
                    kept += piece.Length;
                }
            }
            if (newline >= 0)
            {
                position += newline + 1;
                break;
            }
            position = length;
        }
        var bytes = line.Count == 1 ? line[0] : [.. line.SelectMany(b => b)];
        if (!tooLong && bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        return new FileLine(NextNumber++, start, Offset, bytes, tooLong);
    }

    private bool Fill()
    {
        if (endOfStream) return false;
        bufferStart += length;
        position = 0;
        length = 0;
        while (length == 0)
        {
            var read = stream.Read(buffer, 0, buffer.Length);
            if (read == 0)
            {
                endOfStream = true;
                return false;
            }
            length = read;
        }
        return true;
    }
}

/// <summary>A CSV record (one or more physical lines), or why it could not be read; <see cref="End"/> is where the next one starts.</summary>
internal sealed record CsvRecord(long Line, long End, long NextLine, string[]? Fields, string? Reason, string? Error, string Raw)
{
    public bool IsBlank => Fields is [var only] && string.IsNullOrWhiteSpace(only) && string.IsNullOrWhiteSpace(Raw);
}

/// <summary>
/// RFC 4180 records over <see cref="LineReader"/>: quoted fields may hold commas, doubled quotes and line ends. Lenient
/// where real exports are sloppy (a quote inside an unquoted field is text; <c>\r\n</c> or <c>\n</c>), strict where
/// guessing would shift columns: a quoted field that never closes, or text after its closing quote, rejects that first
/// line alone and reading resumes on the next line, so one stray quote costs one row rather than the rest of the file.
/// </summary>
internal sealed class CsvReader(LineReader lines, int maxRecordBytes)
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly List<FileLine> pending = [];
    private readonly List<string> fields = [];
    private readonly List<byte> field = [];

    public bool AtEnd => pending.Count == 0 && lines.AtEnd;

    public CsvRecord? Read()
    {
        var first = Next();
        if (first is null) return null;
        if (first.TooLong)
            return Bad(first, RejectReasons.InvalidCsv, $"the line is longer than {maxRecordBytes / 1024} KB");

        var taken = new List<FileLine> { first };
        var state = Parse(first.Bytes, continuing: false);
        var size = first.Bytes.Length;
        while (state == State.InQuotes)
        {
            var next = size > maxRecordBytes ? null : Next();
            if (next is null || next.TooLong)
            {
                if (next is not null) taken.Add(next);
                PushBack(taken.Skip(1));
                return Bad(first, RejectReasons.InvalidCsv, "a quoted field is not closed");
            }
            taken.Add(next);
            size += next.Bytes.Length + 1;
            state = Parse(next.Bytes, continuing: true);
        }
        if (state == State.Malformed)
        {
            PushBack(taken.Skip(1));
            return Bad(first, RejectReasons.InvalidCsv, "text follows the closing quote of a field (a quote inside a quoted field must be doubled)");
        }

        var last = taken[^1];
        var raw = Text(taken);
        var values = fields.ToArray();
        fields.Clear();
        return encodingError
            ? new CsvRecord(first.Number, last.End, last.Number + 1, null, RejectReasons.InvalidEncoding, "the row is not valid UTF-8", raw)
            : new CsvRecord(first.Number, last.End, last.Number + 1, values, null, null, raw);
    }

    private enum State { Complete, InQuotes, Malformed }

    private bool inQuotes;
    private bool quoteSeen;
    private bool fieldStarted;
    private bool encodingError;

    /// <summary>Feeds one physical line to the record being built; <paramref name="continuing"/>: the line break was inside quotes.</summary>
    private State Parse(byte[] line, bool continuing)
    {
        if (!continuing)
        {
            fields.Clear();
            field.Clear();
            inQuotes = quoteSeen = fieldStarted = encodingError = false;
        }
        else
        {
            field.Add((byte)'\n');
        }
        foreach (var b in line)
        {
            if (inQuotes)
            {
                if (quoteSeen)
                {
                    quoteSeen = false;
                    if (b == (byte)'"')
                    {
                        field.Add(b);
                        continue;
                    }
                    inQuotes = false;
                    if (b != (byte)',') return Fail();
                    EndField();
                    continue;
                }
                if (b == (byte)'"') quoteSeen = true;
                else field.Add(b);
                continue;
            }
            if (b == (byte)',')
            {
                EndField();
                continue;
            }
            if (b == (byte)'"' && !fieldStarted)
            {
                inQuotes = true;
                fieldStarted = true;
                continue;
            }
            fieldStarted = true;
            field.Add(b);
        }
        if (inQuotes && !quoteSeen) return State.InQuotes;
        inQuotes = quoteSeen = false;
        EndField();
        return State.Complete;
    }

    private State Fail()
    {
        fields.Clear();
        field.Clear();
        return State.Malformed;
    }

    private void EndField()
    {
        try
        {
            fields.Add(StrictUtf8.GetString(field.ToArray()));
        }
        catch (DecoderFallbackException)
        {
            encodingError = true;
            fields.Add("");
        }
        field.Clear();
        fieldStarted = false;
    }

    private FileLine? Next()
    {
        if (pending.Count == 0) return lines.Read();
        var line = pending[0];
        pending.RemoveAt(0);
        return line;
    }

    /// <summary>Lines read ahead for a record that turned out malformed are read again, as records of their own.</summary>
    private void PushBack(IEnumerable<FileLine> again) => pending.InsertRange(0, again);

    private static CsvRecord Bad(FileLine line, string reason, string error) =>
        new(line.Number, line.End, line.Number + 1, null, reason, error, Text([line]));

    /// <summary>The record as text for a reject, bad bytes replaced, so the person fixing the file sees the line.</summary>
    private static string Text(List<FileLine> taken) =>
        string.Join('\n', taken.Select(l => Encoding.UTF8.GetString(l.Bytes)));
}
