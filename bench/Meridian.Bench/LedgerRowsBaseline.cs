using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// The earn-batch's second divisor: the rows a batch of earn postings writes (per posting an entry, its lot and a
/// <c>points.earned</c> outbox message, and each member's totals), written by the driver straight into Meridian's own
/// tables (all their indexes, constraints and foreign keys), one transaction per batch, with no server in between.
/// The messages go in as written by transaction 0, behind the dispatcher's fan-out position (which the earn-batch's
/// events moved past it), so that the idle server's dispatcher leaves them alone as it leaves messages it has fanned out
/// (which spares them the transaction id the column's default looks up: the ceiling is, if anything, a little high).
/// The raw insert measures the database's floor for a row with a primary key only; this measures its floor for what
/// the ledger's schema asks a posting to write, so earn-batch / this is what the server adds, and this / raw insert is
/// the highest earn-batch ratio the schema allows. PostgreSQL only: on SQLite the same rows from a connection outside
/// the server ran at 4,400-5,600 postings/s, below the server's own earn-batch (11,500), so that figure measured
/// something other than the schema (the outside writer against the server's for the one write lock, or the driver's
/// cost per statement: not found out); a Python probe of those rows on a database of its own gave ~17,000/s.
/// </summary>
internal static class LedgerRowsBaseline
{
    /// <param name="members">Per worker, the members its batches post to (one posting each a batch).</param>
    public static async Task<LoadResult> RunAsync(string database, long brandId, long programmeId, long groupId, IReadOnlyList<long[]> members,
        TimeSpan warmUp, TimeSpan measured, CancellationToken ct)
    {
        var connections = new List<NpgsqlConnection>();
        try
        {
            var writers = new List<Func<long, CancellationToken, Task>>();
            foreach (var mine in members)
            {
                var connection = new NpgsqlConnection(database);
                connections.Add(connection);
                await connection.OpenAsync(ct);
                writers.Add(new Rows(brandId, programmeId, groupId, mine).Writer(connection));
            }
            var batches = new long[writers.Count];
            return await ClosedLoop.RunAsync(writers.Count, warmUp, measured, async worker =>
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

    /// <summary>One worker's batches: 10 points to each of its members, a fresh source key per batch.</summary>
    private sealed class Rows(long brandId, long programmeId, long groupId, long[] members)
    {
        private static string Payload(long member, long entry) =>
            $$"""{"memberId":{{member}},"profileId":{{member}},"entryId":{{entry}},"points":10,"balance":10,"reference":"bench"}""";

        /// <summary>One set-based statement per table (rows as arrays through <c>unnest</c>), the members locked in id order first.</summary>
        public Func<long, CancellationToken, Task> Writer(NpgsqlConnection connection) => async (batch, ct) =>
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
                INSERT INTO outbox_messages (group_id, brand_id, type, payload, occurred_at, tx_id)
                SELECT {groupId}, {brandId}, 'points.earned', p, now(), 0 FROM unnest($1::text[]) AS t(p)
                """, (object)payloads);
            await tx.CommitAsync(ct);
        };
    }
}
