using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Earning;
using Meridian.Loyalty.Tiers;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Ledger;

public sealed record MemberEnrolled(long MemberId, long ProfileId, long ProgrammeId) : IDomainEvent
{
    public string EventType => "member.enrolled";
}

public sealed record PointsEarned(long MemberId, long ProfileId, long EntryId, long Points, long Balance, string? Reference) : IDomainEvent
{
    public string EventType => "points.earned";
}

public sealed record PointsSpent(long MemberId, long ProfileId, long EntryId, long Points, long Balance, string? Reference) : IDomainEvent
{
    public string EventType => "points.spent";
}

public sealed record PointsExpired(long MemberId, long ProfileId, long EntryId, long Points, long Balance) : IDomainEvent
{
    public string EventType => "points.expired";
}

public sealed record PointsExpiring(long MemberId, long ProfileId, long Points, DateTime ExpiresAt) : IDomainEvent
{
    public string EventType => "points.expiring";
}

/// <summary>A member's tier moved: <c>direction</c> up or down, <c>reason</c> what moved it (earned, floor, refund, review).</summary>
public sealed record TierChanged(long MemberId, long ProfileId, long? FromTierId, long? ToTierId, string? ToTier, string Direction, string Reason) : IDomainEvent
{
    public string EventType => "tier.changed";
}

