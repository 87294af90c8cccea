using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// The earn-batch's second divisor: the rows a batch of earn postings writes (per posting an entry, its lot and a
/// <c>points.earned</c> outbox message, and each member's totals), written by the driver straight into Meridian's own
/// tables (all their indexes, constraints and foreign keys), one transaction per batch, with no server in between.
/// The messages go in marked as fanned out, so that the idle server's dispatcher leaves them alone (which spares them
/// the entry in the partial index of messages still to fan out: the ceiling is, if anything, a little high).
/// The raw insert measures the database's floor for a row with a primary key only; this measures its floor for what
/// the ledger's schema asks a posting to write, so earn-batch / this is what the server adds, and this / raw insert is
/// the highest earn-batch ratio the schema allows.
/// </summary>
internal static class LedgerRowsBaseline
{
    /// <param name="members">Per worker, the members its batches post to (one posting each a batch).</param>
    public static async Task<LoadResult> RunAsync(Provider provider, string database, long brandId, long programmeId, IReadOnlyList<long[]> members,
        TimeSpan warmUp, TimeSpan measured, CancellationToken ct)
    {
        // SQLite has one writer: more connections would only wait in its busy handler.
        var workers = provider == Provider.Sqlite ? 1 : members.Count;
        var writers = new Func<long, CancellationToken, Task>[workers];
        var connections = new List<DbConnection>();
        try
        {
            long groupId = 0;
            for (var w = 0; w < workers; w++)
            {
                // Foreign keys on, as the server's connections have them.
                DbConnection connection = provider == Provider.Sqlite ? new SqliteConnection(database + ";Pooling=False;Default Timeout=120;Foreign Keys=True") : new NpgsqlConnection(database);
                await connection.OpenAsync(ct);
                connections.Add(connection);
                if (w == 0) groupId = await ScalarAsync(connection, $"SELECT group_id FROM loyalty_programmes WHERE id = {programmeId}", ct);
                var rows = new Rows(brandId, programmeId, groupId, members[w]);
                writers[w] = connection is SqliteConnection sqlite ? rows.Sqlite(sqlite) : rows.Postgres((NpgsqlConnection)connection);
            }
            var batches = new long[workers];
            return await ClosedLoop.RunAsync(workers, warmUp, measured, async worker =>
            {
                await writers[worker](++batches[worker], ct);
                return true;
            }, ct);
        }
        finally
        {
            foreach (var connection in connections) await connection.DisposeAsync();
        }
    }

    private static async Task<long> ScalarAsync(DbConnection connection, string sql, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    /// <summary>One worker's batches: 10 points to each of its members, a fresh source key per batch.</summary>
    private sealed class Rows(long brandId, long programmeId, long groupId, long[] members)
    {
        private static string Payload(long member, long entry) =>
            $$"""{"memberId":{{member}},"profileId":{{member}},"entryId":{{entry}},"points":10,"balance":10,"reference":"bench"}""";

        /// <summary>Prepared single-row statements (SQLite has no round trip for a multi-row statement to save), as the server's bulk writes do.</summary>
        public Func<long, CancellationToken, Task> Sqlite(SqliteConnection connection)
        {
            SqliteCommand Prepare(string sql, params SqliteType[] types)
            {
                var command = connection.CreateCommand();
                command.CommandText = sql;
                for (var i = 0; i < types.Length; i++) command.Parameters.Add($"$p{i}", types[i]);
                command.Prepare();
                return command;
            }
            var entry = Prepare($"""
                INSERT INTO loyalty_entries (tenant_id, programme_id, member_id, kind, points, account, balance_after, rule, base_points, reference, source_key,
                    created_at, pending, qualifying_spend, brand_id)
                VALUES ({brandId}, {programmeId}, $p0, 'earn', 10, 'issued', $p1, 'api: 10 points', 10, 'bench', $p2, $p3, 0, 0, {brandId}) RETURNING id
                """, SqliteType.Integer, SqliteType.Integer, SqliteType.Text, SqliteType.Text);
            var lot = Prepare($"INSERT INTO loyalty_lots (tenant_id, member_id, entry_id, granted, remaining, expires_at) VALUES ({brandId}, $p0, $p1, 10, 10, $p2) RETURNING id",
                SqliteType.Integer, SqliteType.Integer, SqliteType.Text);
            var totals = Prepare("UPDATE loyalty_members SET balance = balance + 10, qualifying_points = qualifying_points + 10, version = version + 1 WHERE id = $p0",
                SqliteType.Integer);
            var message = Prepare($"INSERT INTO outbox_messages (group_id, brand_id, type, payload, occurred_at, fanned_out) VALUES ({groupId}, {brandId}, 'points.earned', $p0, $p1, 1)",
                SqliteType.Text, SqliteType.Text);
            var entries = new long[members.Length];
            return (batch, _) =>
            {
                var now = DateTime.UtcNow;
                string at = now.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture), expires = now.AddDays(365).ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture);
                using var tx = connection.BeginTransaction();
                entry.Transaction = lot.Transaction = totals.Transaction = message.Transaction = tx;
                for (var i = 0; i < members.Length; i++)
                {
                    (entry.Parameters[0].Value, entry.Parameters[1].Value, entry.Parameters[2].Value, entry.Parameters[3].Value) = (members[i], batch * 10, $"floor-{batch}", at);
                    entries[i] = (long)entry.ExecuteScalar()!;
                }
                for (var i = 0; i < members.Length; i++)
                {
                    (lot.Parameters[0].Value, lot.Parameters[1].Value, lot.Parameters[2].Value) = (members[i], entries[i], expires);
                    lot.ExecuteScalar();
                }
                foreach (var member in members)
                {
                    totals.Parameters[0].Value = member;
                    totals.ExecuteNonQuery();
                }
                for (var i = 0; i < members.Length; i++)
                {
                    (message.Parameters[0].Value, message.Parameters[1].Value) = (Payload(members[i], entries[i]), at);
                    message.ExecuteNonQuery();
                }
                tx.Commit();
                return Task.CompletedTask;
            };
        }

