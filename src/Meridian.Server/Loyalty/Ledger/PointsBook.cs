using Meridian.Hosting;
using Meridian.Loyalty.Data;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// How a reversal of an earning (a refund) may cover points the member's spendable balance no longer holds: from its
/// pending points (<paramref name="ClawBackPending"/>), by going below zero down to <paramref name="NegativeLimit"/>;
/// <paramref name="Partial"/>: take what these allow and forgo the rest, rather than refuse the whole reversal.
/// </summary>
public readonly record struct RefundCover(bool ClawBackPending, long NegativeLimit, bool Partial)
{
    public static readonly RefundCover Refuse = new(false, 0, false);
}

/// <summary>
/// The rules of the ledger for one member: its spendable, pending and owed points and the lots that hold them. Every
/// posting is made here, whether the rows come from the database (<see cref="PointsLedger"/>) or from a property test,
/// so that both exercise the same rules:
/// <list type="bullet">
/// <item>the net balance (spendable less owed) is the sum of the entries' points, the pending points the sum of their
/// pending points; spendable is what the released lots hold, pending what the held lots hold; nothing is owed while
/// anything is spendable (a credit pays owed points first);</item>
/// <item>spending draws from the released lots that expire soonest (lots that never expire last) and records each draw;</item>
/// <item>reversing a spend puts back exactly what it drew, lot by lot; reversing a grant (in part or whole) takes its own
/// lot first, then spendable lots, then, as the refund policy allows, pending lots and points owed;</item>
/// <item>held lots are released once (their points become spendable and start to expire); expiry takes only what is left
/// in a released lot once it is due, so points already spent are never expired.</item>
/// </list>
/// </summary>
public sealed class PointsBook(long tenantId, long programmeId, long memberId, long spendable, long pending, long owed, IEnumerable<PointLot> lots)
{
    private readonly List<PointLot> lots = [.. lots];

    public PointsBook(long tenantId, long programmeId, long memberId, long balance, IEnumerable<PointLot> lots)
        : this(tenantId, programmeId, memberId, balance, 0, 0, lots)
    {
    }

    public long Spendable { get; private set; } = spendable;
    public long Pending { get; private set; } = pending;
    public long Owed { get; private set; } = owed;
    /// <summary>Spendable less owed: the sum of the entries' points.</summary>
    public long Balance => Spendable - Owed;
    public IReadOnlyList<PointLot> Lots => lots;

    public static BusinessRuleException Insufficient(long balance, long requested) =>
        new($"The member holds {balance} points; {requested} are needed.", StatusCodes.Status409Conflict, ProblemTypes.InsufficientPoints)
        {
            Extensions = { ["balance"] = balance, ["requested"] = requested, ["shortfall"] = requested - Math.Max(0, balance) },
        };

    /// <summary>
    /// Credits points in a new lot (earning, a positive adjustment): spendable with its expiry, or pending until
    /// <paramref name="heldUntil"/> (expiring from its release). Spendable points pay owed points first.
    /// </summary>
    public LedgerEntry Grant(string kind, string account, long points, DateTime? expiresAt, DateTime now, string? rule = null, string? reason = null,
        string? reference = null, string? sourceKey = null, DateTime? heldUntil = null, long? earningRuleId = null)
    {
        if (points <= 0) throw new ArgumentOutOfRangeException(nameof(points), "A grant credits at least one point.");
        LedgerEntry entry;
        if (heldUntil is not null)
        {
            Pending += points;
            entry = NewEntry(kind, account, 0, now, rule, reason, reference, pending: points, earningRuleId: earningRuleId);
        }
        else
        {
            Spendable += points;
            entry = NewEntry(kind, account, points, now, rule, reason, reference, earningRuleId: earningRuleId);
        }
        entry.SourceKey = sourceKey;
        lots.Add(PointLot.Grant(entry, points, expiresAt, heldUntil));
        Settle(entry);
        return entry;
    }

