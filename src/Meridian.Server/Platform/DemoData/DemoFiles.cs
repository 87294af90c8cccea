using System.Text;

namespace Meridian.Platform.DemoData;

/// <summary>
/// Writes a JSON-lines file sorted by timestamp without holding the file in memory: people are generated one after
/// another but their events interleave in time, so lines are buffered up to a byte budget, spilled as sorted runs to a
/// temporary folder, and merged when the file is complete (an external merge sort). Ties keep the order lines were
/// added in, so the result does not depend on the budget.
/// </summary>
internal sealed class TimeSortedLines(string path, long budgetBytes) : IDisposable
{
    // Enough runs at once to merge a million customers in one pass with the default budget, few enough file handles.
    private const int MaxFanIn = 64;

    // What a buffered line costs beyond its bytes (array header, list slot), so the budget tracks real memory.
    private const int LineOverhead = 48;

    private readonly string _runFolder = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "." + Path.GetFileName(path) + ".runs");
    private readonly List<Line> _buffer = [];
    private readonly Queue<string> _runs = new();
    private long _bufferedBytes;
    private long _sequence;
    private int _runNumber;

    public long Count { get; private set; }

    public void Add(long ticks, ReadOnlySpan<byte> utf8Line)
    {
        _buffer.Add(new Line(ticks, _sequence++, utf8Line.ToArray()));
        _bufferedBytes += utf8Line.Length + LineOverhead;
        Count++;
        if (_bufferedBytes >= budgetBytes)
            Spill();
    }

    public void Complete()
    {
        using var output = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        if (_runs.Count == 0)
        {
            _buffer.Sort();
            foreach (var line in _buffer)
                WriteLine(output, line);
            _buffer.Clear();
            return;
        }

        if (_buffer.Count > 0)
            Spill();
        while (_runs.Count > MaxFanIn)
        {
            var batch = Enumerable.Range(0, MaxFanIn).Select(_ => _runs.Dequeue()).ToList();
            var merged = NextRunPath();
            using (var run = new BinaryWriter(File.Create(merged, 1 << 16)))
                Merge(batch, line => WriteRun(run, line));
            _runs.Enqueue(merged);
        }
        Merge([.. _runs], line => WriteLine(output, line));
        _runs.Clear();
    }

    public void Dispose()
    {
        if (Directory.Exists(_runFolder))
            Directory.Delete(_runFolder, recursive: true);
    }

    private void Spill()
    {
        _buffer.Sort();
        var runPath = NextRunPath();
        using (var run = new BinaryWriter(File.Create(runPath, 1 << 16)))
            foreach (var line in _buffer)
                WriteRun(run, line);
        _runs.Enqueue(runPath);
        _buffer.Clear();
        _bufferedBytes = 0;
    }

    private string NextRunPath()
    {
        Directory.CreateDirectory(_runFolder);
        return Path.Combine(_runFolder, $"{_runNumber++:D6}.run");
    }

    private static void Merge(List<string> runPaths, Action<Line> write)
    {
        var readers = runPaths.Select(p => new BinaryReader(new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))).ToList();
        try
        {
            var heads = new PriorityQueue<BinaryReader, Line>();
            foreach (var reader in readers)
                if (TryRead(reader, out var line))
                    heads.Enqueue(reader, line);
            while (heads.TryDequeue(out var reader, out var line))
            {
                write(line);
                if (TryRead(reader, out var next))
                    heads.Enqueue(reader, next);
            }
        }
        finally
        {
            foreach (var reader in readers)
                reader.Dispose();
        }
        foreach (var p in runPaths)
            File.Delete(p);
    }

    private static void WriteRun(BinaryWriter run, Line line)
    {
        run.Write(line.Ticks);
        run.Write(line.Sequence);
        run.Write(line.Utf8.Length);
        run.Write(line.Utf8);
    }

    private static bool TryRead(BinaryReader reader, out Line line)
    {
        if (reader.BaseStream.Position == reader.BaseStream.Length)
        {
            line = default;
            return false;
        }
        var ticks = reader.ReadInt64();
        var sequence = reader.ReadInt64();
        line = new Line(ticks, sequence, reader.ReadBytes(reader.ReadInt32()));
        return true;
    }

    private static void WriteLine(Stream output, Line line)
    {
        output.Write(line.Utf8);
        output.WriteByte((byte)'\n');
    }

    private readonly record struct Line(long Ticks, long Sequence, byte[] Utf8) : IComparable<Line>
    {
        public int CompareTo(Line other) => Ticks != other.Ticks ? Ticks.CompareTo(other.Ticks) : Sequence.CompareTo(other.Sequence);
    }
}

/// <summary>An RFC 4180 CSV file with <c>\n</c> line ends; fields are quoted only when they need it.</summary>
internal sealed class CsvFile : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly int _columns;

    public CsvFile(string path, params string[] header)
    {
        _writer = new StreamWriter(path, false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 1 << 16);
        _columns = header.Length;
        Write(header);
    }

    public long Rows { get; private set; }

    public void Row(params ReadOnlySpan<string?> fields)
    {
        if (fields.Length != _columns)
            throw new ArgumentException($"Expected {_columns} fields, got {fields.Length}.", nameof(fields));
        Write(fields);
        Rows++;
    }

    public void Dispose() => _writer.Dispose();

    private void Write(ReadOnlySpan<string?> fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0)
                _writer.Write(',');
            var field = fields[i] ?? "";
            // Leading or trailing spaces are data here (messy e-mails), and some readers trim them unless quoted.
            if (field.AsSpan().IndexOfAny(",\"\r\n") >= 0 || (field.Length > 0 && (field[0] == ' ' || field[^1] == ' ')))
            {
                _writer.Write('"');
                _writer.Write(field.Replace("\"", "\"\""));
                _writer.Write('"');
            }
            else
                _writer.Write(field);
        }
        _writer.Write('\n');
    }
}
