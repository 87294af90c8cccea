using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Data;
using Meridian.Profiles.Identity;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Ingestion;

/// <summary>
/// Ingestion keeps pace with identity resolution (<c>Meridian:Ingestion:MaxUnresolvedEvents</c>): while resolution is
/// more events behind than the bound, the next commit waits, and the client's answer with it. The resolver is played
/// here by the projector's lease row (the projector itself is off), so the test decides when it "catches up".
/// </summary>
public abstract class IngestPaceTests(MeridianAppFixture app)
{
    private async Task<HttpClient> NewWriteKeyClientAsync()
    {
        var brand = await app.NewBrandAsync();
        var created = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        return app.WriteKeyClient(created.GetProperty("writeKey").GetString()!);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, int events)
    {
        var batch = Enumerable.Range(0, events).Select(_ => new { type = "track", userId = "u-1", @event = "Viewed", messageId = Guid.NewGuid().ToString() });
        return client.PostAsJsonAsync("/v1/batch", new { batch });
    }

    /// <summary>Sets the resolver's lease and position: <paramref name="leaseLeft"/> from now, at the log's end or at its start.</summary>
    private async Task SetResolverAsync(TimeSpan leaseLeft, bool caughtUp)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        await db.Database.ExecuteSqlAsync($"INSERT INTO projector_state (name, position_tx, position_id) VALUES ({ProfileProjector.Name}, 0, 0) ON CONFLICT (name) DO NOTHING");
        var until = DateTime.UtcNow + leaseLeft;
        await db.Set<ProjectorState>().Where(s => s.Name == ProfileProjector.Name)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.LeaseOwner, "another-node").SetProperty(x => x.LeaseUntil, until));
        if (caughtUp)
            await db.Database.ExecuteSqlRawAsync(app.Provider == DatabaseProvider.Sqlite // SQLite's log has no transaction ids (always 0)
                ? "UPDATE projector_state SET position_id = (SELECT coalesce(max(id), 0) FROM events)"
                : "UPDATE projector_state SET position_tx = (SELECT coalesce(max(tx_id), 0) FROM events), position_id = (SELECT coalesce(max(id), 0) FROM events)");
        else
            await db.Set<ProjectorState>().Where(s => s.Name == ProfileProjector.Name).ExecuteUpdateAsync(s => s.SetProperty(x => x.PositionTx, 0L).SetProperty(x => x.PositionId, 0L));
    }

    [Fact]
    public async Task A_batch_waits_while_resolution_is_too_far_behind_and_is_stored_once_it_catches_up()
    {
        using var client = await NewWriteKeyClientAsync();
        await SetResolverAsync(TimeSpan.FromMinutes(10), caughtUp: true);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(client, IngestPaceApp.Bound + 5)).StatusCode); // resolution was not behind: stored at once

        var waiting = SendAsync(client, 3);
        var first = await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromSeconds(1.5)));
        Assert.NotSame(waiting, first); // resolution is Bound + 5 events behind: the batch waits

        await SetResolverAsync(TimeSpan.FromMinutes(10), caughtUp: true);
        var answered = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
    }

    [Fact]
    public async Task A_batch_waits_when_storing_it_would_take_resolution_past_the_bound()
    {
        using var client = await NewWriteKeyClientAsync();
        await SetResolverAsync(TimeSpan.FromMinutes(10), caughtUp: true);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(client, IngestPaceApp.Bound - 1)).StatusCode);

        // Bound - 1 events behind, within the bound; 3 more would leave it Bound + 2 behind: the batch waits.
        var waiting = SendAsync(client, 3);
        var first = await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromSeconds(1.5)));
        Assert.NotSame(waiting, first);

        await SetResolverAsync(TimeSpan.FromMinutes(10), caughtUp: true);
        Assert.Equal(HttpStatusCode.OK, (await waiting.WaitAsync(TimeSpan.FromSeconds(10))).StatusCode);
    }

    [Fact]
    public async Task Ingestion_does_not_wait_for_a_resolver_whose_lease_has_lapsed()
    {
        using var client = await NewWriteKeyClientAsync();
        await SetResolverAsync(TimeSpan.FromMinutes(-1), caughtUp: false);
        for (var i = 0; i < 3; i++)
        {
            // Far more than the bound behind, but nobody resolves: waiting would only hold the events back.
            var answered = await SendAsync(client, IngestPaceApp.Bound + 5).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        }
    }
}

/// <summary>A small bound, a long wait (so that a wait shows), and the projector off (the test plays the resolver).</summary>
internal static class IngestPaceApp
{
    public const int Bound = 5;

    public static readonly KeyValuePair<string, string>[] Settings =
    [
        new("Meridian:Profiles:Projector:Enabled", "false"),
        new("Meridian:Ingestion:MaxUnresolvedEvents", Bound.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("Meridian:Ingestion:MaxPaceWait", "00:01:00"),
    ];
}

public sealed class IngestPaceSqliteApp : SqliteApp
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings => IngestPaceApp.Settings;
}

public sealed class IngestPacePostgresApp : PostgresApp
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings => IngestPaceApp.Settings;
}

public sealed class IngestPaceTestsOnSqlite(IngestPaceSqliteApp app) : IngestPaceTests(app), IClassFixture<IngestPaceSqliteApp>;

public sealed class IngestPaceTestsOnPostgres(IngestPacePostgresApp app) : IngestPaceTests(app), IClassFixture<IngestPacePostgresApp>;