/// <summary>
/// Posts to the ledger. Each posting runs in one transaction that starts by updating the member's balance row with a
/// conditional <c>UPDATE ... WHERE balance + delta >= 0</c>: that statement is the guard against overspending and the
/// row lock that serialises the member's postings on every node (SQLite: the database write lock). The rules
/// themselves are <see cref="PointsBook"/>'s. Callers may open the transaction (to add rows that commit with it).
/// Every entry records the brand where it happened (<see cref="LedgerEntry.BrandId"/>): the request's acting brand, or
/// the brand <see cref="At"/> names (the order follower: the order's brand); the events of a posting go out under that
/// brand, naming the member's profile there.
/// </summary>
public sealed class PointsLedger(MeridianDb db, EventPublisher events, TimeProvider time, TierStanding standing, TenantScope tenant, ProgrammeRules rules,
    CampaignSegments campaignSegments, ILogger<PointsLedger> logger)
{
    private long? brand;

    /// <summary>Posts what follows as happening at <paramref name="brandId"/> (for work without an acting brand, such as a follower of orders).</summary>
    public PointsLedger At(long brandId)
    {
        brand = brandId;
        return this;
    }

    /// <summary>Where a posting happens, and the member's profile there (the enrolment profile when not linked there).</summary>
    public readonly record struct Site(long BrandId, long ProfileId);

    private Task<Site> SiteAsync(LoyaltyProgramme programme, LoyaltyMember member, CancellationToken ct) =>
        SiteAtAsync(programme, member, brand ?? tenant.ActingBrandId ?? member.TenantId, ct);

    private async Task<Site> SiteAtAsync(LoyaltyProgramme programme, LoyaltyMember member, long brandId, CancellationToken ct)
    {
        if (!programme.Shared) return new(brandId, member.ProfileId);
        var profile = await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => p.MemberId == member.Id && p.BrandId == brandId)
            .Select(p => (long?)p.ProfileId).SingleOrDefaultAsync(ct);
        return new(brandId, profile ?? member.ProfileId);
    }

    /// <summary>
    /// Credits earned points, multiplied as the programme says (the tier's multiplier, running campaigns), and moves the
    /// member up a tier when they qualify. With a <paramref name="sourceKey"/> (an order), the member earns once per key:
    /// a repeat returns the first entry. With <paramref name="holdDays"/> the points are pending (held for a return
    /// window) until the release job frees them.
    /// </summary>
    public Task<LedgerEntry?> EarnAsync(long memberId, long basePoints, string? reference, CancellationToken ct, string rule = "api", string? sourceKey = null,
        int holdDays = 0) =>
        EarnAsync(memberId, reference, ct, sourceKey, (_, _) => Task.FromResult<Earning?>(new Earning(basePoints, rule, holdDays)));

    /// <summary>What an earning credits before multipliers, and the rule that produced it (the start of the entry's explanation).</summary>
    public sealed record Earning(long BasePoints, string Rule, int HoldDays = 0, long? EarningRuleId = null, long QualifyingSpend = 0);

    /// <summary>
    /// Credits what <paramref name="decide"/> says for the member, under its row lock (so caps it counts are exact);
    /// <paramref name="decide"/> returns null to earn nothing (the method then returns null too).
    /// </summary>
    public Task<LedgerEntry?> EarnAsync(long memberId, string? reference, CancellationToken ct, string? sourceKey,
        Func<LoyaltyProgramme, LoyaltyMember, Task<Earning?>> decide) => InTransactionAsync(async () =>
    {
        if (await LockAsync(memberId, ct) is not { } member) return null;
        if (sourceKey is not null && await db.Set<LedgerEntry>().AsNoTracking().SingleOrDefaultAsync(e => e.MemberId == memberId && e.SourceKey == sourceKey, ct) is { } earlier)
            return earlier;
        var (programme, tiers, campaigns) = await rules.OfAsync(db, member.ProgrammeId, ct);
        if (await decide(programme, member) is not { } earning) return null;
        var now = Instants.Now(time);
        var segments = await campaignSegments.OfAsync([member], campaigns, now, ct);
        var (points, explained) = EarningMath.Apply(earning.BasePoints, Multipliers(member, tiers, campaigns, now, segments), programme.Combination, programme.Rounding);
        var rule = $"{earning.Rule}: {explained}";
        if (points <= 0) throw new BusinessRuleException($"{rule}: nothing to credit.", StatusCodes.Status422UnprocessableEntity);

        // A grant draws from lots only to pay owed points: otherwise the member's lots need not be read.
        var book = await BookAsync(member, ct, loadLots: member.Owed > 0);
        DateTime? heldUntil = earning.HoldDays > 0 ? now.AddDays(earning.HoldDays) : null;
        var entry = book.Grant(EntryKinds.Earn, LedgerAccounts.Issued, points, programme.ExpiresAt(now), now, rule, reference: reference,
            sourceKey: sourceKey, heldUntil: heldUntil, earningRuleId: earning.EarningRuleId);
        entry.BasePoints = earning.BasePoints;
        entry.QualifyingSpend = earning.QualifyingSpend;
        var site = await SiteAsync(programme, member, ct);
        entry.BrandId = site.BrandId;
        db.Add(entry);
        await StoreAsync(member, book, points, ct);
        events.Publish(programme.GroupId, site.BrandId, () => new PointsEarned(member.Id, site.ProfileId, entry.Id, points, entry.BalanceAfter, reference));
        member.QualifyingPoints += points;
        if (tiers.Count > 0)
        {
            // The entry must be in the database for a qualifying value summed from the entries to count it.
            if (TierStanding.SumsEntries(programme)) await db.SaveChangesAsync(ct);
            await standing.EvaluateAsync(programme, member, tiers, mayDowngrade: false, "earned", site, ct);
        }
        await db.SaveChangesAsync(ct);
        return entry;
    });

    /// <summary>
    /// The member's tier multiplier and those of the programme's campaigns running now that the member qualifies for (by
    /// tier, and by segment as <paramref name="segments"/> read it for this posting); a segment's campaign names the segment.
    /// </summary>
    internal static List<Multiplier> Multipliers(LoyaltyMember member, List<LoyaltyTier> tiers, List<LoyaltyCampaign> campaigns, DateTime now, MemberSegments segments)
    {
        var multipliers = new List<Multiplier>();
        if (tiers.SingleOrDefault(t => t.Id == member.TierId) is { MultiplierPercent: not 100 } tier)
            multipliers.Add(new Multiplier($"tier {tier.Name}", tier.MultiplierPercent));
        multipliers.AddRange(campaigns.Where(c => c.AppliesTo(now, member.TierId, c.SegmentId is { } s && segments.In(member.Id, s)))
            .Select(c => new Multiplier(c.SegmentId is { } s ? $"campaign {c.Name} for segment {segments.Memberships.NameOf(s)}" : $"campaign {c.Name}", c.MultiplierPercent)));
        return multipliers;
    }

    public Task<LedgerEntry?> SpendAsync(long memberId, long points, string? reference, CancellationToken ct) => InTransactionAsync(async () =>
    {
        if (await MoveAsync(memberId, -points, ct) is not { } member) return null;
        var programme = (await rules.OfAsync(db, member.ProgrammeId, ct)).Programme;
        var book = await BookAsync(member, ct, spendableDelta: -points);
        var entry = book.Take(EntryKinds.Spend, LedgerAccounts.Redeemed, points, Instants.Now(time), "api: spend", reference: reference);
        var site = await SiteAsync(programme, member, ct);
        entry.BrandId = site.BrandId;
        db.Add(entry);
        events.Publish(programme.GroupId, site.BrandId, () => new PointsSpent(member.Id, site.ProfileId, entry.Id, points, entry.BalanceAfter, reference));
        await db.SaveChangesAsync(ct);
        return entry;
    });

    /// <summary>A staff correction, positive (a new lot, paying owed points first) or negative (drawn like a spend); the caller audits it.</summary>
    public Task<LedgerEntry?> AdjustAsync(long memberId, long points, string reason, CancellationToken ct) => InTransactionAsync(async () =>
    {
        if (await LockAsync(memberId, ct) is not { } member) return null;
        var programme = await ProgrammeAsync(member.ProgrammeId, ct);
        var book = await BookAsync(member, ct);
        var now = Instants.Now(time);
        var entry = points > 0
            ? book.Grant(EntryKinds.Adjust, LedgerAccounts.Adjustments, points, programme.ExpiresAt(now), now, "staff adjustment", reason)
            : book.Take(EntryKinds.Adjust, LedgerAccounts.Adjustments, -points, now, "staff adjustment", reason);
        entry.BrandId = (await SiteAsync(programme, member, ct)).BrandId;
        db.Add(entry);
        await StoreAsync(member, book, 0, ct);
        await db.SaveChangesAsync(ct);
        return entry;
    });

    /// <summary>
    /// Reverses an entry of the member (a refund): a spend's points go back into the lots they came from, an earning is
    /// taken back in whole or in part (with its qualifying points), pending or spendable; what the member no longer holds
    /// follows the programme's refund policy (<paramref name="byPolicy"/>; otherwise the reversal is refused with 409).
    /// Expiry, release and reversal entries are final.
    /// </summary>
    public Task<LedgerEntry?> ReverseAsync(long memberId, long entryId, string? reason, CancellationToken ct, long? points = null, bool byPolicy = false) =>
        InTransactionAsync(async () =>
    {
        var original = await db.Set<LedgerEntry>().AsNoTracking().SingleOrDefaultAsync(e => e.Id == entryId && e.MemberId == memberId, ct);
        if (original is null) return null;
        original.EnsureReversible();
        if (await LockAsync(memberId, ct) is not { } member) return null;
        // The balance row is locked from here on, so no other reversal of the entry can be in flight.
        var reversed = await ReversedAsync(original, ct);
        var programme = await ProgrammeAsync(member.ProgrammeId, ct);
        var book = await BookAsync(member, ct);
        var draws = await db.Set<LotDraw>().Include(d => d.Lot).Where(d => d.EntryId == original.Id).ToListAsync(ct);
        var grantedLot = original.Grants ? book.Lots.SingleOrDefault(l => l.EntryId == original.Id) ?? await db.Set<PointLot>().SingleAsync(l => l.EntryId == original.Id, ct) : null;
        var entry = book.Reverse(original, reversed, draws, grantedLot, Instants.Now(time), reason, points, byPolicy ? programme.Cover : RefundCover.Refuse);
        var site = await SiteAsync(programme, member, ct);
        entry.BrandId = site.BrandId;
        db.Add(entry);
        var earning = original.Kind == EntryKinds.Earn;
        if (earning && original.Total != 0)
        {
            // The refunded share of the order's spend, counted cumulatively so that a full refund in parts takes back all of it.
            var taken = Math.Abs(entry.Total);
            entry.QualifyingSpend = -(original.QualifyingSpend * (reversed + taken) / original.Total - original.QualifyingSpend * reversed / original.Total);
        }
        await StoreAsync(member, book, earning ? entry.Total : 0, ct);
        if (earning)
        {
            member.QualifyingPoints += entry.Total;
            await db.SaveChangesAsync(ct);
            var tiers = await db.Set<LoyaltyTier>().AsNoTracking().Where(t => t.ProgrammeId == programme.Id).ToListAsync(ct);
            await standing.EvaluateAsync(programme, member, tiers, programme.TierDowngrade == TierDowngrade.OnRefund, "refund", site, ct);
        }
        await db.SaveChangesAsync(ct);
        return entry;
    });

    /// <summary>How many of an entry's points earlier reversals took back (or put back).</summary>
    public async Task<long> ReversedAsync(LedgerEntry original, CancellationToken ct) =>
        Math.Abs(await db.Set<LedgerEntry>().Where(e => e.ReversesEntryId == original.Id).SumAsync(e => e.Points + e.Pending, ct));

    /// <summary>
    /// Expires what is left of the member's due lots, one entry per lot, under the member's row lock, in the caller's
    /// transaction (the expiry job expires a batch of members in one) or one of its own; returns how many lots it
    /// expired (0: nothing due, e.g. another node or a spend got there first).
    /// </summary>
    public async Task<int> ExpireDueAsync(long memberId, CancellationToken ct)
    {
        await using var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        var expired = await ExpireDueLockedAsync(memberId, ct);
        if (own is not null && expired > 0) await own.CommitAsync(ct);
        return expired;
    }

    private async Task<int> ExpireDueLockedAsync(long memberId, CancellationToken ct)
    {
        if (await LockAsync(memberId, ct) is not { } member) return 0;
        var now = Instants.Now(time);
        var due = await db.Set<PointLot>().Where(l => l.MemberId == memberId && l.Remaining > 0 && l.HeldUntil == null && l.ExpiresAt <= now)
            .OrderBy(l => l.ExpiresAt).ThenBy(l => l.Id).ToListAsync(ct);
        if (due.Count == 0) return 0;
        var programme = (await rules.OfAsync(db, member.ProgrammeId, ct)).Programme;
        var book = new PointsBook(member.TenantId, member.ProgrammeId, member.Id, member.Balance, member.Pending, member.Owed, due);
        // Expired points count against the brand that granted them.
        var grantedAt = programme.Shared ? await GrantingBrandsAsync(due, ct) : [];
        foreach (var lot in due)
        {
            var entry = book.Expire(lot, now)!;
            var site = await SiteAtAsync(programme, member, grantedAt.GetValueOrDefault(lot.EntryId, member.TenantId), ct);
            entry.BrandId = site.BrandId;
            db.Add(entry);
            events.Publish(programme.GroupId, site.BrandId, () => new PointsExpired(member.Id, site.ProfileId, entry.Id, -entry.Points, entry.BalanceAfter));
        }
        await StoreAsync(member, book, 0, ct);
        await db.SaveChangesAsync(ct);
        return due.Count;
    }

    private async Task<Dictionary<long, long>> GrantingBrandsAsync(List<PointLot> lots, CancellationToken ct)
    {
        var entryIds = lots.Select(l => l.EntryId).ToList();
        return await db.Set<LedgerEntry>().AsNoTracking().Where(e => entryIds.Contains(e.Id)).ToDictionaryAsync(e => e.Id, e => e.BrandId, ct);
    }

    /// <summary>
    /// Releases a held lot whose return window has passed: its points become spendable (paying owed points first) and
    /// start to expire by the programme's policy. Null when there is nothing to release (another node, or a refund, got
    /// there first). The release's source key (<c>release:{lot}</c>) is unique per member, so a lot is released once.
    /// </summary>
    public async Task<LedgerEntry?> ReleaseAsync(long lotId, long memberId, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (await LockAsync(memberId, ct) is not { } member) return null;
        var lot = await db.Set<PointLot>().Include(l => l.Entry).SingleAsync(l => l.Id == lotId, ct);
        var now = Instants.Now(time);
        if (!lot.IsReleasable(now)) return null;
        var programme = await ProgrammeAsync(member.ProgrammeId, ct);
        var book = await BookAsync(member, ct);
        var tracked = book.Lots.SingleOrDefault(l => l.Id == lotId) ?? lot;
        var entry = book.Release(tracked, programme.ExpiresAt(now), now);
        if (entry is not null)
        {
            entry.BrandId = lot.Entry?.BrandId ?? member.TenantId;
            db.Add(entry);
        }
        await StoreAsync(member, book, 0, ct);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        if (entry is not null)
            logger.LogDebug("Released lot {Lot} of member {Member}: {Points} points", lotId, memberId, entry.Points);
        return entry;
    }

    private async Task<LedgerEntry?> InTransactionAsync(Func<Task<LedgerEntry?>> post)
    {
        if (db.Database.CurrentTransaction is not null) return await post();
        using var noSavepoints = NoSavepoints(db);
        await using var transaction = await db.Database.BeginTransactionAsync();
        var entry = await post();
        if (entry is not null) await transaction.CommitAsync();
        return entry;
    }

    /// <summary>
    /// Turns off the savepoint EF makes before each <c>SaveChanges</c> inside a transaction (a round trip each) until
    /// disposed. A posting never carries on after a failed statement: its transaction is rolled back whole.
    /// </summary>
    internal static IDisposable NoSavepoints(MeridianDb db)
    {
        var before = db.Database.AutoSavepointsEnabled;
        db.Database.AutoSavepointsEnabled = false;
        return new Restore(() => db.Database.AutoSavepointsEnabled = before);
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    /// <summary>Takes the member's row lock without moving points; null when the member does not exist (in the caller's brands).</summary>
    private async Task<LoyaltyMember?> LockAsync(long memberId, CancellationToken ct) =>
        await db.Set<LoyaltyMember>().Where(m => m.Id == memberId).ExecuteUpdateAsync(s => s.SetProperty(m => m.Version, m => m.Version + 1), ct) == 0
            ? null
            : await db.Set<LoyaltyMember>().AsNoTracking().SingleAsync(m => m.Id == memberId, ct);

    /// <summary>
    /// The guard: moves the balance only if it stays at or above zero, in the caller's transaction. Returns the member
    /// as it is afterwards; null when it does not exist; throws the 409 with the shortfall when the balance is short.
    /// </summary>
    private async Task<LoyaltyMember?> MoveAsync(long memberId, long delta, CancellationToken ct)
    {
        var moved = await db.Set<LoyaltyMember>().Where(m => m.Id == memberId && m.Balance + delta >= 0)
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.Balance, m => m.Balance + delta)
                .SetProperty(m => m.Version, m => m.Version + 1), ct);
        var member = await db.Set<LoyaltyMember>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == memberId, ct);
        if (member is not null && moved == 0) throw PointsBook.Insufficient(member.NetBalance, -delta);
        return member;
    }

    /// <summary>
    /// The member's book as it was before <paramref name="spendableDelta"/> moved its balance (the spend path moves it
    /// first, as its guard), with the lots that hold points, spendable or pending.
    /// </summary>
    private async Task<PointsBook> BookAsync(LoyaltyMember member, CancellationToken ct, long spendableDelta = 0, bool loadLots = true)
    {
        var lots = loadLots ? await db.Set<PointLot>().Where(l => l.MemberId == member.Id && l.Remaining > 0).OrderBy(l => l.Id).ToListAsync(ct) : [];
        return new PointsBook(member.TenantId, member.ProgrammeId, member.Id, member.Balance - spendableDelta, member.Pending, member.Owed, lots);
    }

    /// <summary>Writes the book's totals to the member's row, whose lock the caller holds (so no other posting moved them meanwhile).</summary>
    private Task StoreAsync(LoyaltyMember member, PointsBook book, long qualifyingDelta, CancellationToken ct) =>
        db.Set<LoyaltyMember>().Where(m => m.Id == member.Id).ExecuteUpdateAsync(s => s
            .SetProperty(m => m.Balance, book.Spendable)
            .SetProperty(m => m.Pending, book.Pending)
            .SetProperty(m => m.Owed, book.Owed)
            .SetProperty(m => m.QualifyingPoints, m => m.QualifyingPoints + qualifyingDelta), ct);

    private Task<LoyaltyProgramme> ProgrammeAsync(long id, CancellationToken ct) =>
        db.Set<LoyaltyProgramme>().AsNoTracking().SingleAsync(p => p.Id == id, ct);

    /// <summary>
    /// Sets (or, with null, clears) the tier staff granted by hand, a floor under the member's tier: a floor above the
    /// current tier moves the member up at once. Null when the member does not exist; throws when the tier is not the
    /// programme's. Call it inside the caller's transaction, which may add the audit entry.
    /// </summary>
    public async Task<LoyaltyMember?> SetTierFloorAsync(long memberId, long? tierId, CancellationToken ct)
    {
        if (await LockAsync(memberId, ct) is not { } member) return null;
        var programme = await ProgrammeAsync(member.ProgrammeId, ct);
        var tiers = await db.Set<LoyaltyTier>().AsNoTracking().Where(t => t.ProgrammeId == programme.Id).ToListAsync(ct);
        if (tierId is not null && tiers.All(t => t.Id != tierId))
            throw new BusinessRuleException($"Tier {tierId} is not a tier of programme {programme.Id}.", StatusCodes.Status422UnprocessableEntity);
        await db.Set<LoyaltyMember>().Where(m => m.Id == memberId).ExecuteUpdateAsync(s => s.SetProperty(m => m.TierFloorId, tierId), ct);
        member.TierFloorId = tierId;
        await standing.EvaluateAsync(programme, member, tiers, mayDowngrade: false, "floor", await SiteAsync(programme, member, ct), ct);
        await db.SaveChangesAsync(ct);
        return await db.Set<LoyaltyMember>().AsNoTracking().SingleAsync(m => m.Id == memberId, ct);
    }

    /// <summary>
    /// Re-evaluates the member's tier for the periodic downgrade policy (up or down, never below the floor) and notes
    /// when; false when it is not due (reviewed within the programme's period: another node got there first).
    /// </summary>
    public async Task<bool> ReviewTierAsync(long memberId, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (await LockAsync(memberId, ct) is not { } member) return false;
        var programme = await ProgrammeAsync(member.ProgrammeId, ct);
        if (member.TierReviewedAt > TierReviewDueBefore(programme, time.GetUtcNow().UtcDateTime)) return false;
        var tiers = await db.Set<LoyaltyTier>().AsNoTracking().Where(t => t.ProgrammeId == programme.Id).ToListAsync(ct);
        await standing.EvaluateAsync(programme, member, tiers, mayDowngrade: true, "review", await SiteAsync(programme, member, ct), ct);
        await db.Set<LoyaltyMember>().Where(m => m.Id == memberId).ExecuteUpdateAsync(s => s.SetProperty(m => m.TierReviewedAt, time.GetUtcNow().UtcDateTime), ct);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return true;
    }

    /// <summary>A member reviewed at or before this instant is due for its next tier review.</summary>
    public static DateTime TierReviewDueBefore(LoyaltyProgramme programme, DateTime now) => now.AddDays(-Math.Max(1, programme.TierReviewDays));
}
