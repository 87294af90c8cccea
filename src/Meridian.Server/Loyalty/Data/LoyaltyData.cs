using Meridian.Hosting;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Loyalty.Data;

/// <summary>When the points of a lot expire, counted from the moment they were granted (UTC).</summary>
public enum ExpiryPolicy
{
    Never = 0,
    AfterDays = 1,
    EndOfMonth = 2,
    EndOfYear = 3,
}

/// <summary>What a refund does when the points it takes back are no longer in the member's spendable balance.</summary>
public enum RefundShortfallPolicy
{
    /// <summary>The reversal is refused (409 with the shortfall); an order refund is logged and left unposted.</summary>
    Refuse = 0,
    /// <summary>The balance goes below zero, down to the programme's <see cref="LoyaltyProgramme.NegativeLimit"/>; later credits pay it back first.</summary>
    GoNegative = 1,
    /// <summary>What the balance lacks is taken from the member's pending points (other orders' held lots).</summary>
    ClawBackFromPending = 2,
}

/// <summary>What qualifies a member for a tier.</summary>
public enum TierBasis
{
    /// <summary>Qualifying points: what orders and rules earned, less what refunds took back (spending does not lower them).</summary>
    QualifyingPoints = 0,
    /// <summary>Order spend, in minor units, less refunds.</summary>
    Spend = 1,
}

/// <summary>Over which period the basis is counted.</summary>
public enum TierWindow
{
    Lifetime = 0,
    /// <summary>The last <see cref="LoyaltyProgramme.TierWindowDays"/> days.</summary>
    RollingDays = 1,
    /// <summary>Since 1 January (UTC) of the current year.</summary>
    CalendarYear = 2,
}

/// <summary>When a member can move down a tier (never below the tier staff set as a floor).</summary>
public enum TierDowngrade
{
    Never = 0,
    /// <summary>When a refund takes back what qualified them.</summary>
    OnRefund = 1,
    /// <summary>Re-evaluated every <see cref="LoyaltyProgramme.TierReviewDays"/> days by the tier review job.</summary>
    Periodic = 2,
}

/// <summary>
/// A row of a loyalty programme, owned (<see cref="ITenantOwned.TenantId"/>) by the brand that owns the programme. When
/// the programme is shared by the group, the tenant filter also lets every brand the programme is open to
/// (<see cref="LoyaltyProgrammeBrand"/>) read it, and the write guard lets them write it: a member, its lots and entries
/// are one account whichever brand posts to it.
/// </summary>
public interface IProgrammeShared : ITenantOwned;

