using System.Data.Common;
using Meridian.Data;
using Meridian.Offers.Codes;
using Meridian.Offers.Data;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Offers.Claims;

public sealed record CouponIssued(long CouponId, long TemplateId, long ProfileId, string Code, string Source, DateTime? ValidUntil) : IDomainEvent
{
    public string EventType => "coupon.issued";
}

/// <summary>A coupon as it was issued: what a claim or an issue answers, and what a retry with the same key gets again.</summary>
public sealed record IssuedCouponDto(long Id, string Code, long TemplateId, long ProfileId, string Source, DateTime IssuedAt, DateTime? ValidFrom, DateTime? ValidUntil)
{
    internal static IssuedCouponDto From(OfferCoupon c) =>
        new(c.Id, CouponCodes.Display(c.Code), c.TemplateId, c.ProfileId ?? 0, c.Source, c.IssuedAt ?? c.CreatedAt, c.ValidFrom, c.ValidUntil);
}

public enum IssueOutcome
{
    Issued,
    NotFound,
    ProfileNotFound,
    NotActive,
    Ended,
    OutOfStock,
    LimitReached,
    DailyLimitReached,
}

/// <summary>One coupon to issue to one customer (a live profile of the brand, checked before the writing transaction).</summary>
public sealed record IssueOrder(long TenantId, long TemplateId, long ProfileId, string Source, string? Key, string? Hash);

public sealed record IssueResult(IssueOutcome Outcome, IssuedCouponDto? Coupon = null);

/// <summary>What an issue needs of a template and its brand, read before the writing transaction begins.</summary>
public sealed record IssuePlan(OfferTemplate Template, long GroupId, TimeZoneInfo Zone);

/// <summary>
/// Issues coupons inside the caller's transaction, one conditional statement per limit: the template's stock row
/// (<c>UPDATE ... WHERE remaining > 0</c>), then the customer's count (an upsert that only raises it below the limit),
/// then the day's count; a later refusal undoes the earlier steps in the same transaction. The stock row comes first
/// so that a sold-out template refuses with one statement and every issue of a template queues on that one row lock,
/// which orders them the same way on every node (no deadlock between the customer rows of two transactions).
/// </summary>
public sealed class CouponIssuer(MeridianDb db, EventPublisher events)
{
    public static DateTime Now(TimeProvider time) => Micros(time.GetUtcNow().UtcDateTime);

    /// <summary>PostgreSQL keeps microseconds: a replayed answer must show the instants the first one showed.</summary>
    public static DateTime Micros(DateTime at) => new(at.Ticks - at.Ticks % 10, DateTimeKind.Utc);

    /// <summary>Reads the templates and brands of the orders (before any transaction: SQLite's writes should come first in one).</summary>
    public async Task<Dictionary<long, IssuePlan>> PlanAsync(IEnumerable<long> templateIds, CancellationToken ct)
    {
        var ids = templateIds.Distinct().ToList();
        var templates = await db.Set<OfferTemplate>().AsNoTracking().Where(t => ids.Contains(t.Id)).ToListAsync(ct);
        var tenants = templates.Select(t => t.TenantId).Distinct().ToList();
        var brands = await db.Set<Brand>().AsNoTracking().Where(b => tenants.Contains(b.Id)).ToDictionaryAsync(b => b.Id, ct);
        return templates.ToDictionary(t => t.Id, t => new IssuePlan(t, brands[t.TenantId].GroupId, Zone(brands[t.TenantId].TimeZone)));
    }

