using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Offers.Data;

/// <summary>What a coupon gives. Free shipping comes first: of all kinds it needs nothing but its name to be complete.</summary>
public enum CouponKind
{
    FreeShipping = 0,
    AmountOff = 1,
    PercentOff = 2,
    FixedPrice = 3,
    FreeItem = 4,
}

/// <summary>How a coupon combines with others in one order.</summary>
public enum StackingMode
{
    /// <summary>Alone or not at all.</summary>
    Exclusive = 0,
    /// <summary>With any other coupon that accepts it.</summary>
    Any = 1,
    /// <summary>Only with coupons of the templates named in <see cref="OfferTemplate.StackWith"/> (that accept it too).</summary>
    Named = 2,
}

public enum TemplateStatus
{
    Active = 0,
    Paused = 1,
}

public enum CouponStatus
{
    /// <summary>A generated or imported code nobody holds yet.</summary>
    Unassigned = 0,
    Issued = 1,
    Redeemed = 2,
    Expired = 3,
    /// <summary>Redeemed, then refunded without going back to the customer.</summary>
    Void = 4,
}

/// <summary>
/// A coupon template: what the coupon gives, when it applies, how many may exist. <see cref="Remaining"/> is the stock
/// row every issue updates with a conditional <c>UPDATE ... WHERE remaining > 0</c> in the issuing transaction, and
/// <see cref="BudgetUsed"/> the one every redemption updates with <c>WHERE budget_used + discount &lt;= budget</c>:
/// the database keeps both within bounds on every node.
/// </summary>
public sealed class OfferTemplate : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long GroupId { get; init; }
    public required string Name { get; set; }
    public CouponKind Kind { get; set; }
    /// <summary>Amount off or fixed price in minor units; percent for <see cref="CouponKind.PercentOff"/>.</summary>
    public long Value { get; set; }
    /// <summary>The most a percent-off coupon takes off, in minor units (null: no cap).</summary>
    public long? Cap { get; set; }
    /// <summary>The product a free-item coupon gives (one unit, if it is in the cart).</summary>
    public string? FreeSku { get; set; }
    public long MinSpend { get; set; }
    /// <summary>Who, where and on what the coupon applies: <see cref="CouponConditions"/> as JSON.</summary>
    public string Conditions { get; set; } = "{}";
    public DateTime? ValidFrom { get; set; }
    public DateTime? ValidUntil { get; set; }
    /// <summary>Valid for this many days from issue, the issue day counting as the first, to the end of the day in the brand's time zone.</summary>
    public int? ValidDays { get; set; }
    /// <summary>Total coupons that may ever exist (null: no limit).</summary>
    public long? Stock { get; set; }
    public long Remaining { get; private set; }
    public long Issued { get; private set; }
    public int? PerCustomerLimit { get; set; }
    /// <summary>Coupons that may be issued per day of the brand's time zone, all customers together.</summary>
    public int? PerDayLimit { get; set; }
    /// <summary>Total discount the template may give, in minor units (null: no limit).</summary>
    public long? Budget { get; set; }
    public long BudgetUsed { get; private set; }
    public StackingMode Stacking { get; set; }
    /// <summary>Template ids a <see cref="StackingMode.Named"/> coupon stacks with, as a JSON array.</summary>
    public string StackWith { get; set; } = "[]";
    /// <summary>Higher applies first in a combination.</summary>
    public int Priority { get; set; }
    /// <summary>On refund, a redeemed coupon goes back to the customer if it is still valid (else it is void).</summary>
    public bool ReturnOnRefund { get; set; }
    /// <summary>How many days before a coupon expires <c>coupon.expiring</c> goes out (0: none).</summary>
    public int ExpiringNoticeDays { get; set; }
    public TemplateStatus Status { get; set; }
    public DateTime CreatedAt { get; init; }

    public void StartStock(long? stock) => Remaining = stock ?? 0;
}