/// <summary>
/// A loyalty programme. It belongs to the brand that runs it (<see cref="TenantId"/>) inside a group
/// (<see cref="GroupId"/>). A programme <see cref="Shared"/> by the group is open to several brands of it
/// (<see cref="LoyaltyProgrammeBrand"/>; the owner is one of them): one member per person across them, one balance.
/// A brand takes part in one programme at most, its own or a shared one.
/// </summary>
public sealed class LoyaltyProgramme : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long GroupId { get; init; }
    public bool Shared { get; init; }
    public required string Name { get; set; }
    public ExpiryPolicy Expiry { get; set; }
    /// <summary>For <see cref="ExpiryPolicy.AfterDays"/>: how many days a lot lives.</summary>
    public int ExpiryDays { get; set; }
    /// <summary>How many days before a lot expires the <c>points.expiring</c> event goes out (0: none).</summary>
    public int ExpiringNoticeDays { get; set; }
    /// <summary>Points an order earns per unit of its currency (before the tier's multiplier; fractions are dropped).</summary>
    public long PointsPerCurrencyUnit { get; set; } = 1;
    /// <summary>Points that pay one unit of the currency at checkout (0: points cannot pay at checkout).</summary>
    public long CheckoutPointsPerCurrencyUnit { get; set; }
    public TierBasis TierBasis { get; set; }
    public TierWindow TierWindow { get; set; }
    public int TierWindowDays { get; set; }
    public TierDowngrade TierDowngrade { get; set; }
    public int TierReviewDays { get; set; }

    /// <summary>Where the tier window starts at <paramref name="now"/>.</summary>
    public DateTime TierWindowStart(DateTime now) => TierWindow switch
    {
        TierWindow.RollingDays => now.AddDays(-TierWindowDays),
        TierWindow.CalendarYear => new DateTime(now.Year, 1, 1, 0, 0, 0, DateTimeKind.Utc),
        _ => DateTime.MinValue,
    };

    /// <summary>How fractional points (amount × points per unit, multipliers) are rounded.</summary>
    public PointsRounding Rounding { get; set; }
    /// <summary>How the tier's and running campaigns' multipliers combine.</summary>
    public MultiplierCombination Combination { get; set; }
    /// <summary>Order lines with these SKUs earn nothing (a JSON array of strings).</summary>
    public string ExcludedSkus { get; set; } = "[]";
    /// <summary>Order lines in these categories earn nothing (a JSON array of strings).</summary>
    public string ExcludedCategories { get; set; } = "[]";
    /// <summary>Days an order's points are held (pending, not spendable) for its return window (0: spendable at once).</summary>
    public int PendingDays { get; set; }
    public RefundShortfallPolicy RefundShortfall { get; set; }
    /// <summary>For <see cref="RefundShortfallPolicy.GoNegative"/>: how far below zero a refund may take the balance.</summary>
    public long NegativeLimit { get; set; }
    public DateTime CreatedAt { get; init; }

    /// <summary>How a reversal of an earning may cover what the spendable balance no longer holds.</summary>
    public RefundCover Cover => new(RefundShortfall == RefundShortfallPolicy.ClawBackFromPending,
        RefundShortfall == RefundShortfallPolicy.GoNegative ? NegativeLimit : 0, RefundShortfall != RefundShortfallPolicy.Refuse);

    /// <summary>Lots granted at <paramref name="grantedAt"/> expire at the returned instant (null: never).</summary>
    public DateTime? ExpiresAt(DateTime grantedAt) => Expiry switch
    {
        ExpiryPolicy.Never => null,
        ExpiryPolicy.AfterDays => grantedAt.AddDays(ExpiryDays),
        ExpiryPolicy.EndOfMonth => new DateTime(grantedAt.Year, grantedAt.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1),
        ExpiryPolicy.EndOfYear => new DateTime(grantedAt.Year + 1, 1, 1, 0, 0, 0, DateTimeKind.Utc),
        _ => throw new InvalidOperationException($"Unknown expiry policy {Expiry}."),
    };
}

/// <summary>
/// A brand a programme is open to (its members earn and spend there). Every programme has a row per brand, its own
/// brand's for a per-brand programme; <see cref="BrandId"/> is unique, so a brand takes part in one programme only.
/// Not tenant-owned: the tenant filter itself reads it (<see cref="IProgrammeShared"/>).
/// </summary>
public sealed class LoyaltyProgrammeBrand
{
    public long ProgrammeId { get; init; }
    public long BrandId { get; init; }
    /// <summary>The programme's owner brand (the <c>tenant_id</c> of the programme's rows), for the tenant filter.</summary>
    public long OwnerBrandId { get; init; }
}

/// <summary>
/// A member's profile at one brand of its programme: the same person at two brands of a shared programme is two
/// profiles of one member. Unique per member and brand, and per programme and profile.
/// </summary>
public sealed class LoyaltyMemberProfile : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    public long MemberId { get; init; }
    public LoyaltyMember? Member { get; init; }
    public long BrandId { get; init; }
    public long ProfileId { get; init; }
    public DateTime LinkedAt { get; init; }
}

/// <summary>A tier of a programme, reached by qualifying points (kept apart from the spendable balance).</summary>
public sealed class LoyaltyTier : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    public required string Name { get; set; }
    /// <summary>Higher is better; unique within the programme.</summary>
    public int Rank { get; set; }
    public long QualifyingPoints { get; set; }
    /// <summary>For a programme qualifying by spend: the spend (minor units) within the window that reaches the tier.</summary>
    public long QualifyingSpend { get; set; }
    /// <summary>Earning multiplier in percent (100: ×1, 150: ×1.5), so that points stay whole numbers.</summary>
    public int MultiplierPercent { get; set; } = 100;
    /// <summary>Named benefits (free shipping, birthday gift...) as a JSON array of strings.</summary>
    public string Benefits { get; set; } = "[]";

    /// <summary>The best tier whose threshold the qualifying value reaches (null: below every tier).</summary>
    public static LoyaltyTier? For(IEnumerable<LoyaltyTier> tiers, TierBasis basis, long qualifying) =>
        tiers.Where(t => (basis == TierBasis.Spend ? t.QualifyingSpend : t.QualifyingPoints) <= qualifying).MaxBy(t => t.Rank);
}

