using System.Runtime.InteropServices;
using Meridian.Bench;

// Raw-database baselines and the real server over HTTP, measured in one run on one machine and printed as ratios.
// A benchmark, not a test: it asserts nothing and only reports.
if (BenchOptions.Parse(args) is not { } options) return 2;

// Ctrl+C and SIGTERM cancel the run instead of killing it, so the server, the cluster and the temp files are removed.
using var cancel = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
var report = new Report(options);
var failed = false;

try
{
    string serverDll;
    DemoEvents? events;
    try
    {
        serverDll = await ServerProcess.LocateAsync(options, cancel.Token);
        Console.WriteLine($"server: {serverDll} (built {File.GetLastWriteTime(serverDll):yyyy-MM-dd HH:mm})");
        // One data set for both databases, so that both ingest the same events.
        events = options.RunsIngest || options.RunsIdentity ? await DemoEvents.PrepareAsync(options, cancel.Token) : null;
    }
    catch (Exception ex) when (ex is IOException or InvalidOperationException)
    {
        Console.Error.WriteLine($"meridian-bench: {ex.Message}");
        return 2;
    }
    using var _ = events;
    if (events is not null && options.RunsIngest)
        report.Note($"ingest: {events.Count:N0} events from {events.Description}{(events.Count < options.IngestEvents ? $" (all it holds; {options.IngestEvents:N0} were asked for)" : "")}.");
    if (options.Runs(Provider.Sqlite) && options.RunsSuites) await Run(Provider.Sqlite, () => Suites.SqliteAsync(serverDll, options, events, report, cancel.Token));
    if (options.Runs(Provider.Postgres) && options.RunsSuites) await Run(Provider.Postgres, () => Suites.PostgresAsync(serverDll, options, events, report, cancel.Token));
    if (options.Runs(Provider.Sqlite) && options.RunsOffers) await Run(Provider.Sqlite, () => OffersBench.SqliteAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Postgres) && options.RunsOffers) await Run(Provider.Postgres, () => OffersBench.PostgresAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Sqlite) && options.RunsJourneys) await Run(Provider.Sqlite, () => JourneysBench.SqliteAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Postgres) && options.RunsJourneys) await Run(Provider.Postgres, () => JourneysBench.PostgresAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Sqlite) && options.RunsAudiences) await Run(Provider.Sqlite, () => AudiencesBench.SqliteAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Postgres) && options.RunsAudiences) await Run(Provider.Postgres, () => AudiencesBench.PostgresAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Sqlite) && options.RunsMessaging) await Run(Provider.Sqlite, () => MessagingBench.SqliteAsync(serverDll, options, report, cancel.Token));
    if (options.Runs(Provider.Postgres) && options.RunsMessaging) await Run(Provider.Postgres, () => MessagingBench.PostgresAsync(serverDll, options, report, cancel.Token));
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    Console.Error.WriteLine("meridian-bench: cancelled.");
    return 130;
}

Console.WriteLine();
Console.WriteLine(report.Render());
return failed ? 1 : 0;

// One database failing (a missing package, a server that did not start) still leaves the other's figures.
async Task Run(Provider provider, Func<Task> suite)
{
    try
    {
        await suite();
    }
    catch (Exception ex) when (ex is not OperationCanceledException || !cancel.IsCancellationRequested)
    {
        failed = true;
        report.Note($"{provider.Title()}: failed: {ex.Message}");
    }
}

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    cancel.Cancel();
}
