using Meridian.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Hosting;

/// <summary>
/// Serialises a check-then-insert (is the customer already in? is there a member for this person?) across requests and
/// server processes: call inside a transaction; the lock is held until it ends. On PostgreSQL an advisory transaction lock
/// on a key made of <paramref name="scope"/> and the ids (a collision only makes two unrelated callers wait for each
/// other); SQLite's transactions begin immediate, holding its one write lock already.
/// </summary>
public static class TransactionLocks
{
    public static async Task SerialiseAsync(MeridianDb db, string scope, long id, long other, CancellationToken ct)
    {
        if (db.Database.CurrentTransaction is null) throw new InvalidOperationException("A transaction lock needs a transaction.");
        if (!db.Database.IsNpgsql()) return;
        var key = Key($"{scope}:{id}:{other}");
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({key})", ct);
    }

    /// <summary>FNV-1a, 64 bits: stable across processes and releases (string.GetHashCode is not).</summary>
    private static long Key(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var ch in text)
        {
            hash ^= ch;
            hash *= 1099511628211UL;
        }
        return unchecked((long)hash);
    }
}
