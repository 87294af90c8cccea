using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Meridian.Hosting;

/// <summary>
/// Hands SQLite's one write lock from one writer of this process to the next as soon as it is free. SQLite makes a
/// writer that meets the lock taken sleep and retry (1, 2, 5, 10 ... then 25-100 ms at a time): with several writers
/// in flight the lock stood idle between them while they slept. Waiting here in turn, a writer starts the moment the
/// one before commits. Taken by ingestion's group commits, the projector, earn batches, point postings
/// (<c>IdempotentPosting</c>) and the outbox dispatcher's writes; never nested (a semaphore, not re-entrant).
/// PostgreSQL locks rows, not the database: there is no turn to take.
/// </summary>
public static class SqliteWriters
{
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Turns = new();

    /// <summary>Waits for this process's turn to write to the database (SQLite; nothing to wait for otherwise); dispose to pass it on.</summary>
    public static async Task<IDisposable?> WriterTurnAsync(this DatabaseFacade database, CancellationToken ct)
    {
        if (!database.IsSqlite()) return null;
        var turn = Turns.GetOrAdd(database.GetDbConnection().DataSource, _ => new SemaphoreSlim(1, 1));
        await turn.WaitAsync(ct);
        return new Turn(turn);
    }

    private sealed class Turn(SemaphoreSlim turn) : IDisposable
    {
        public void Dispose() => turn.Release();
    }
}