    public static TimeZoneInfo Zone(string id) => TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone) ? zone : TimeZoneInfo.Utc;

    /// <summary>Issues one coupon in the open transaction; refusals leave no trace. Events are published, not saved.</summary>
    public async Task<IssueResult> IssueAsync(IssueOrder order, IssuePlan? plan, DateTime now, CancellationToken ct)
    {
        if (plan is null || plan.Template.TenantId != order.TenantId) return new(IssueOutcome.NotFound);
        var t = plan.Template;
        if (t.Status != TemplateStatus.Active) return new(IssueOutcome.NotActive);
        if (t.ValidUntil is { } end && now >= end) return new(IssueOutcome.Ended);
        var tx = db.Database.CurrentTransaction?.GetDbTransaction() ?? throw new InvalidOperationException("Issue coupons inside a transaction.");

        if (await ExecAsync(tx, """
            UPDATE offer_templates SET issued = issued + 1, remaining = CASE WHEN stock IS NULL THEN remaining ELSE remaining - 1 END
            WHERE id = @t AND tenant_id = @tenant AND (stock IS NULL OR remaining > 0)
            """, ct, ("t", t.Id), ("tenant", t.TenantId)) == 0)
            return new(IssueOutcome.OutOfStock);

        if (t.PerCustomerLimit is { } limit && await ExecAsync(tx, """
            INSERT INTO offer_customer_counts (template_id, profile_id, tenant_id, count) VALUES (@t, @p, @tenant, 1)
            ON CONFLICT (template_id, profile_id) DO UPDATE SET count = offer_customer_counts.count + 1 WHERE offer_customer_counts.count < @limit
            """, ct, ("t", t.Id), ("p", order.ProfileId), ("tenant", t.TenantId), ("limit", limit)) == 0)
        {
            await UndoStockAsync(tx, t, ct);
            return new(IssueOutcome.LimitReached);
        }

        var local = TimeZoneInfo.ConvertTimeFromUtc(now, plan.Zone);
        if (t.PerDayLimit is { } perDay && await ExecAsync(tx, """
            INSERT INTO offer_daily_counts (template_id, day, tenant_id, count) VALUES (@t, @day, @tenant, 1)
            ON CONFLICT (template_id, day) DO UPDATE SET count = offer_daily_counts.count + 1 WHERE offer_daily_counts.count < @limit
            """, ct, ("t", t.Id), ("day", local.Year * 10000 + local.Month * 100 + local.Day), ("tenant", t.TenantId), ("limit", perDay)) == 0)
        {
            await UndoStockAsync(tx, t, ct);
            if (t.PerCustomerLimit is not null)
                await ExecAsync(tx, "UPDATE offer_customer_counts SET count = count - 1 WHERE template_id = @t AND profile_id = @p", ct, ("t", t.Id), ("p", order.ProfileId));
            return new(IssueOutcome.DailyLimitReached);
        }

        var (from, until) = Validity(t, now, plan.Zone);
        var coupon = new OfferCoupon
        {
            TenantId = t.TenantId, TemplateId = t.Id, Code = "", ProfileId = order.ProfileId, Status = CouponStatus.Issued, Source = order.Source,
            IssueKey = order.Key, IssueHash = order.Hash, IssuedAt = now, ValidFrom = from, ValidUntil = until, CreatedAt = now,
        };
        var (id, code) = await InsertAsync(tx, coupon, ct);
        var dto = new IssuedCouponDto(id, CouponCodes.Display(code), t.Id, order.ProfileId, order.Source, now, from, until);
        events.Publish(plan.GroupId, t.TenantId, () => new CouponIssued(id, t.Id, order.ProfileId, dto.Code, order.Source, until));
        return new(IssueOutcome.Issued, dto);
    }

    /// <summary>A fixed window, or N days from issue to the end of the Nth day (the issue day is the first) in the brand's time zone.</summary>
    public static (DateTime? From, DateTime? Until) Validity(OfferTemplate t, DateTime now, TimeZoneInfo zone)
    {
        if (t.ValidDays is not { } days) return (t.ValidFrom, t.ValidUntil);
        var localEnd = TimeZoneInfo.ConvertTimeFromUtc(now, zone).Date.AddDays(days);
        var until = TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(localEnd, DateTimeKind.Unspecified), zone);
        return (now, t.ValidUntil is { } end && end < until ? end : until);
    }

    private Task<int> UndoStockAsync(DbTransaction tx, OfferTemplate t, CancellationToken ct) => ExecAsync(tx, """
        UPDATE offer_templates SET issued = issued - 1, remaining = CASE WHEN stock IS NULL THEN remaining ELSE remaining + 1 END WHERE id = @t
        """, ct, ("t", t.Id));

    /// <summary>Inserts the coupon under a fresh random code (drawing again in the rare case the code exists).</summary>
    private static async Task<(long Id, string Code)> InsertAsync(DbTransaction tx, OfferCoupon c, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var code = CouponCodes.New();
            await using var command = Command(tx, """
                INSERT INTO offer_coupons (tenant_id, template_id, code, profile_id, status, source, issue_key, issue_hash, issued_at, valid_from, valid_until, discount, created_at)
                VALUES (@tenant, @t, @code, @p, @status, @source, @key, @hash, @now, @from, @until, 0, @now)
                ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id
                """, ("tenant", c.TenantId), ("t", c.TemplateId), ("code", code), ("p", c.ProfileId), ("status", (int)c.Status), ("source", c.Source),
                ("key", c.IssueKey), ("hash", c.IssueHash), ("now", c.IssuedAt), ("from", c.ValidFrom), ("until", c.ValidUntil));
            if (await command.ExecuteScalarAsync(ct) is { } id and not DBNull) return (Convert.ToInt64(id, System.Globalization.CultureInfo.InvariantCulture), code);
            if (attempt > 10) throw new InvalidOperationException("Could not draw an unused coupon code.");
        }
    }

    internal static async Task<int> ExecAsync(DbTransaction tx, string sql, CancellationToken ct, params (string Name, object? Value)[] args)
    {
        await using var command = Command(tx, sql, args);
        return await command.ExecuteNonQueryAsync(ct);
    }

    internal static DbCommand Command(DbTransaction tx, string sql, params (string Name, object? Value)[] args)
    {
        var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = command.CreateParameter();
            p.ParameterName = "@" + name;
            p.Value = value ?? DBNull.Value;
            command.Parameters.Add(p);
        }
        return command;
    }
}
