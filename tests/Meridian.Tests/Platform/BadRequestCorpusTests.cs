using System.Diagnostics;
using Meridian.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Meridian.Tests.Platform;

/// <summary>
/// Whatever a client sends, to whichever endpoint, Meridian answers below 500 and answers errors as problem details.
/// The endpoints come from the running app's router, so a new endpoint is covered the day it is mapped.
/// </summary>
public abstract class BadRequestCorpusTests(MeridianAppFixture app, ITestOutputHelper output)
{
    [Fact]
    public async Task Every_endpoint_answers_a_corpus_of_bad_requests_below_500_with_problem_details()
    {
        var clock = Stopwatch.StartNew();
        var corpus = await BadRequestCorpus.PrepareAsync(app);
        var outcomes = new List<CorpusOutcome>();
        foreach (var request in corpus.Requests()) outcomes.Add(await corpus.SendAsync(request));
        clock.Stop();

        var reached = outcomes.Where(o => o.Request.Endpoint is not null && o.Status is not (404 or 405))
            .Select(o => o.Request.Endpoint).Distinct().ToList();
        var statuses = outcomes.GroupBy(o => o.Status).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"{outcomes.Count} requests to {corpus.Endpoints.Count} endpoints ({reached.Count} reached past 404/405) in {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine("statuses: " + string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}")));
        foreach (var endpoint in corpus.Endpoints) output.WriteLine($"  {endpoint.Key}{(reached.Contains(endpoint.Key) ? "" : "  (never reached)")}");

        // The corpus proves something only if it reached the endpoints and drew every kind of refusal.
        Assert.True(reached.Count > 20, $"only {reached.Count} endpoints answered anything but 404/405: {string.Join(", ", reached)}");
        Assert.All(new[] { 400, 401, 403, 404, 405, 413, 415 }, status => Assert.True(statuses.ContainsKey(status), $"no request drew a {status}"));
        Assert.Contains(statuses.Keys, status => status is >= 200 and < 300);

        var violations = outcomes.Where(o => o.Violation is not null).Select(o => o.Violation!).ToList();
        Assert.True(violations.Count == 0,
            $"{violations.Count} of {outcomes.Count} requests got a 5xx or an error that is not problem details:\n" + string.Join('\n', violations));
    }
}

public sealed class BadRequestCorpusTestsOnSqlite(SqliteApp app, ITestOutputHelper output)
    : BadRequestCorpusTests(app, output), IClassFixture<SqliteApp>;

public sealed class BadRequestCorpusTestsOnPostgres(PostgresApp app, ITestOutputHelper output)
    : BadRequestCorpusTests(app, output), IClassFixture<PostgresApp>;
