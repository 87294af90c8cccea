using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// Single-row SELECT by primary key, straight on the connection (prepared, all columns read), from as many workers
/// and for as long as the HTTP load: the reads/s that an authenticated GET is divided by.
/// </summary>
internal static class RawSelectBaseline
{
    private const string Select = "SELECT id, tenant_id, name, created_at, payload FROM bench_rows WHERE id = ";

    public static async Task<LoadResult> SqliteAsync(string connectionString, int rows, BenchOptions options, CancellationToken ct)
    {
        var connections = new List<SqliteConnection>();
        var commands = new List<(SqliteCommand Command, SqliteParameter Id, Random Random)>();
        try
        {
            for (var w = 0; w < options.Concurrency; w++)
            {
                var connection = new SqliteConnection(connectionString);
                connections.Add(connection);
                connection.Open();
                var command = connection.CreateCommand();
                command.CommandText = Select + "$id";
                var id = command.Parameters.Add("$id", SqliteType.Integer);
                id.Value = 1L;
                commands.Add((command, id, new Random(w)));
                command.Prepare();
            }
            return await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, w =>
            {
                var (command, id, random) = commands[w];
                id.Value = random.NextInt64(1, rows + 1);
                using var reader = command.ExecuteReader();
                return ValueTask.FromResult(reader.Read() && ReadRow(reader));
            }, ct);
        }
        finally
        {
            foreach (var (command, _, _) in commands) command.Dispose();
            foreach (var connection in connections) connection.Dispose();
        }
    }

    public static async Task<LoadResult> PostgresAsync(NpgsqlDataSource db, int rows, BenchOptions options, CancellationToken ct)
    {
        var commands = new List<(NpgsqlCommand Command, NpgsqlParameter<long> Id, Random Random)>();
        try
        {
            for (var w = 0; w < options.Concurrency; w++)
            {
                var connection = await db.OpenConnectionAsync(ct);
                var id = new NpgsqlParameter<long> { TypedValue = 1 };
                var command = new NpgsqlCommand(Select + "$1", connection) { Parameters = { id } };
                commands.Add((command, id, new Random(w)));
                await command.PrepareAsync(ct);
            }
            return await ClosedLoop.RunAsync(options.Concurrency, options.WarmUp, options.Measured, async w =>
            {
                var (command, id, random) = commands[w];
                id.TypedValue = random.NextInt64(1, rows + 1);
                await using var reader = await command.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) && ReadRow(reader);
            }, ct);
        }
        finally
        {
            foreach (var (command, _, _) in commands)
            {
                await command.Connection!.DisposeAsync();
                await command.DisposeAsync();
            }
        }
    }

    /// <summary>Materialises every column, as a handler must before it can answer.</summary>
    private static bool ReadRow(System.Data.Common.DbDataReader reader) =>
        reader.GetInt64(0) > 0 && reader.GetInt64(1) > 0 && reader.GetString(2).Length > 0 && reader.GetDateTime(3) > DateTime.MinValue && reader.GetString(4).Length > 0;
}
