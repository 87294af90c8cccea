using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Meridian.Tests.Audiences;

/// <summary>A host whose clock the tests move (windows lapse by it); segment maintenance runs on its own, polling in real time.</summary>
public abstract class AudiencesApp : MeridianAppFixture
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override IEnumerable<KeyValuePair<string, string>> Settings =>
        ClockPollingJobsOff;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(Clock));
    }

    /// <summary>Waits until identity resolution and segment maintenance have caught up with everything sent and changed so far.</summary>
    public static async Task CaughtUpAsync(HttpClient client)
    {
        for (var attempt = 0; ; attempt++)
        {
            var identity = await client.GetAsync("/api/v1/identity/status").ReadAsync<JsonElement>();
            var segments = await client.GetAsync("/api/v1/segments/maintenance").ReadAsync<JsonElement>();
            if (identity.GetProperty("eventsBehind").GetInt64() == 0 && segments.EnumerateObject().All(p => p.Value.GetInt64() == 0)) return;
            Assert.True(attempt < 1200, $"segment maintenance did not catch up within two minutes: {segments}");
            await Task.Delay(100);
        }
    }

    /// <summary>The brand's outbox events of the given types after <paramref name="afterId"/>: (id, type, payload).</summary>
    public async Task<List<(long Id, string Type, JsonElement Payload)>> OutboxAsync(long brandId, long afterId, params string[] types)
    {
        await using var scope = Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var rows = await db.Set<OutboxMessage>().Where(m => m.BrandId == brandId && m.Id > afterId && types.Contains(m.Type)).OrderBy(m => m.Id)
            .Select(m => new { m.Id, m.Type, m.Payload }).ToListAsync();
        return rows.Select(r => (r.Id, r.Type, JsonDocument.Parse(r.Payload).RootElement.Clone())).ToList();
    }
}

public sealed class AudiencesSqliteApp : AudiencesApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;
    protected override Task<string> CreateDatabaseAsync() => Task.FromResult($"Data Source={Path.Combine(Path.GetTempPath(), $"meridian-audiences-{Guid.NewGuid():N}.db")}");
}

public sealed class AudiencesPostgresApp : AudiencesApp
{
    public override DatabaseProvider Provider => DatabaseProvider.Postgres;
    protected override Task<string> CreateDatabaseAsync() => PostgresServer.CreateDatabaseAsync();
}
