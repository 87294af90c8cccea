using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;

namespace Meridian.Tests.Loyalty;

/// <summary>One step of a random history: <see cref="Amount"/> and <see cref="Pick"/> mean what the <see cref="Kind"/> needs.</summary>
public sealed record LedgerOp(LedgerOpKind Kind, long Amount, int Pick);

public enum LedgerOpKind
{
    Earn,
    Spend,
    Adjust,
    Reverse,
    PassTimeAndExpire,
}

public static class LedgerOps
{
    public static Arbitrary<LedgerOp> Op() => Arb.From(
        from kind in Gen.Frequency((4, Gen.Constant(LedgerOpKind.Earn)), (4, Gen.Constant(LedgerOpKind.Spend)), (1, Gen.Constant(LedgerOpKind.Adjust)),
            (2, Gen.Constant(LedgerOpKind.Reverse)), (2, Gen.Constant(LedgerOpKind.PassTimeAndExpire)))
        from amount in Gen.Choose(1, 400)
        from sign in Gen.Elements(1, -1)
        from pick in Gen.Choose(0, 1000)
        select new LedgerOp(kind, kind == LedgerOpKind.Adjust ? sign * amount : amount, pick));
}

/// <summary>
/// The ledger's rules (<see cref="PointsBook"/>) over thousands of random histories of earning, spending, adjusting,
/// reversing (earnings in part or whole) and expiring: the balance is the sum of the entries and of the lots, never negative; no lot goes below
/// zero or above its grant; expiry takes only unspent points of due lots; a reversal puts back exactly what was taken;
/// replaying the journal gives every stored balance.
/// </summary>
public sealed class PointsBookProperties
{
    private static readonly DateTime Start = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly int?[] LotLifetimes = [null, 1, 7, 30, 90];

    [Property(Arbitrary = [typeof(LedgerOps)], MaxTest = 2000)]
    public void The_ledger_invariants_hold_over_any_history(LedgerOp[] ops)
    {
        var book = new PointsBook(1, 1, 1, 0, []);
        var entries = new List<LedgerEntry>();
        var reversed = new Dictionary<LedgerEntry, long>();
        var now = Start;
        foreach (var op in ops)
        {
            try
            {
                switch (op.Kind)
                {
                    case LedgerOpKind.Earn:
                        var lifetime = LotLifetimes[op.Pick % LotLifetimes.Length];
                        entries.Add(book.Grant(EntryKinds.Earn, LedgerAccounts.Issued, op.Amount, lifetime is { } days ? now.AddDays(days) : null, now));
                        break;
                    case LedgerOpKind.Spend:
                        entries.Add(book.Take(EntryKinds.Spend, LedgerAccounts.Redeemed, op.Amount, now));
                        break;
                    case LedgerOpKind.Adjust:
                        entries.Add(op.Amount > 0
                            ? book.Grant(EntryKinds.Adjust, LedgerAccounts.Adjustments, op.Amount, now.AddDays(30), now, reason: "test")
                            : book.Take(EntryKinds.Adjust, LedgerAccounts.Adjustments, -op.Amount, now, reason: "test"));
                        break;
                    case LedgerOpKind.Reverse:
                        var candidates = entries.Where(e => e.Kind is not (EntryKinds.Expire or EntryKinds.Reverse) && reversed.GetValueOrDefault(e) < Math.Abs(e.Points)).ToList();
                        if (candidates.Count == 0) break;
                        var original = candidates[op.Pick % candidates.Count];
                        var already = reversed.GetValueOrDefault(original);
                        // Earnings are sometimes reversed in part; spends always in full.
                        long? part = original.Points > 0 && op.Amount % 2 == 0 ? 1 + op.Amount % (original.Points - already) : null;
                        var before = original.Draws.ToDictionary(d => d.Lot!, d => d.Lot!.Remaining);
                        var reversal = book.Reverse(original, already, original.Draws, original.Lot, now, points: part);
                        entries.Add(reversal);
                        reversed[original] = already + Math.Abs(reversal.Points);
                        Assert.InRange(reversed[original], 1, Math.Abs(original.Points));
                        if (original.Points < 0)
                            foreach (var draw in original.Draws)
                                Assert.Equal(before[draw.Lot!] + draw.Points, draw.Lot!.Remaining);
                        break;
                    case LedgerOpKind.PassTimeAndExpire:
                        now = now.AddDays(op.Amount % 40);
                        foreach (var lot in book.Lots)
                        {
                            var due = lot.IsDue(now);
                            var left = lot.Remaining;
                            if (book.Expire(lot, now) is { } expiry)
                            {
                                Assert.True(due);
                                Assert.Equal(-left, expiry.Points);
                                entries.Add(expiry);
                            }
                        }
                        break;
                }
            }
            catch (BusinessRuleException rule) when (rule.Type == ProblemTypes.InsufficientPoints)
            {
                Assert.True((long)rule.Extensions["shortfall"]! > 0);
            }
            AssertInvariants(book, entries);
        }
    }

    private static void AssertInvariants(PointsBook book, List<LedgerEntry> entries)
    {
        Assert.True(book.Balance >= 0);
        Assert.Equal(book.Balance, entries.Sum(e => e.Points));
        Assert.Equal(book.Balance, book.Lots.Sum(l => l.Remaining));
        var running = 0L;
        foreach (var entry in entries)
        {
            running += entry.Points;
            Assert.Equal(running, entry.BalanceAfter);
            // Every entry balances against its lots: a grant makes one lot of its points, any other entry draws exactly its points.
            if (entry.Lot is not null) Assert.Equal(entry.Points, entry.Lot.Granted);
            else Assert.Equal(-entry.Points, entry.Draws.Sum(d => d.Points));
        }
        var draws = entries.SelectMany(e => e.Draws.Select(d => (Entry: e, Draw: d))).ToList();
        foreach (var lot in book.Lots)
        {
            Assert.InRange(lot.Remaining, 0, lot.Granted);
            var onLot = draws.Where(x => x.Draw.Lot == lot).ToList();
            Assert.Equal(lot.Granted - lot.Remaining, onLot.Sum(x => x.Draw.Points));
            // Nothing spent is expired: expiry took at most what spending and reversals had left in the lot.
            var expired = onLot.Where(x => x.Entry.Kind == EntryKinds.Expire).Sum(x => x.Draw.Points);
            var netSpent = onLot.Where(x => x.Entry.Kind != EntryKinds.Expire).Sum(x => x.Draw.Points);
            Assert.True(expired + netSpent <= lot.Granted);
            Assert.All(onLot.Where(x => x.Entry.Kind == EntryKinds.Expire), x => Assert.True(lot.IsDue(x.Entry.CreatedAt)));
        }
    }
}