        /// <summary>One set-based statement per table (rows as arrays through <c>unnest</c>), the members locked in id order first.</summary>
        public Func<long, CancellationToken, Task> Postgres(NpgsqlConnection connection) => async (batch, ct) =>
        {
            await using var tx = await connection.BeginTransactionAsync(ct);
            NpgsqlCommand Command(string sql, params object[] values)
            {
                var command = new NpgsqlCommand(sql, connection, tx);
                foreach (var value in values) command.Parameters.Add(new NpgsqlParameter { Value = value });
                return command;
            }
            async Task Run(string sql, params object[] values)
            {
                await using var command = Command(sql, values);
                await command.ExecuteNonQueryAsync(ct);
            }
            await Run("SELECT count(*) FROM (SELECT id FROM loyalty_members WHERE id = ANY($1) ORDER BY id FOR UPDATE) locked", members);
            var entries = new long[members.Length];
            var memberOf = new long[members.Length];
            await using (var insert = Command($"""
                INSERT INTO loyalty_entries (tenant_id, programme_id, member_id, kind, points, account, balance_after, rule, base_points, reference, source_key,
                    created_at, pending, qualifying_spend, brand_id)
                SELECT {brandId}, {programmeId}, m, 'earn', 10, 'issued', $2, 'api: 10 points', 10, 'bench', $3, now(), 0, 0, {brandId} FROM unnest($1::bigint[]) AS t(m)
                RETURNING id, member_id
                """, members, batch * 10, $"floor-{batch}"))
            await using (var inserted = await insert.ExecuteReaderAsync(ct))
                for (var i = 0; await inserted.ReadAsync(ct); i++) (entries[i], memberOf[i]) = (inserted.GetInt64(0), inserted.GetInt64(1));
            await Run($"""
                INSERT INTO loyalty_lots (tenant_id, member_id, entry_id, granted, remaining, expires_at)
                SELECT {brandId}, m, e, 10, 10, now() + interval '365 days' FROM unnest($1::bigint[], $2::bigint[]) AS t(m, e)
                """, memberOf, entries);
            await Run("""
                UPDATE loyalty_members AS m SET balance = m.balance + 10, qualifying_points = m.qualifying_points + 10, version = m.version + 1
                FROM unnest($1::bigint[]) AS t(id) WHERE m.id = t.id
                """, members);
            string[] payloads = [.. memberOf.Select((member, i) => Payload(member, entries[i]))];
            await Run($"""
                INSERT INTO outbox_messages (group_id, brand_id, type, payload, occurred_at, fanned_out)
                SELECT {groupId}, {brandId}, 'points.earned', p, now(), true FROM unnest($1::text[]) AS t(p)
                """, (object)payloads);
            await tx.CommitAsync(ct);
        };
    }
}
