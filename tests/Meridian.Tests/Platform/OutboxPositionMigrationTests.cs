using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>
/// The migration that replaced the outbox's fanned-out flag with the fan-out position starts the position so that no
/// message waiting to be fanned out is skipped, and none before the first waiting one comes round again; going back
/// down marks what lies behind the position as fanned out.
/// </summary>
public sealed class OutboxPositionMigrationTests
{
    private const string Flagged = "ProfileEventName";

    [Theory]
    [InlineData(DatabaseProvider.Sqlite)]
    [InlineData(DatabaseProvider.Postgres)]
    public async Task The_position_starts_before_the_first_message_not_fanned_out_or_after_the_last_when_all_were(DatabaseProvider provider)
    {
        await using var services = await DatabaseAsync(provider);
        await using var scope = services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var migrator = db.GetService<IMigrator>();

        await migrator.MigrateAsync(Flagged);
        foreach (var fannedOut in new[] { true, true, false, true, false, false })
            await db.Database.ExecuteSqlAsync(
                $"INSERT INTO outbox_messages (group_id, brand_id, type, payload, occurred_at, fanned_out) VALUES (1, NULL, 'test', '{{}}', {DateTime.UtcNow}, {fannedOut})");
        var ids = await db.Database.SqlQueryRaw<long>("SELECT id AS \"Value\" FROM outbox_messages ORDER BY id").ToListAsync();

        await migrator.MigrateAsync();
        Assert.Equal((0L, ids[1]), await PositionAsync(db));
        Assert.Equal(ids[2..], await NotFannedOutAsync(db));

        // A message written now comes after all of them, and one round fans out the lot.
        var later = new OutboxMessage { GroupId = 1, Type = "test", Payload = "{}", OccurredAt = DateTime.UtcNow };
        db.Add(later);
        await db.SaveChangesAsync();
        Assert.Equal(ids[2..].Append(later.Id), await NotFannedOutAsync(db));
        var dispatcher = OutboxFanOutTests.Dispatcher(services, "node-a");
        // On PostgreSQL a transaction of another test's database on the same server may hold the new message back a moment.
        for (var attempt = 0; (await NotFannedOutAsync(db)).Count > 0; attempt++)
        {
            Assert.True(attempt < 300, "the messages were not fanned out within a minute");
            await dispatcher.RunOnceAsync(default);
            await Task.Delay(attempt == 0 ? 0 : 200);
        }
        Assert.Equal(later.Id, (await PositionAsync(db)).Id);

        await migrator.MigrateAsync(Flagged);
        Assert.Equal(0L, await db.Database.SqlQueryRaw<long>("SELECT count(*) AS \"Value\" FROM outbox_messages WHERE fanned_out = FALSE").SingleAsync());

        await migrator.MigrateAsync();
        Assert.Equal((0L, later.Id), await PositionAsync(db));
        Assert.Empty(await NotFannedOutAsync(db));
    }

    private static async Task<(long Tx, long Id)> PositionAsync(MeridianDb db)
    {
        var position = await db.Set<OutboxPosition>().AsNoTracking().SingleAsync(p => p.Name == OutboxPosition.FanOut);
        return (position.PositionTx, position.PositionId);
    }

    private static Task<List<long>> NotFannedOutAsync(MeridianDb db) => OutboxDispatcher.NotFannedOut(db).OrderBy(m => m.Id).Select(m => m.Id).ToListAsync();

    /// <summary>The database services alone, on an empty database of their own.</summary>
    private static async Task<ServiceProvider> DatabaseAsync(DatabaseProvider provider)
    {
        var connectionString = provider == DatabaseProvider.Sqlite
            ? $"Data Source={Path.Combine(Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "meridian-tests")).FullName, Guid.NewGuid().ToString("N") + ".db")}"
            : await PostgresServer.CreateDatabaseAsync("migration");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Meridian:Database:Provider"] = provider.ToString(),
            ["Meridian:Database:ConnectionString"] = connectionString,
        }).Build();
        return new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging().AddMeridianDatabase().BuildServiceProvider();
    }
}