/// <summary>
/// A profile enrolled in a programme. <see cref="Balance"/> is the row every posting updates with a conditional
/// <c>UPDATE ... WHERE balance + delta >= 0</c> in the transaction that writes its entries: the database, not a lock in
/// memory, keeps it from going below zero, and it serialises the postings of one member across nodes.
/// </summary>
public sealed class LoyaltyMember : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    /// <summary>The profile it was enrolled with; its profiles at each brand are <see cref="LoyaltyMemberProfile"/> rows.</summary>
    public long ProfileId { get; init; }
    public long? TierId { get; set; }
    /// <summary>A tier staff granted by hand: the member's tier is never below it.</summary>
    public long? TierFloorId { get; set; }
    /// <summary>Spendable points: the remaining points of the member's released lots (never below zero).</summary>
    public long Balance { get; private set; }
    /// <summary>Points held for a return window: the remaining points of the member's held lots.</summary>
    public long Pending { get; private set; }
    /// <summary>
    /// Points a refund took back that the balance no longer held (refund policy: go negative). The member's net balance is
    /// <see cref="Balance"/> less this; it is only positive while <see cref="Balance"/> is zero, and later credits pay it first.
    /// </summary>
    public long Owed { get; private set; }
    public long NetBalance => Balance - Owed;
    /// <summary>Points that count towards a tier: what was earned, less what was reversed; spending does not lower it.</summary>
    public long QualifyingPoints { get; set; }
    /// <summary>When the tier was last re-evaluated by the tier review (periodic downgrade policy).</summary>
    public DateTime? TierReviewedAt { get; set; }
    /// <summary>Bumped by every posting; the update that takes the row lock.</summary>
    public long Version { get; private set; }
    public DateTime EnrolledAt { get; init; }
}

public static class EntryKinds
{
    public const string Earn = "earn";
    public const string Spend = "spend";
    public const string Adjust = "adjust";
    public const string Reverse = "reverse";
    public const string Expire = "expire";
    /// <summary>Held points becoming spendable: from the member's pending account to its spendable one.</summary>
    public const string Release = "release";
}

/// <summary>The accounts on the other side of a member's account: where points come from and go to.</summary>
public static class LedgerAccounts
{
    public const string Issued = "issued";
    public const string Redeemed = "redeemed";
    public const string Adjustments = "adjustments";
    public const string Expired = "expired";
    /// <summary>The member's own pending account: a release moves points from it.</summary>
    public const string Pending = "pending";
}

