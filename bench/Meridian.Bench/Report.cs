using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Meridian.Bench;

/// <summary>
/// The markdown table a run prints: one row per measure, one column per database, absolute figures beside their ratio
/// to the raw baseline of the same run (only ratios compare across machines). Later benches add their own rows.
/// </summary>
internal sealed class Report(BenchOptions options)
{
    private readonly List<string> measures = [];
    private readonly Dictionary<(string Measure, Provider Provider), string> cells = [];
    private readonly List<string> notes = [];

    public void Set(string measure, Provider provider, string value)
    {
        if (!measures.Contains(measure)) measures.Add(measure);
        cells[(measure, provider)] = value;
    }

    public void Note(string line)
    {
        notes.Add(line);
        Console.WriteLine(line);
    }

    /// <summary>A read load's rate, its ratio to a baseline if given, its latencies, and failed calls if any.</summary>
    public void Load(string rateMeasure, string latencyMeasure, Provider provider, LoadResult load, (string Measure, double PerSecond)? baseline = null)
    {
        Set(rateMeasure, provider, Rate(load.PerSecond));
        if (baseline is { } b) Set(b.Measure, provider, Ratio(load.PerSecond, b.PerSecond));
        Set(latencyMeasure, provider, $"{Ms(load.PercentileMs(50))} / {Ms(load.PercentileMs(99))}");
        if (load.Failures > 0) Set(rateMeasure + ": failed calls", provider, load.Failures.ToString("N0", CultureInfo.InvariantCulture));
    }

    public static string Rate(double perSecond) => perSecond.ToString("N0", CultureInfo.InvariantCulture);

    public static string Ratio(double measured, double baseline) => (measured / baseline).ToString(measured / baseline < 0.1 ? "0.000" : "0.00", CultureInfo.InvariantCulture);

    public static string Megabytes(long bytes) => (bytes / 1048576.0).ToString("N0", CultureInfo.InvariantCulture);

    public static string Ms(double ms) => ms.ToString(ms < 1 ? "0.000" : ms < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture);

    public string Render()
    {
        var providers = Enum.GetValues<Provider>().Where(options.Runs).ToList();
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Meridian bench, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        if (!options.IngestOnly)
            text.AppendLine(CultureInfo.InvariantCulture, $"rows {options.Rows:N0} in batches of {BenchRows.BatchSize:N0} per transaction; read loads: {options.Concurrency} workers, {options.WarmUp.TotalSeconds:0.#} s warm-up + {options.Seconds} s measured{(options.Quick ? " (--quick)" : "")}");
        if (options.RunsIngest)
            text.AppendLine(CultureInfo.InvariantCulture, $"ingest: up to {options.IngestEvents:N0} demo events, {options.IngestBatch} per POST {IngestBench.Path} and per baseline transaction, {options.IngestConcurrency} clients{(options.Quick ? " (--quick)" : "")}");
        text.AppendLine();
        text.AppendLine("| measure | " + string.Join(" | ", providers.Select(p => p.Title())) + " |");
        text.AppendLine("|---|" + string.Concat(providers.Select(_ => "---:|")));
        foreach (var measure in measures)
            text.AppendLine($"| {measure} | " + string.Join(" | ", providers.Select(p => cells.GetValueOrDefault((measure, p), "–"))) + " |");
        text.AppendLine();
        if (!options.IngestOnly)
            text.AppendLine($"Read loads are closed loops: each worker sends its next call when the last one answers. Raw selects run in the bench process on their own connections; the HTTP client runs in the bench process too, sharing the {Environment.ProcessorCount} cores with the server.");
        if (options.RunsIdentity)
            text.AppendLine("Identity: a fresh server per database gets the demo rules (IdentityBench.Rules), every event of both brands through POST /v1/batch and both stores' exports through POST /api/v1/imports; precision and recall are pairwise over the identifiers the data shows (IdentityTruth); the lag is that of an identify sent every 100 ms during the batch load; lookups run after resolution has caught up; RSS covers sending, importing and resolving.");
        if (options.RunsIngest)
            text.AppendLine($"Ingest: events/s counts the events of every request answered 200 over the whole run, wall clock, the clients (in the bench process, sharing the {Environment.ProcessorCount} cores) included; the baseline times only its inserts and commits, on one connection. RSS is the server's VmRSS, sampled every 100 ms.");
        foreach (var note in notes) text.AppendLine(note);
        return text.ToString();
    }
}
