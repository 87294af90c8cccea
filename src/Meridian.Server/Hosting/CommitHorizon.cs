namespace Meridian.Hosting;

/// <summary>
/// PostgreSQL: how far a log read in (transaction, id) order (the event log, the outbox) may be read. Ids are handed out
/// when a transaction inserts, not when it commits, so each row carries the id of the transaction that wrote it, and a
/// reader takes only rows of transactions below the horizon: no row can still commit behind them.
/// <para>
/// The snapshot's xmin, the oldest transaction still running, is such a horizon, but it is server-wide: one long write
/// in any other database of the server (a bulk load, a migration, another application) would hold every log here back
/// until it ended. So when rows at or past the xmin are waiting, the horizon is worked out for this database alone: the
/// oldest transaction still running here, or, when none is, the first transaction id not yet handed out. A running
/// transaction is taken for another database's only when pg_stat_activity shows it there; one that ends between the
/// snapshot and that read shows nowhere and is counted as this database's, so the horizon never passes a commit the
/// reading statement cannot see. (pg_stat_activity shows transaction ids of 32 bits; a snapshot's are 64, with the
/// epoch above them.) Reading pg_stat_activity costs a copy of every backend's status, hence only when rows wait.
/// </para>
/// </summary>
public static class CommitHorizon
{
    /// <summary>
    /// The horizon as a scalar SQL expression, for a log <paramref name="table"/> with columns tx_id and id (indexed
    /// together), read after the row (<paramref name="afterTx"/>, <paramref name="afterId"/>). Whether rows wait at or
    /// past the xmin is asked of that index at its two ends only: the newest transaction's id (max, read from the end),
    /// and the rest of the position's own transaction. (Asked as one condition with the row comparison, PostgreSQL walks
    /// the whole backlog below the xmin; asked as a range from the xmin, it may plan a sequential scan.)
    /// </summary>
    public static string Sql(string table, string afterTx, string afterId) => $"""
        (SELECT CASE WHEN (SELECT max(tx_id) FROM {table}) >= greatest(s.xmin, {afterTx} + 1)
                       OR ({afterTx} >= s.xmin AND EXISTS (SELECT 1 FROM {table} WHERE tx_id = {afterTx} AND id > {afterId}))
                     THEN coalesce(
                            (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) x
                              WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                                 WHERE a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
                                                   AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)),
                            pg_snapshot_xmax(s.snap)::text::bigint)
                     ELSE s.xmin END
           FROM (SELECT snap, pg_snapshot_xmin(snap)::text::bigint AS xmin FROM pg_current_snapshot() snap) s)
        """;
}