/// <summary>
/// One posting, never changed: <see cref="Points"/> move between the member's spendable account (credited when positive)
/// and <see cref="Pending"/> between its pending account, against the counter <see cref="Account"/> (debited by their
/// sum), so every entry balances: the member's net balance is the sum of the entries' points, its pending points the
/// sum of their pending points. A mistake is undone by reversing entries (<see cref="ReversesEntryId"/>; an earning may be reversed in parts).
/// </summary>
public sealed class LedgerEntry : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long ProgrammeId { get; init; }
    public long MemberId { get; init; }
    /// <summary>The brand where the posting happened (for a shared programme, what one brand owes another is summed by it).</summary>
    public long BrandId { get; internal set; }
    public required string Kind { get; init; }
    public long Points { get; init; }
    /// <summary>Points moved on the member's pending account (held for a return window).</summary>
    public long Pending { get; init; }
    public required string Account { get; init; }
    /// <summary>The member's net balance (spendable less owed) once this entry posted (postings of a member are serialised by its balance row).</summary>
    public long BalanceAfter { get; init; }
    public long? ReversesEntryId { get; init; }
    /// <summary>Which rule produced the entry and how its points were computed.</summary>
    public string? Rule { get; init; }
    /// <summary>For an order's earning: the order's spend in minor units (negative on its refunds), for tiers qualified by spend.</summary>
    public long QualifyingSpend { get; internal set; }
    /// <summary>For an earning: the points before the tier's multiplier, so that a partial refund can take back its share.</summary>
    public long? BasePoints { get; internal set; }
    /// <summary>Why staff adjusted or reversed it.</summary>
    public string? Reason { get; init; }
    /// <summary>The caller's reference (an order id, a reward code).</summary>
    public string? Reference { get; init; }
    /// <summary>What produced the entry, unique per member (<c>order:{id}</c>): an order earns once however often its event arrives.</summary>
    public string? SourceKey { get; internal set; }
    public DateTime CreatedAt { get; init; }
    public List<LotDraw> Draws { get; } = [];
    /// <summary>The lot a grant (earning, positive adjustment) created.</summary>
    public PointLot? Lot { get; internal set; }

    /// <summary>The earning rule (per event) that produced the entry, for its caps.</summary>
    public long? EarningRuleId { get; init; }

    /// <summary>What the entry moved to the member across both of its accounts.</summary>
    public long Total => Points + Pending;

    public bool Grants => Total > 0 && Kind is EntryKinds.Earn or EntryKinds.Adjust;

    public void EnsureReversible()
    {
        if (Kind is EntryKinds.Expire or EntryKinds.Reverse or EntryKinds.Release)
            throw new BusinessRuleException($"A {Kind} entry cannot be reversed.", StatusCodes.Status422UnprocessableEntity, ProblemTypes.NotReversible);
    }
}

/// <summary>Points granted together, with one expiry. Spending and expiry draw from lots; a refund puts points back.</summary>
public sealed class PointLot : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long MemberId { get; init; }
    /// <summary>Set by EF when the entry is saved with the lot; a set-based writer (the batch earn) sets it once the entry has its key.</summary>
    public long EntryId { get; internal set; }
    public LedgerEntry? Entry { get; init; }
    public long Granted { get; init; }
    /// <summary>Always <see cref="Granted"/> less the draws on the lot.</summary>
    public long Remaining { get; private set; }
    /// <summary>Set once the lot is released (a held lot's expiry counts from its release).</summary>
    public DateTime? ExpiresAt { get; private set; }
    /// <summary>While set, the lot is pending (held for a return window) until then: it cannot be spent nor expire.</summary>
    public DateTime? HeldUntil { get; private set; }
    /// <summary>When <c>points.expiring</c> went out for the lot (null: not yet).</summary>
    public DateTime? NoticeSentAt { get; set; }

    public bool Held => HeldUntil is not null;

    public static PointLot Grant(LedgerEntry entry, long points, DateTime? expiresAt, DateTime? heldUntil = null)
    {
        var lot = new PointLot
        {
            TenantId = entry.TenantId, MemberId = entry.MemberId, Entry = entry, Granted = points, Remaining = points,
            ExpiresAt = heldUntil is null ? expiresAt : null, HeldUntil = heldUntil,
        };
        entry.Lot = lot;
        return lot;
    }

    public bool IsReleasable(DateTime now) => HeldUntil is { } until && until <= now;

    /// <summary>Makes a held lot spendable, expiring from now on by the programme's policy.</summary>
    public void Release(DateTime? expiresAt)
    {
        if (HeldUntil is null) throw new InvalidOperationException($"Lot {Id} is not held.");
        HeldUntil = null;
        ExpiresAt = expiresAt;
    }

    public bool IsDue(DateTime now) => ExpiresAt is { } at && at <= now;

    /// <summary>Takes points out (positive) or puts drawn points back (negative), recording the draw on the entry.</summary>
    public void Draw(LedgerEntry entry, long points)
    {
        if (points == 0) return;
        if (Remaining - points < 0 || Remaining - points > Granted)
            throw new InvalidOperationException($"Lot {Id} holds {Remaining} of {Granted} points; it cannot give {points}.");
        Remaining -= points;
        entry.Draws.Add(new LotDraw { TenantId = TenantId, Lot = this, LotId = Id, Points = points });
    }
}