/// <summary>The conditions of a template; empty lists mean "no restriction".</summary>
public sealed record CouponConditions
{
    public List<string> IncludedProducts { get; init; } = [];
    public List<string> ExcludedProducts { get; init; } = [];
    public List<string> IncludedCategories { get; init; } = [];
    public List<string> ExcludedCategories { get; init; } = [];
    public List<string> Channels { get; init; } = [];
    /// <summary>Loyalty tiers whose members may use the coupon.</summary>
    public List<long> TierIds { get; init; } = [];
    /// <summary>Segments of the template's brand (Audiences): the customer must be in at least one of them now.</summary>
    public List<long> SegmentIds { get; init; } = [];
    /// <summary>
    /// Other brands of the group where the coupon may be used too (a group coupon): a coupon held by the customer's
    /// profile at the template's brand is offered and redeemable at these brands for the same person. Empty: only at
    /// the template's brand.
    /// </summary>
    public List<long> Brands { get; init; } = [];
}

/// <summary>
/// A brand a group template may be used at besides its own (from <see cref="CouponConditions.Brands"/>), as a row so
/// that a brand finds the group coupons usable there by index. Owned by the template's brand.
/// </summary>
public sealed class OfferTemplateBrand : ITenantOwned
{
    public long TemplateId { get; init; }
    public long BrandId { get; init; }
    public long TenantId { get; init; }
}

