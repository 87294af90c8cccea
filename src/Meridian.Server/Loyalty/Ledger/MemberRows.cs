using Meridian.Data;
using Meridian.Loyalty.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// Members' balance rows for the set-based writers (the batch earn, the expiry job): many members locked in one
/// statement and their totals written in one, in the caller's transaction.
/// </summary>
public static class MemberRows
{
    /// <summary>
    /// Reads the members (of the caller's brands), holding their rows until the transaction ends. PostgreSQL:
    /// <c>SELECT ... ORDER BY id FOR UPDATE</c> locks rows as the sort returns them, so two writers over the same
    /// members queue rather than deadlock. SQLite: the transaction holds the one write lock. Their version moves with
    /// their totals (<see cref="StoreTotalsAsync"/>), not before: one write of each row instead of two.
    /// </summary>
    public static async Task<Dictionary<long, LoyaltyMember>> LockAsync(MeridianDb db, List<long> ids, CancellationToken ct)
    {
        if (ids.Count == 0) return [];
        if (!db.Database.IsNpgsql())
            return await db.Set<LoyaltyMember>().AsNoTracking().Where(m => ids.Contains(m.Id)).OrderBy(m => m.Id).ToDictionaryAsync(m => m.Id, ct);
        long[] visible = [.. await db.Set<LoyaltyMember>().AsNoTracking().Where(m => ids.Contains(m.Id)).Select(m => m.Id).ToListAsync(ct)];
        if (visible.Length == 0) return [];
        return await db.Set<LoyaltyMember>().FromSql($"SELECT * FROM loyalty_members WHERE id = ANY({visible}) ORDER BY id FOR UPDATE")
            .IgnoreQueryFilters().AsNoTracking().ToDictionaryAsync(m => m.Id, ct);
    }

    /// <summary>A member's totals after a set-based write: spendable and pending points as they are now, qualifying points to add.</summary>
    public readonly record struct Totals(long MemberId, long Balance, long Pending, long QualifyingDelta);

    /// <summary>
    /// Writes each member's spendable and pending points, adds its qualifying points and moves its version as every
    /// posting does, in one statement (the caller holds the rows' locks).
    /// </summary>
    public static Task StoreTotalsAsync(MeridianDb db, IReadOnlyList<Totals> totals, CancellationToken ct)
    {
        if (totals.Count == 0) return Task.CompletedTask;
        long[] ids = [.. totals.Select(t => t.MemberId)], balances = [.. totals.Select(t => t.Balance)],
            pendings = [.. totals.Select(t => t.Pending)], qualifying = [.. totals.Select(t => t.QualifyingDelta)];
        if (db.Database.IsNpgsql())
            return db.Database.ExecuteSqlAsync($"""
                UPDATE loyalty_members AS m SET balance = t.balance, pending = t.pending, qualifying_points = m.qualifying_points + t.qualifying,
                    version = m.version + 1
                FROM unnest({ids}, {balances}, {pendings}, {qualifying}) AS t(id, balance, pending, qualifying) WHERE m.id = t.id
                """, ct);
        var rows = System.Text.Json.JsonSerializer.Serialize(totals.Select(t => new[] { t.MemberId, t.Balance, t.Pending, t.QualifyingDelta }));
        return db.Database.ExecuteSqlAsync($"""
            UPDATE loyalty_members AS m SET balance = json_extract(t.value, '$[1]'), pending = json_extract(t.value, '$[2]'),
                qualifying_points = m.qualifying_points + json_extract(t.value, '$[3]'), version = m.version + 1
            FROM json_each({rows}) AS t WHERE m.id = json_extract(t.value, '$[0]')
            """, ct);
    }
}
