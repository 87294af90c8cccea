using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Loyalty.Expiry;

/// <summary>
/// Expires the due lots of many members in one transaction, set-based, by the ledger's rules (<see cref="PointsBook"/>:
/// one expiry entry per lot, drawing what is left in it): the members are locked in one statement
/// (<see cref="MemberRows"/>), their due lots read in one query after the lock (so a spend that committed first has
/// already drawn from them), and the entries, draws, lots, balances and <c>points.expired</c> written a table at a time.
/// A member the in-memory path does not handle (a programme shared by several brands, whose expiries count against
/// the brand that granted each lot; owed points) is expired through <see cref="PointsLedger"/> in the same transaction.
/// </summary>
public sealed class BatchExpiry(MeridianDb db, PointsLedger ledger, EventPublisher events, ProgrammeRules rules, TimeProvider time)
{
    /// <summary>Returns how many of the members had lots to expire (0 for one another node or a spend got to first).</summary>
    public async Task<int> ExpireAsync(IReadOnlyCollection<long> memberIds, CancellationToken ct)
    {
        using var noSavepoints = PointsLedger.NoSavepoints(db);
        // SQLite: in turn with this process's postings, not in SQLite's sleep-and-retry.
        using var turn = await db.Database.WriterTurnAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var members = await MemberRows.LockAsync(db, [.. memberIds.Distinct().Order()], ct);
        var ids = members.Keys.ToList();
        var now = Instants.Now(time);
        var due = (await db.Set<PointLot>().AsNoTracking().Where(l => ids.Contains(l.MemberId) && l.Remaining > 0 && l.HeldUntil == null && l.ExpiresAt <= now)
            .OrderBy(l => l.ExpiresAt).ThenBy(l => l.Id).ToListAsync(ct)).ToLookup(l => l.MemberId);

        var expired = 0;
        var written = new List<(LoyaltyMember Member, long GroupId, PointLot Lot, LedgerEntry Entry)>();
        var totals = new List<MemberRows.Totals>();
        foreach (var member in members.Values)
        {
            var lots = due[member.Id].ToList();
            if (lots.Count == 0) continue;
            var programme = (await rules.OfAsync(db, member.ProgrammeId, ct)).Programme;
            if (programme.Shared || member.Owed > 0)
            {
                if (await ledger.ExpireDueAsync(member.Id, ct) > 0) expired++;
                db.ChangeTracker.Clear();
                continue;
            }
            var book = new PointsBook(member.TenantId, member.ProgrammeId, member.Id, member.Balance, member.Pending, member.Owed, lots);
            foreach (var lot in lots)
            {
                var entry = book.Expire(lot, now)!;
                entry.BrandId = member.TenantId;
                written.Add((member, programme.GroupId, lot, entry));
            }
            totals.Add(new(member.Id, book.Spendable, book.Pending, 0));
            expired++;
        }

        if (written.Count > 0)
        {
            await EntityRows.InsertAsync(db, [.. written.Select(w => w.Entry)], returnKeys: true, ct);
            var draws = written.SelectMany(w => w.Entry.Draws.Select(d => (Draw: d, w.Entry))).ToList();
            foreach (var (draw, entry) in draws) draw.EntryId = entry.Id;
            await EntityRows.InsertAsync(db, [.. draws.Select(d => d.Draw)], returnKeys: false, ct);
            await EntityRows.UpdateAsync(db, [.. written.Select(w => w.Lot)], [nameof(PointLot.Remaining)], token: null, ct);
            await MemberRows.StoreTotalsAsync(db, totals, ct);
            var tx = db.Database.CurrentTransaction!.GetDbTransaction();
            foreach (var site in written.GroupBy(w => (w.GroupId, w.Member.TenantId)))
                await events.PublishManyAsync(tx, site.Key.GroupId, site.Key.TenantId, site.Select(w =>
                    (IDomainEvent)new PointsExpired(w.Member.Id, w.Member.ProfileId, w.Entry.Id, -w.Entry.Points, w.Entry.BalanceAfter)), ct);
        }
        await transaction.CommitAsync(ct);
        return expired;
    }
}
