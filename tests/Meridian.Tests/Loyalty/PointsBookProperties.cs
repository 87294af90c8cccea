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
    Hold,
    Refund,
}

public static class LedgerOps
{
    public static Arbitrary<LedgerOp> Op() => Arb.From(
        from kind in Gen.Frequency((4, Gen.Constant(LedgerOpKind.Earn)), (4, Gen.Constant(LedgerOpKind.Spend)), (1, Gen.Constant(LedgerOpKind.Adjust)),
            (2, Gen.Constant(LedgerOpKind.Reverse)), (2, Gen.Constant(LedgerOpKind.PassTimeAndExpire)), (3, Gen.Constant(LedgerOpKind.Hold)),
            (2, Gen.Constant(LedgerOpKind.Refund)))
        from amount in Gen.Choose(1, 400)
        from sign in Gen.Elements(1, -1)
        from pick in Gen.Choose(0, 1000)
        select new LedgerOp(kind, kind == LedgerOpKind.Adjust ? sign * amount : amount, pick));
}

/// <summary>
/// The ledger's rules (<see cref="PointsBook"/>) over thousands of random histories of earning (spendable or held for
/// a return window), releasing, spending, adjusting, reversing (earnings in part or whole), refunding under each refund
/// policy and expiring: the net balance is the sum of the entries, the pending points the sum of their pending side;
/// spendable and pending are what the released and held lots hold; owed points never exceed the policy's limit and exist
/// only while nothing is spendable; no lot goes below zero or above its grant; expiry takes only unspent points of due
/// released lots and never touches held ones; a spend's reversal puts back exactly what it took; replaying the journal
/// gives every stored balance.
/// </summary>
public sealed class PointsBookProperties
{
    private static readonly DateTime Start = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly int?[] LotLifetimes = [null, 1, 7, 30, 90];

    private static readonly RefundCover[] Covers = [RefundCover.Refuse, new(false, 150, true), new(true, 0, true), new(true, 80, true)];

    [Property(Arbitrary = [typeof(LedgerOps)], MaxTest = 4000)]
    public void The_ledger_invariants_hold_over_any_history(LedgerOp[] ops, byte policy)
    {
        var cover = Covers[policy % Covers.Length];
        var book = new PointsBook(1, 1, 1, 0, 0, 0, []);
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
                    case LedgerOpKind.Hold:
                        entries.Add(book.Grant(EntryKinds.Earn, LedgerAccounts.Issued, op.Amount, now.AddDays(30), now, heldUntil: now.AddDays(op.Pick % 20)));
                        break;
                    case LedgerOpKind.Refund:
                        // An order refund: an earning (held or released) taken back, in part or whole, as the refund policy allows.
                        var earnings = entries.Where(e => e.Kind == EntryKinds.Earn && reversed.GetValueOrDefault(e) < e.Total).ToList();
                        if (earnings.Count == 0) break;
                        var earning = earnings[op.Pick % earnings.Count];
                        var done = reversed.GetValueOrDefault(earning);
                        var refund = book.Reverse(earning, done, [], earning.Lot, now, points: 1 + op.Amount % (earning.Total - done), cover: cover);
                        entries.Add(refund);
                        reversed[earning] = done + Math.Abs(refund.Total);
                        Assert.True(book.Owed <= cover.NegativeLimit);
                        if (!cover.ClawBackPending) Assert.True(refund.Pending == 0 || earning.Lot!.Held || refund.Draws.All(d => d.Lot == earning.Lot || !d.Lot!.Held));
                        break;
                    case LedgerOpKind.Reverse:
                        var candidates = entries.Where(e => e.Kind is not (EntryKinds.Expire or EntryKinds.Reverse or EntryKinds.Release) && reversed.GetValueOrDefault(e) < Math.Abs(e.Total)).ToList();
                        if (candidates.Count == 0) break;
                        var original = candidates[op.Pick % candidates.Count];
                        var already = reversed.GetValueOrDefault(original);
                        // Earnings are sometimes reversed in part; spends always in full.
                        long? part = original.Total > 0 && op.Amount % 2 == 0 ? 1 + op.Amount % (original.Total - already) : null;
                        var before = original.Draws.ToDictionary(d => d.Lot!, d => d.Lot!.Remaining);
                        var reversal = book.Reverse(original, already, original.Draws, original.Lot, now, points: part);
                        entries.Add(reversal);
                        reversed[original] = already + Math.Abs(reversal.Total);
                        Assert.InRange(reversed[original], 1, Math.Abs(original.Total));
                        if (original.Total < 0)
                        {
                            // A refund restores what it took, lot by lot; what the member owed is then paid from those points.
                            Assert.Equal(original.Draws.Select(d => (d.Lot, -d.Points)), reversal.Draws.Where(d => d.Points < 0).Select(d => (d.Lot, d.Points)));
                            foreach (var draw in original.Draws)
                                Assert.Equal(before[draw.Lot!] + draw.Points - reversal.Draws.Where(d => d.Lot == draw.Lot && d.Points > 0).Sum(d => d.Points), draw.Lot!.Remaining);
                        }
                        break;
                    case LedgerOpKind.PassTimeAndExpire:
                        now = now.AddDays(op.Amount % 40);
                        foreach (var lot in book.Lots.ToList())
                        {
                            var held = lot.Held;
                            var pendingBefore = book.Pending;
                            if (book.Release(lot, now.AddDays(LotLifetimes[op.Pick % LotLifetimes.Length] ?? 10_000), now) is { } release)
                            {
                                Assert.True(held);
                                Assert.Equal(-release.Points, release.Pending);
                                Assert.Equal(pendingBefore + release.Pending, book.Pending);
                                entries.Add(release);
                            }
                        }
                        Assert.DoesNotContain(book.Lots, l => l.IsReleasable(now));
                        foreach (var lot in book.Lots)
                        {
                            var wasHeld = lot.Held;
                            var due = lot.IsDue(now);
                            var left = lot.Remaining;
                            if (book.Expire(lot, now) is { } expiry)
                            {
                                Assert.True(due);
                                Assert.False(wasHeld);
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
            AssertInvariants(book, entries, cover);
        }
    }

    private static void AssertInvariants(PointsBook book, List<LedgerEntry> entries, RefundCover cover)
    {
        Assert.True(book.Spendable >= 0 && book.Pending >= 0 && book.Owed >= 0);
        Assert.True(book.Owed == 0 || book.Spendable == 0);
        Assert.True(book.Owed <= cover.NegativeLimit);
        Assert.Equal(book.Balance, entries.Sum(e => e.Points));
        Assert.Equal(book.Pending, entries.Sum(e => e.Pending));
        Assert.Equal(book.Spendable, book.Lots.Where(l => !l.Held).Sum(l => l.Remaining));
        Assert.Equal(book.Pending, book.Lots.Where(l => l.Held).Sum(l => l.Remaining));
        var running = 0L;
        var owedBefore = 0L;
        foreach (var entry in entries)
        {
            // Replaying the journal gives every balance the entries recorded.
            running += entry.Points;
            Assert.Equal(running, entry.BalanceAfter);
            // Every entry balances against its lots: what it moved to the member is the lot it granted, less what it drew
            // from lots, plus what it paid of (or, negative, added to) the points owed.
            var owedAfter = Math.Max(0, -entry.BalanceAfter);
            Assert.Equal(entry.Total, (entry.Lot?.Granted ?? 0) - entry.Draws.Sum(d => d.Points) + (owedBefore - owedAfter));
            owedBefore = owedAfter;
        }
        Assert.Equal(book.Owed, owedBefore);
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