    /// <summary>Debits points from the spendable lots that expire soonest (<paramref name="first"/>, when given, before any other).</summary>
    public LedgerEntry Take(string kind, string account, long points, DateTime now, string? rule = null, string? reason = null, string? reference = null)
    {
        if (points <= 0) throw new ArgumentOutOfRangeException(nameof(points), "A debit takes at least one point.");
        if (Spendable < points) throw Insufficient(Balance, points);
        Spendable -= points;
        var entry = NewEntry(kind, account, -points, now, rule, reason, reference);
        var left = points;
        foreach (var lot in DrawOrder(null))
        {
            var taken = Math.Min(left, lot.Remaining);
            lot.Draw(entry, taken);
            left -= taken;
            if (left == 0) break;
        }
        if (left != 0) throw new InvalidOperationException($"Member {memberId}: the lots hold {points - left} of the {points} points the balance promised.");
        return entry;
    }

    /// <summary>
    /// Undoes an entry, or part of an earning: a grant is taken back (its own lot first, held or not, then spendable
    /// lots, then as <paramref name="cover"/> allows), a debit is put back in full into the lots it drew from.
    /// <paramref name="alreadyReversed"/> is what earlier reversals of the entry took back; <paramref name="points"/>
    /// (null: all that is left) how much to reverse now. <paramref name="draws"/> are the original entry's draws with
    /// their lots; <paramref name="grantedLot"/> the lot a grant made.
    /// </summary>
    public LedgerEntry Reverse(LedgerEntry original, long alreadyReversed, IEnumerable<LotDraw> draws, PointLot? grantedLot, DateTime now,
        string? reason = null, long? points = null, RefundCover cover = default)
    {
        var amount = ToReverse(original, alreadyReversed, points);
        var rule = $"reverses entry {original.Id} ({original.Kind})";
        if (original.Total > 0) return TakeBack(original, amount, grantedLot, now, rule, reason, cover);

        Spendable += amount;
        var entry = NewEntry(EntryKinds.Reverse, original.Account, amount, now, rule, reason, original.Reference, original.Id);
        foreach (var draw in draws)
        {
            var lot = draw.Lot ?? throw new InvalidOperationException("Load the lots of the draws to reverse them.");
            if (lot.Held) throw new InvalidOperationException($"Lot {lot.Id} is held; a debit never drew from it.");
            lot.Draw(entry, -draw.Points);
            if (!lots.Contains(lot)) lots.Add(lot);
        }
        Settle(entry);
        return entry;
    }

    private LedgerEntry TakeBack(LedgerEntry original, long amount, PointLot? grantedLot, DateTime now, string rule, string? reason, RefundCover cover)
    {
        var plan = new List<(PointLot Lot, long Points)>();
        var left = amount;
        var candidates = new List<PointLot>();
        if (grantedLot is { Remaining: > 0 }) candidates.Add(grantedLot);
        candidates.AddRange(DrawOrder(grantedLot));
        if (cover.ClawBackPending)
            candidates.AddRange(lots.Where(l => l.Held && l.Remaining > 0 && l != grantedLot).OrderByDescending(l => l.HeldUntil).ThenByDescending(l => l.Id));
        foreach (var lot in candidates)
        {
            if (left == 0) break;
            var taken = Math.Min(left, lot.Remaining);
            plan.Add((lot, taken));
            left -= taken;
        }
        var owed = Math.Min(left, Math.Max(0, cover.NegativeLimit - Owed));
        var forgone = left - owed;
        if (forgone > 0 && (!cover.Partial || forgone == amount)) throw Insufficient(Balance, amount);

        var fromPending = plan.Where(p => p.Lot.Held).Sum(p => p.Points);
        var fromSpendable = amount - forgone - owed - fromPending;
        Spendable -= fromSpendable;
        Pending -= fromPending;
        Owed += owed;
        var explained = rule
            + (fromPending > 0 ? $"; {fromPending} from pending points" : "")
            + (owed > 0 ? $"; {owed} owed (the balance goes below zero, limit {cover.NegativeLimit})" : "")
            + (forgone > 0 ? $"; {forgone} could not be taken back (the refund policy allows no more)" : "");
        var entry = NewEntry(EntryKinds.Reverse, original.Account, -(fromSpendable + owed), now, explained, reason, original.Reference, original.Id, -fromPending);
        foreach (var (lot, taken) in plan) lot.Draw(entry, taken);
        return entry;
    }