/// <summary>One coupon: a code, who holds it, whether it was used.</summary>
public sealed class OfferCoupon : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long TemplateId { get; init; }
    public required string Code { get; init; }
    public long? ProfileId { get; set; }
    public CouponStatus Status { get; set; }
    /// <summary>claim, staff, api, generated, imported.</summary>
    public required string Source { get; init; }
    /// <summary>The Idempotency-Key of the request that issued it, and that request's hash (a retry gets the same coupon).</summary>
    public string? IssueKey { get; set; }
    public string? IssueHash { get; set; }
    public DateTime? IssuedAt { get; set; }
    public DateTime? ValidFrom { get; set; }
    public DateTime? ValidUntil { get; set; }
    public long? RedemptionId { get; set; }
    public long Discount { get; set; }
    public DateTime? RedeemedAt { get; set; }
    public DateTime? NoticeSentAt { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>Coupons of a template a customer has received: the row the per-customer limit is enforced on.</summary>
public sealed class OfferCustomerCount : ITenantOwned
{
    public long TenantId { get; init; }
    public long TemplateId { get; init; }
    public long ProfileId { get; init; }
    public int Count { get; init; }
}

/// <summary>Coupons of a template issued on one day (yyyymmdd in the brand's time zone): the per-day limit's row.</summary>
public sealed class OfferDailyCount : ITenantOwned
{
    public long TenantId { get; init; }
    public long TemplateId { get; init; }
    public int Day { get; init; }
    public int Count { get; init; }
}

public enum RedemptionStatus
{
    Redeemed = 0,
    Reversed = 1,
}

/// <summary>Coupons used on one order; the response is stored so a retry with the same Idempotency-Key gets it back byte for byte.</summary>
public sealed class OfferRedemption : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long GroupId { get; init; }
    public long ProfileId { get; init; }
    public required string OrderReference { get; init; }
    public required string IdempotencyKey { get; init; }
    public required string RequestHash { get; init; }
    public long TotalDiscount { get; set; }
    public string Response { get; set; } = "";
    public RedemptionStatus Status { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime? ReversedAt { get; set; }
    public string? ReverseReason { get; set; }
}

/// <summary>A background job of the module, claimed with a lease so that one node runs it at a time.</summary>
public sealed class OfferJob
{
    public required string Name { get; init; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public DateTime? LastRunAt { get; set; }

    internal static async Task<bool> TakeLeaseAsync(Meridian.Data.MeridianDb db, string name, string node, TimeSpan lease, DateTime now, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"INSERT INTO offer_jobs (name) VALUES ({name}) ON CONFLICT (name) DO NOTHING", ct);
        return await db.Set<OfferJob>().Where(j => j.Name == name && (j.LeaseOwner == node || j.LeaseUntil == null || j.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseOwner, node).SetProperty(j => j.LeaseUntil, now + lease), ct) == 1;
    }
}

internal sealed class OfferMaps : IEntityTypeConfiguration<OfferTemplate>, IEntityTypeConfiguration<OfferCoupon>,
    IEntityTypeConfiguration<OfferCustomerCount>, IEntityTypeConfiguration<OfferDailyCount>, IEntityTypeConfiguration<OfferRedemption>,
    IEntityTypeConfiguration<OfferJob>, IEntityTypeConfiguration<OfferTemplateBrand>
{
    public void Configure(EntityTypeBuilder<OfferTemplate> b)
    {
        b.ToTable("offer_templates", t =>
        {
            t.HasCheckConstraint("ck_offer_templates_remaining", "remaining >= 0");
            t.HasCheckConstraint("ck_offer_templates_budget", "budget IS NULL OR budget_used <= budget");
        });
        b.HasIndex(x => new { x.TenantId, x.Id });
        b.Property(x => x.Name).HasMaxLength(200);
        b.Property(x => x.FreeSku).HasMaxLength(100);
        b.Property(x => x.Conditions).HasMaxLength(20000);
        b.Property(x => x.StackWith).HasMaxLength(4000);
    }

    public void Configure(EntityTypeBuilder<OfferCoupon> b)
    {
        b.ToTable("offer_coupons");
        b.HasIndex(x => new { x.TenantId, x.Code }).IsUnique();
        b.HasIndex(x => new { x.TenantId, x.IssueKey }).IsUnique().HasFilter("issue_key IS NOT NULL");
        b.HasIndex(x => new { x.ProfileId, x.Status });
        b.HasIndex(x => new { x.TemplateId, x.Id });
        b.HasIndex(x => new { x.Status, x.ValidUntil });
        b.HasIndex(x => x.RedemptionId);
        b.HasOne<OfferTemplate>().WithMany().HasForeignKey(x => x.TemplateId);
        b.Property(x => x.Code).HasMaxLength(64);
        b.Property(x => x.Source).HasMaxLength(20);
        b.Property(x => x.IssueKey).HasMaxLength(200);
        b.Property(x => x.IssueHash).HasMaxLength(64);
    }

    public void Configure(EntityTypeBuilder<OfferCustomerCount> b)
    {
        b.ToTable("offer_customer_counts");
        b.HasKey(x => new { x.TemplateId, x.ProfileId });
        b.HasOne<OfferTemplate>().WithMany().HasForeignKey(x => x.TemplateId);
    }

    public void Configure(EntityTypeBuilder<OfferDailyCount> b)
    {
        b.ToTable("offer_daily_counts");
        b.HasKey(x => new { x.TemplateId, x.Day });
        b.HasOne<OfferTemplate>().WithMany().HasForeignKey(x => x.TemplateId);
    }

    public void Configure(EntityTypeBuilder<OfferRedemption> b)
    {
        b.ToTable("offer_redemptions");
        b.HasIndex(x => new { x.TenantId, x.IdempotencyKey }).IsUnique();
        b.HasIndex(x => new { x.TenantId, x.OrderReference });
        b.Property(x => x.OrderReference).HasMaxLength(200);
        b.Property(x => x.IdempotencyKey).HasMaxLength(200);
        b.Property(x => x.RequestHash).HasMaxLength(64);
        b.Property(x => x.ReverseReason).HasMaxLength(500);
    }

    public void Configure(EntityTypeBuilder<OfferTemplateBrand> b)
    {
        b.ToTable("offer_template_brands");
        b.HasKey(x => new { x.TemplateId, x.BrandId });
        b.HasIndex(x => new { x.BrandId, x.TenantId });
        b.HasOne<OfferTemplate>().WithMany().HasForeignKey(x => x.TemplateId);
    }

    public void Configure(EntityTypeBuilder<OfferJob> b)
    {
        b.ToTable("offer_jobs");
        b.HasKey(x => x.Name);
        b.Property(x => x.Name).HasMaxLength(50);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
    }
}
