using Meridian.Hosting;
using Meridian.Loyalty.Data;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// The rules of the ledger for one member: its balance and the lots that hold it. Every posting is made here, whether
/// the rows come from the database (<see cref="PointsLedger"/>) or from a property test, so that both exercise the same rules:
/// <list type="bullet">
/// <item>the balance is the sum of the entries and of the lots' remaining points, and never goes below zero;</item>
/// <item>spending draws from the lots that expire soonest (lots that never expire last) and records each draw;</item>
/// <item>reversing a spend puts back exactly what it drew, lot by lot; reversing a grant (in part or whole) takes its own lot first;</item>
/// <item>expiry takes only what is left in a lot once it is due, so points already spent are never expired.</item>
/// </list>
/// </summary>
public sealed class PointsBook(long tenantId, long programmeId, long memberId, long balance, IEnumerable<PointLot> lots)
{
    private readonly List<PointLot> lots = [.. lots];

    public long Balance { get; private set; } = balance;
    public IReadOnlyList<PointLot> Lots => lots;

    public static BusinessRuleException Insufficient(long balance, long requested) =>
        new($"The member holds {balance} points; {requested} are needed.", StatusCodes.Status409Conflict, ProblemTypes.InsufficientPoints)
        {
            Extensions = { ["balance"] = balance, ["requested"] = requested, ["shortfall"] = requested - balance },
        };

    /// <summary>Credits points in a new lot with its expiry (earning, a positive adjustment).</summary>
    public LedgerEntry Grant(string kind, string account, long points, DateTime? expiresAt, DateTime now, string? rule = null, string? reason = null,
        string? reference = null, string? sourceKey = null)
    {
        if (points <= 0) throw new ArgumentOutOfRangeException(nameof(points), "A grant credits at least one point.");
        Balance += points;
        var entry = NewEntry(kind, account, points, now, rule, reason, reference);
        entry.SourceKey = sourceKey;
        lots.Add(PointLot.Grant(entry, points, expiresAt));
        return entry;
    }

    /// <summary>Debits points from the lots that expire soonest (<paramref name="first"/>, when given, before any other).</summary>
    public LedgerEntry Take(string kind, string account, long points, DateTime now, string? rule = null, string? reason = null, string? reference = null,
        PointLot? first = null, long? reverses = null)
    {
        if (points <= 0) throw new ArgumentOutOfRangeException(nameof(points), "A debit takes at least one point.");
        if (Balance < points) throw Insufficient(Balance, points);
        Balance -= points;
        var entry = NewEntry(kind, account, -points, now, rule, reason, reference, reverses);
        var left = points;
        foreach (var lot in DrawOrder(first))
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
    /// Undoes an entry, or part of an earning: a grant is taken back (its own lot first), a debit is put back in full into
    /// the lots it drew from. <paramref name="alreadyReversed"/> is what earlier reversals of the entry took back;
    /// <paramref name="points"/> (null: all that is left) how much to reverse now. <paramref name="draws"/> are the
    /// original entry's draws with their lots; <paramref name="grantedLot"/> the lot a grant made.
    /// </summary>
    public LedgerEntry Reverse(LedgerEntry original, long alreadyReversed, IEnumerable<LotDraw> draws, PointLot? grantedLot, DateTime now,
        string? reason = null, long? points = null)
    {
        var amount = ToReverse(original, alreadyReversed, points);
        var rule = $"reverses entry {original.Id} ({original.Kind})";
        if (original.Points > 0)
            return Take(EntryKinds.Reverse, original.Account, amount, now, rule, reason, original.Reference, grantedLot, original.Id);

        Balance += amount;
        var entry = NewEntry(EntryKinds.Reverse, original.Account, amount, now, rule, reason, original.Reference, original.Id);
        foreach (var draw in draws)
        {
            var lot = draw.Lot ?? throw new InvalidOperationException("Load the lots of the draws to reverse them.");
            lot.Draw(entry, -draw.Points);
            if (!lots.Contains(lot)) lots.Add(lot);
        }
        return entry;
    }

    /// <summary>How many points a reversal of <paramref name="original"/> moves; throws when the entry cannot be reversed so.</summary>
    public static long ToReverse(LedgerEntry original, long alreadyReversed, long? points)
    {
        original.EnsureReversible();
        var left = Math.Abs(original.Points) - alreadyReversed;
        if (left <= 0)
            throw new BusinessRuleException($"Entry {original.Id} is already reversed.", StatusCodes.Status409Conflict, ProblemTypes.NotReversible);
        var amount = points ?? left;
        if (amount <= 0 || amount > left)
            throw new BusinessRuleException($"{left} points of entry {original.Id} are left to reverse.", StatusCodes.Status422UnprocessableEntity, ProblemTypes.NotReversible);
        if (original.Points < 0 && amount != left)
            throw new BusinessRuleException("A debit is reversed in full: its points go back to the lots they came from.", StatusCodes.Status422UnprocessableEntity, ProblemTypes.NotReversible);
        return amount;
    }

    /// <summary>Expires what is left in a due lot; null when the lot is not due or already empty.</summary>
    public LedgerEntry? Expire(PointLot lot, DateTime now)
    {
        if (!lot.IsDue(now) || lot.Remaining == 0) return null;
        Balance -= lot.Remaining;
        var entry = NewEntry(EntryKinds.Expire, LedgerAccounts.Expired, -lot.Remaining, now, $"lot {lot.Id} expired at {lot.ExpiresAt:O}");
        lot.Draw(entry, lot.Remaining);
        return entry;
    }

    private IEnumerable<PointLot> DrawOrder(PointLot? first)
    {
        if (first is { Remaining: > 0 }) yield return first;
        foreach (var lot in lots.Where(l => l.Remaining > 0 && l != first).OrderBy(l => l.ExpiresAt is null).ThenBy(l => l.ExpiresAt))
            yield return lot;
    }

    private LedgerEntry NewEntry(string kind, string account, long points, DateTime now, string? rule, string? reason = null, string? reference = null, long? reverses = null) => new()
    {
        TenantId = tenantId,
        ProgrammeId = programmeId,
        MemberId = memberId,
        Kind = kind,
        Account = account,
        Points = points,
        BalanceAfter = Balance,
        Rule = rule,
        Reason = reason,
        Reference = reference,
        ReversesEntryId = reverses,
        CreatedAt = now,
    };
}
