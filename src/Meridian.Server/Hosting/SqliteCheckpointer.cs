using Microsoft.Data.Sqlite;

namespace Meridian.Hosting;

/// <summary>
/// Copies SQLite's write-ahead log back into the database file every second, beside the writers. Left to SQLite, the
/// commit that grows the log past 1,000 pages does that copy (and its fsync) itself while holding the one write lock:
/// measured on the batch earn, that cost a third of its throughput. A passive checkpoint takes no write lock; the
/// connections' own checkpoint stays as a backstop at <see cref="SqliteBusyTimeout"/>'s larger bound.
/// </summary>
internal sealed class SqliteCheckpointer(DatabaseSettings settings, TimeProvider time, ILogger<SqliteCheckpointer> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (settings.Provider != DatabaseProvider.Sqlite) return;
        await using var connection = new SqliteConnection(settings.ConnectionString);
        await PeriodicWork.RunAsync("SQLite checkpoint", Interval, time, logger, async ct =>
        {
            if (connection.State != System.Data.ConnectionState.Open) await connection.OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
            await command.ExecuteNonQueryAsync(ct);
        }, stoppingToken);
    }
}
