using System.Data.Common;
using Meridian.Hosting;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Tests.Infrastructure;

/// <summary>
/// A write left open in another database of the same server (another file on SQLite), as another application's long
/// bulk load or migration would leave it, until disposed. Nothing in Meridian's database may wait for it.
/// </summary>
public sealed class OpenWriteElsewhere : IAsyncDisposable
{
    private readonly DbConnection connection;
    private readonly DbTransaction transaction;

    private OpenWriteElsewhere(DbConnection connection, DbTransaction transaction) => (this.connection, this.transaction) = (connection, transaction);

    public static async Task<OpenWriteElsewhere> BeginAsync(DatabaseProvider provider)
    {
        DbConnection connection = provider == DatabaseProvider.Postgres
            ? new NpgsqlConnection(await PostgresServer.CreateDatabaseAsync("other"))
            : new SqliteConnection($"Data Source={Path.Combine(Path.GetTempPath(), "meridian-tests", Guid.NewGuid().ToString("N") + ".db")}");
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "CREATE TABLE held (id integer)"; // a write: the transaction now holds a transaction id until it ends
        await command.ExecuteNonQueryAsync();
        return new OpenWriteElsewhere(connection, transaction);
    }

    public async ValueTask DisposeAsync()
    {
        await transaction.RollbackAsync();
        await connection.DisposeAsync();
        if (connection is NpgsqlConnection) await PostgresServer.DropDatabaseAsync(connection.ConnectionString);
    }
}