/// <summary>Points an entry took from a lot (negative: put back by a reversal).</summary>
public sealed class LotDraw : IProgrammeShared
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    /// <summary>Set by EF when the entry is saved with the draw; a set-based writer (the expiry job) sets it once the entry has its key.</summary>
    public long EntryId { get; internal set; }
    public long LotId { get; init; }
    public PointLot? Lot { get; init; }
    public long Points { get; init; }
}

/// <summary>The first response to a value-moving request, replayed to any retry that carries the same key.</summary>
public sealed class IdempotentRequest : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Key { get; init; }
    public required string RequestHash { get; init; }
    public int StatusCode { get; init; }
    public required string Body { get; init; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>A background job of the module, claimed with a lease so that one node runs it at a time.</summary>
public sealed class LoyaltyJob
{
    public required string Name { get; init; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public DateTime? LastRunAt { get; set; }
    /// <summary>For a job that follows the event log: the last event it has handled.</summary>
    public long PositionTx { get; set; }
    public long PositionId { get; set; }

    /// <summary>Claims the job for <paramref name="node"/> (or renews its claim) unless another node's lease is still running.</summary>
    internal static async Task<bool> TakeLeaseAsync(Meridian.Data.MeridianDb db, string name, string node, TimeSpan lease, DateTime now, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"INSERT INTO loyalty_jobs (name, position_tx, position_id) VALUES ({name}, 0, 0) ON CONFLICT (name) DO NOTHING", ct);
        return await db.Set<LoyaltyJob>().Where(j => j.Name == name && (j.LeaseOwner == node || j.LeaseUntil == null || j.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseOwner, node).SetProperty(j => j.LeaseUntil, now + lease), ct) == 1;
    }
}

internal sealed class LoyaltyMaps : IEntityTypeConfiguration<LoyaltyProgramme>, IEntityTypeConfiguration<LoyaltyTier>,
    IEntityTypeConfiguration<LoyaltyMember>, IEntityTypeConfiguration<LedgerEntry>, IEntityTypeConfiguration<PointLot>,
    IEntityTypeConfiguration<LotDraw>, IEntityTypeConfiguration<IdempotentRequest>, IEntityTypeConfiguration<LoyaltyJob>,
    IEntityTypeConfiguration<LoyaltyProgrammeBrand>, IEntityTypeConfiguration<LoyaltyMemberProfile>
{
    public void Configure(EntityTypeBuilder<LoyaltyProgramme> b)
    {
        b.ToTable("loyalty_programmes");
        // A brand takes part in one programme: unique in loyalty_programme_brands, which lists every programme's brands.
        b.HasIndex(x => x.TenantId);
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.ExcludedSkus).HasMaxLength(20000);
        b.Property(x => x.ExcludedCategories).HasMaxLength(20000);
    }

    public void Configure(EntityTypeBuilder<LoyaltyProgrammeBrand> b)
    {
        b.ToTable("loyalty_programme_brands");
        b.HasKey(x => new { x.ProgrammeId, x.BrandId });
        b.HasIndex(x => x.BrandId).IsUnique();
        b.HasIndex(x => new { x.OwnerBrandId, x.BrandId });
        b.HasOne<LoyaltyProgramme>().WithMany().HasForeignKey(x => x.ProgrammeId);
    }

    public void Configure(EntityTypeBuilder<LoyaltyMemberProfile> b)
    {
        b.ToTable("loyalty_member_profiles");
        b.HasIndex(x => new { x.MemberId, x.BrandId }).IsUnique();
        b.HasIndex(x => new { x.ProgrammeId, x.ProfileId }).IsUnique();
        b.HasIndex(x => new { x.BrandId, x.ProfileId });
        b.HasIndex(x => x.ProfileId);
        b.HasOne(x => x.Member).WithMany().HasForeignKey(x => x.MemberId);
    }

    public void Configure(EntityTypeBuilder<LoyaltyTier> b)
    {
        b.ToTable("loyalty_tiers");
        b.HasIndex(x => new { x.ProgrammeId, x.Rank }).IsUnique();
        b.HasOne<LoyaltyProgramme>().WithMany().HasForeignKey(x => x.ProgrammeId);
        b.Property(x => x.Name).HasMaxLength(100);
        b.Property(x => x.Benefits).HasMaxLength(4000);
    }

    public void Configure(EntityTypeBuilder<LoyaltyMember> b)
    {
        b.ToTable("loyalty_members", t =>
        {
            t.HasCheckConstraint("ck_loyalty_members_balance", "balance >= 0");
            t.HasCheckConstraint("ck_loyalty_members_pending", "pending >= 0");
            // Owed points exist only while nothing is spendable: a credit pays them back before it can be spent.
            t.HasCheckConstraint("ck_loyalty_members_owed", "owed >= 0 AND (owed = 0 OR balance = 0)");
        });
        b.Ignore(x => x.NetBalance);
        b.HasIndex(x => new { x.ProgrammeId, x.ProfileId }).IsUnique();
        b.HasIndex(x => new { x.TenantId, x.ProfileId });
        b.HasOne<LoyaltyProgramme>().WithMany().HasForeignKey(x => x.ProgrammeId);
        b.HasOne<LoyaltyTier>().WithMany().HasForeignKey(x => x.TierId);
        b.HasOne<LoyaltyTier>().WithMany().HasForeignKey(x => x.TierFloorId);
    }

    public void Configure(EntityTypeBuilder<LedgerEntry> b)
    {
        b.ToTable("loyalty_entries");
        b.HasIndex(x => new { x.MemberId, x.Id });
        // Most entries reverse nothing: only reversals are indexed (a lookup by the reversed entry implies not null).
        b.HasIndex(x => x.ReversesEntryId).HasFilter("reverses_entry_id IS NOT NULL");
        b.HasIndex(x => new { x.MemberId, x.SourceKey }).IsUnique();
        b.HasIndex(x => new { x.MemberId, x.EarningRuleId, x.CreatedAt }).HasFilter("earning_rule_id IS NOT NULL");
        b.HasIndex(x => new { x.ProgrammeId, x.CreatedAt, x.BrandId });
        b.Ignore(x => x.Total);
        b.HasOne<LoyaltyMember>().WithMany().HasForeignKey(x => x.MemberId);
        b.HasOne<LedgerEntry>().WithMany().HasForeignKey(x => x.ReversesEntryId);
        b.HasMany(x => x.Draws).WithOne().HasForeignKey(x => x.EntryId);
        b.Property(x => x.Kind).HasMaxLength(20);
        b.Property(x => x.Account).HasMaxLength(50);
        b.Property(x => x.Rule).HasMaxLength(500);
        b.Property(x => x.Reason).HasMaxLength(500);
        b.Property(x => x.Reference).HasMaxLength(200);
        b.Property(x => x.SourceKey).HasMaxLength(250);
    }

    public void Configure(EntityTypeBuilder<PointLot> b)
    {
        b.ToTable("loyalty_lots", t => t.HasCheckConstraint("ck_loyalty_lots_remaining", "remaining >= 0 AND remaining <= granted"));
        b.HasIndex(x => new { x.MemberId, x.ExpiresAt });
        b.HasIndex(x => x.ExpiresAt).HasFilter("remaining > 0");
        b.HasIndex(x => x.HeldUntil).HasFilter("held_until IS NOT NULL");
        b.HasOne(x => x.Entry).WithOne(x => x.Lot).HasForeignKey<PointLot>(x => x.EntryId);
    }

    public void Configure(EntityTypeBuilder<LotDraw> b)
    {
        b.ToTable("loyalty_lot_draws");
        b.HasIndex(x => x.EntryId);
        b.HasIndex(x => x.LotId);
        b.HasOne(x => x.Lot).WithMany().HasForeignKey(x => x.LotId);
    }

    public void Configure(EntityTypeBuilder<IdempotentRequest> b)
    {
        b.ToTable("loyalty_idempotency");
        b.HasIndex(x => new { x.TenantId, x.Key }).IsUnique();
        b.Property(x => x.Key).HasMaxLength(200);
        b.Property(x => x.RequestHash).HasMaxLength(64);
    }

    public void Configure(EntityTypeBuilder<LoyaltyJob> b)
    {
        b.ToTable("loyalty_jobs");
        b.HasKey(x => x.Name);
        b.Property(x => x.Name).HasMaxLength(50);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
    }
}