    /// <summary>How many points a reversal of <paramref name="original"/> moves; throws when the entry cannot be reversed so.</summary>
    public static long ToReverse(LedgerEntry original, long alreadyReversed, long? points)
    {
        original.EnsureReversible();
        var left = Math.Abs(original.Total) - alreadyReversed;
        if (left <= 0)
            throw new BusinessRuleException($"Entry {original.Id} is already reversed.", StatusCodes.Status409Conflict, ProblemTypes.NotReversible);
        var amount = points ?? left;
        if (amount <= 0 || amount > left)
            throw new BusinessRuleException($"{left} points of entry {original.Id} are left to reverse.", StatusCodes.Status422UnprocessableEntity, ProblemTypes.NotReversible);
        if (original.Total < 0 && amount != left)
            throw new BusinessRuleException("A debit is reversed in full: its points go back to the lots they came from.", StatusCodes.Status422UnprocessableEntity, ProblemTypes.NotReversible);
        return amount;
    }

    /// <summary>Makes a held lot's points spendable (null when the lot is not due or not held; an emptied lot is released without an entry).</summary>
    public LedgerEntry? Release(PointLot lot, DateTime? expiresAt, DateTime now)
    {
        if (!lot.IsReleasable(now)) return null;
        var points = lot.Remaining;
        lot.Release(expiresAt);
        if (points == 0) return null;
        Pending -= points;
        Spendable += points;
        var entry = NewEntry(EntryKinds.Release, LedgerAccounts.Pending, points, now, $"lot {lot.Id} released after its hold", reference: lot.Entry?.Reference,
            pending: -points);
        entry.SourceKey = $"release:{lot.Id}";
        Settle(entry);
        return entry;
    }

    /// <summary>Expires what is left in a due lot; null when the lot is not due or already empty.</summary>
    public LedgerEntry? Expire(PointLot lot, DateTime now)
    {
        if (lot.Held || !lot.IsDue(now) || lot.Remaining == 0) return null;
        Spendable -= lot.Remaining;
        var entry = NewEntry(EntryKinds.Expire, LedgerAccounts.Expired, -lot.Remaining, now, $"lot {lot.Id} expired at {lot.ExpiresAt:O}");
        lot.Draw(entry, lot.Remaining);
        return entry;
    }

    /// <summary>Pays owed points from spendable lots, within the entry that made them spendable (the net balance does not move).</summary>
    private void Settle(LedgerEntry entry)
    {
        if (Owed == 0) return; // nearly always: the lots are not sorted then
        foreach (var lot in DrawOrder(null))
        {
            var taken = Math.Min(Owed, lot.Remaining);
            lot.Draw(entry, taken);
            Owed -= taken;
            Spendable -= taken;
            if (Owed == 0) return;
        }
    }

    private IEnumerable<PointLot> DrawOrder(PointLot? skip) =>
        lots.Where(l => l.Remaining > 0 && !l.Held && l != skip).OrderBy(l => l.ExpiresAt is null).ThenBy(l => l.ExpiresAt).ToList();

    private LedgerEntry NewEntry(string kind, string account, long points, DateTime now, string? rule, string? reason = null, string? reference = null,
        long? reverses = null, long pending = 0, long? earningRuleId = null) => new()
    {
        TenantId = tenantId,
        ProgrammeId = programmeId,
        MemberId = memberId,
        Kind = kind,
        Account = account,
        Points = points,
        Pending = pending,
        BalanceAfter = Balance,
        Rule = rule,
        Reason = reason,
        Reference = reference,
        ReversesEntryId = reverses,
        EarningRuleId = earningRuleId,
        CreatedAt = now,
    };
}
