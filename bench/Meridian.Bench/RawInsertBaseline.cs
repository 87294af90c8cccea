using System.Diagnostics;
using System.Text;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace Meridian.Bench;

/// <summary>
/// The rows every baseline writes and reads: small, like most Meridian rows (an id, a tenant, a name, a timestamp
/// and a ~100-byte payload), with only a primary key, so that the figure is the database's floor, not our schema's.
/// </summary>
internal static class BenchRows
{
    public const int BatchSize = 1_000;
    public const int Tenants = 16;
    private static readonly DateTime Epoch = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public static long TenantOf(long id) => id % Tenants + 1;
    public static string NameOf(long id) => $"customer {id}";
    public static DateTime CreatedAtOf(long id) => Epoch.AddSeconds(id);

    /// <summary>100 ASCII bytes that differ per row, so no page compresses or deduplicates better than real data would.</summary>
    public static string PayloadOf(long id) => $"{{\"id\":{id,12},\"channel\":\"web\",\"tier\":\"silver\",\"note\":\"{(ulong)id * 2654435761UL % 1_000_000_007UL,20}\"}}".PadRight(100, ' ')[..100];
}

/// <summary>Raw batched inserts, one transaction per <see cref="BenchRows.BatchSize"/> rows: the rows/s every ingest figure is divided by.</summary>
internal static class RawInsertBaseline
{
    /// <summary>
    /// A prepared single-row INSERT run 1,000 times per transaction: the fastest plain way into SQLite (it has no
    /// network round trip for a multi-row statement to save). WAL and the default synchronous level, like the server.
    /// </summary>
    public static double Sqlite(string connectionString, int rows, CancellationToken ct)
    {
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        Sql.Execute(connection, "PRAGMA journal_mode=WAL;");
        Sql.Execute(connection, "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL, payload TEXT NOT NULL);");

        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO bench_rows (id, tenant_id, name, created_at, payload) VALUES ($id, $tenant, $name, $created, $payload)";
        var id = insert.Parameters.Add("$id", SqliteType.Integer);
        var tenant = insert.Parameters.Add("$tenant", SqliteType.Integer);
        var name = insert.Parameters.Add("$name", SqliteType.Text);
        var created = insert.Parameters.Add("$created", SqliteType.Text);
        var payload = insert.Parameters.Add("$payload", SqliteType.Text);

        insert.Prepare();

        var started = Stopwatch.GetTimestamp();
        for (long first = 1; first <= rows; first += BenchRows.BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            using var tx = connection.BeginTransaction();
            insert.Transaction = tx;
            for (var i = first; i < first + BenchRows.BatchSize && i <= rows; i++)
            {
                id.Value = i;
                tenant.Value = BenchRows.TenantOf(i);
                name.Value = BenchRows.NameOf(i);
                created.Value = BenchRows.CreatedAtOf(i).ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF");
                payload.Value = BenchRows.PayloadOf(i);
                insert.ExecuteNonQuery();
            }
            tx.Commit();
        }
        return rows / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>One prepared 1,000-row INSERT ... VALUES (...), (...) per transaction: what EF Core batching or a hand-written bulk path can reach.</summary>
    public static async Task<double> PostgresMultiRowAsync(NpgsqlDataSource db, int rows, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await Sql.ExecuteAsync(connection, "CREATE TABLE bench_rows (id bigint PRIMARY KEY, tenant_id bigint NOT NULL, name text NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL)", ct);

        var started = Stopwatch.GetTimestamp();
        // Every batch but a short last one reuses one prepared statement.
        await using var full = await PrepareMultiRowAsync(connection, Math.Min(rows, BenchRows.BatchSize), ct);
        for (long first = 1; first <= rows; first += BenchRows.BatchSize)
        {
            var count = (int)Math.Min(BenchRows.BatchSize, rows - first + 1);
            await using var shortBatch = count == full.Parameters.Count / 5 ? null : await PrepareMultiRowAsync(connection, count, ct);
            var insert = shortBatch ?? full;
            for (var r = 0; r < count; r++)
            {
                var i = first + r;
                insert.Parameters[r * 5].Value = i;
                insert.Parameters[r * 5 + 1].Value = BenchRows.TenantOf(i);
                insert.Parameters[r * 5 + 2].Value = BenchRows.NameOf(i);
                insert.Parameters[r * 5 + 3].Value = BenchRows.CreatedAtOf(i);
                insert.Parameters[r * 5 + 4].Value = BenchRows.PayloadOf(i);
            }
            await using var tx = await connection.BeginTransactionAsync(ct);
            insert.Transaction = tx;
            await insert.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }
        return rows / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>Npgsql binary COPY, one COPY (its own transaction) per 1,000 rows: the bulk-ingest path DESIGN.md names.</summary>
    public static async Task<double> PostgresCopyAsync(NpgsqlDataSource db, int rows, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await Sql.ExecuteAsync(connection, "CREATE TABLE bench_rows_copy (id bigint PRIMARY KEY, tenant_id bigint NOT NULL, name text NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL)", ct);

        var started = Stopwatch.GetTimestamp();
        for (long first = 1; first <= rows; first += BenchRows.BatchSize)
        {
            await using var writer = await connection.BeginBinaryImportAsync("COPY bench_rows_copy (id, tenant_id, name, created_at, payload) FROM STDIN (FORMAT BINARY)", ct);
            for (var i = first; i < first + BenchRows.BatchSize && i <= rows; i++)
            {
                await writer.StartRowAsync(ct);
                await writer.WriteAsync(i, NpgsqlDbType.Bigint, ct);
                await writer.WriteAsync(BenchRows.TenantOf(i), NpgsqlDbType.Bigint, ct);
                await writer.WriteAsync(BenchRows.NameOf(i), NpgsqlDbType.Text, ct);
                await writer.WriteAsync(BenchRows.CreatedAtOf(i), NpgsqlDbType.TimestampTz, ct);
                await writer.WriteAsync(BenchRows.PayloadOf(i), NpgsqlDbType.Text, ct);
            }
            await writer.CompleteAsync(ct);
        }
        return rows / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>
    /// The ingest measure's divisor on SQLite: the same event lines, <paramref name="batchSize"/> per transaction, each
    /// batch one multi-row INSERT (prepared once per batch size) into a table with only a primary key. Only the
    /// inserts and commits are timed, not reading the file.
    /// </summary>
    public static double SqliteEvents(string connectionString, DemoEvents events, int batchSize, CancellationToken ct)
    {
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        Sql.Execute(connection, "PRAGMA journal_mode=WAL;");
        Sql.Execute(connection, RawEventsTable("INTEGER PRIMARY KEY"));

        var statements = new Dictionary<int, SqliteCommand>();
        long rows = 0, ticks = 0;
        try
        {
            foreach (var batch in events.Batches(batchSize))
            {
                ct.ThrowIfCancellationRequested();
                if (!statements.TryGetValue(batch.Length, out var insert))
                {
                    insert = connection.CreateCommand();
                    insert.CommandText = RawEventsInsert(batch.Length, r => $"$p{r}");
                    for (var r = 0; r < batch.Length; r++) insert.Parameters.Add($"$p{r}", SqliteType.Text);
                    insert.Prepare();
                    statements[batch.Length] = insert;
                }
                for (var r = 0; r < batch.Length; r++) insert.Parameters[r].Value = Encoding.UTF8.GetString(batch[r]);

                var started = Stopwatch.GetTimestamp();
                using (var tx = connection.BeginTransaction())
                {
                    insert.Transaction = tx;
                    insert.ExecuteNonQuery();
                    tx.Commit();
                }
                ticks += Stopwatch.GetTimestamp() - started;
                rows += batch.Length;
            }
        }
        finally
        {
            foreach (var statement in statements.Values) statement.Dispose();
        }
        return rows / ((double)ticks / Stopwatch.Frequency);
    }

    /// <summary>The ingest measure's divisor on PostgreSQL: as <see cref="SqliteEvents"/>, on one connection, statements prepared on the server.</summary>
    public static async Task<double> PostgresEventsAsync(NpgsqlDataSource db, DemoEvents events, int batchSize, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await Sql.ExecuteAsync(connection, RawEventsTable("bigserial PRIMARY KEY"), ct);

        var statements = new Dictionary<int, NpgsqlCommand>();
        long rows = 0, ticks = 0;
        try
        {
            foreach (var batch in events.Batches(batchSize))
            {
                if (!statements.TryGetValue(batch.Length, out var insert))
                {
                    insert = connection.CreateCommand();
                    insert.CommandText = RawEventsInsert(batch.Length, r => $"${r + 1}");
                    for (var r = 0; r < batch.Length; r++) insert.Parameters.Add(new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text });
                    await insert.PrepareAsync(ct);
                    statements[batch.Length] = insert;
                }
                for (var r = 0; r < batch.Length; r++) insert.Parameters[r].Value = Encoding.UTF8.GetString(batch[r]);

                var started = Stopwatch.GetTimestamp();
                await using (var tx = await connection.BeginTransactionAsync(ct))
                {
                    insert.Transaction = tx;
                    await insert.ExecuteNonQueryAsync(ct);
                    await tx.CommitAsync(ct);
                }
                ticks += Stopwatch.GetTimestamp() - started;
                rows += batch.Length;
            }
        }
        finally
        {
            foreach (var statement in statements.Values) await statement.DisposeAsync();
        }
        return rows / ((double)ticks / Stopwatch.Frequency);
    }

    private static string RawEventsTable(string key) => $"CREATE TABLE raw_events (id {key}, payload text NOT NULL)";

    private static string RawEventsInsert(int rows, Func<int, string> parameter) =>
        "INSERT INTO raw_events (payload) VALUES " + string.Join(", ", Enumerable.Range(0, rows).Select(r => $"({parameter(r)})"));

    private static async Task<NpgsqlCommand> PrepareMultiRowAsync(NpgsqlConnection connection, int count, CancellationToken ct)
    {
        var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO bench_rows (id, tenant_id, name, created_at, payload) VALUES "
            + string.Join(", ", Enumerable.Range(0, count).Select(r => $"(${r * 5 + 1}, ${r * 5 + 2}, ${r * 5 + 3}, ${r * 5 + 4}, ${r * 5 + 5})"));
        for (var r = 0; r < count; r++)
        {
            command.Parameters.Add(new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint });
            command.Parameters.Add(new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint });
            command.Parameters.Add(new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter<DateTime> { NpgsqlDbType = NpgsqlDbType.TimestampTz });
            command.Parameters.Add(new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text });
        }
        await command.PrepareAsync(ct);
        return command;
    }
}
