using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
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
    /// <summary>The template names segments and the customer is in none of them (claims only).</summary>
    NotInSegment,
}

/// <summary>One coupon to issue to one customer (a live profile of the brand, checked before the writing transaction).</summary>
public sealed record IssueOrder(long TenantId, long TemplateId, long ProfileId, string Source, string? Key, string? Hash);

/// <summary>What became of one issue; <paramref name="Detail"/> explains a refusal where the outcome alone does not.</summary>
public sealed record IssueResult(IssueOutcome Outcome, IssuedCouponDto? Coupon = null, string? Detail = null);

/// <summary>What an issue needs of a template and its brand, read before the writing transaction begins.</summary>
public sealed record IssuePlan(OfferTemplate Template, long GroupId, TimeZoneInfo Zone);

/// <summary>
/// Issues coupons inside the caller's transaction. Every issue of a template starts by locking the template's stock row
/// (PostgreSQL: <c>SELECT ... FOR UPDATE</c>; SQLite: the transaction already holds the database's write lock), and
/// every write of the template's customer and day counts happens under that lock, so while it is held the stock and
/// the counts read are the truth on every node. The claims of a group are then judged one after the other in memory
/// (stock, then the customer's limit, then the day's) and written with a handful of set-based statements: a group of
/// hundreds of claims costs a few round trips instead of a few per claim, and stays exact.
/// </summary>
public sealed class CouponIssuer(MeridianDb db, EventPublisher events)
{
    /// <summary>Reads the templates and brands of the orders (before any transaction: SQLite's writes should come first in one).</summary>
    public async Task<Dictionary<long, IssuePlan>> PlanAsync(IEnumerable<long> templateIds, CancellationToken ct)
    {
        var ids = templateIds.Distinct().ToList();
        var rows = await (from t in db.Set<OfferTemplate>().AsNoTracking()
                          join b in db.Set<Brand>().AsNoTracking() on t.TenantId equals b.Id
                          where ids.Contains(t.Id)
                          select new { Template = t, b.GroupId, b.TimeZone }).ToListAsync(ct);
        return rows.ToDictionary(r => r.Template.Id, r => new IssuePlan(r.Template, r.GroupId, Zone(r.TimeZone)));
    }

    public static TimeZoneInfo Zone(string id) => TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone) ? zone : TimeZoneInfo.Utc;

    /// <summary>Issues one coupon in the open transaction; a refusal leaves no trace. Its event is written in the transaction too.</summary>
    public async Task<IssueResult> IssueAsync(IssueOrder order, IssuePlan? plan, DateTime now, CancellationToken ct) =>
        (await IssueManyAsync([order], plan, now, ct))[0];

    /// <summary>Issues coupons of one template to the orders, judged in their order, in the open transaction.</summary>
    public async Task<IssueResult[]> IssueManyAsync(IReadOnlyList<IssueOrder> orders, IssuePlan? plan, DateTime now, CancellationToken ct)
    {
        var results = new IssueResult[orders.Count];
        var refusal = plan is null ? IssueOutcome.NotFound
            : plan.Template.Status != TemplateStatus.Active ? IssueOutcome.NotActive
            : plan.Template.ValidUntil is { } end && now >= end ? IssueOutcome.Ended
            : (IssueOutcome?)null;
        for (var i = 0; i < orders.Count; i++)
            if (refusal is { } r || orders[i].TenantId != plan!.Template.TenantId) results[i] = new(refusal ?? IssueOutcome.NotFound);
        if (plan is null || refusal is not null || results.All(r => r is not null)) return results;
        var t = plan.Template;
        var tx = db.Database.CurrentTransaction?.GetDbTransaction() ?? throw new InvalidOperationException("Issue coupons inside a transaction.");

        var (stock, remaining) = await LockStockAsync(tx, t.Id, ct);
        var pending = Enumerable.Range(0, orders.Count).Where(i => results[i] is null).ToList();
        var held = t.PerCustomerLimit is null ? [] : await HeldAsync(tx, t.Id, pending.Select(i => orders[i].ProfileId).Distinct().ToList(), ct);
        var local = TimeZoneInfo.ConvertTimeFromUtc(now, plan.Zone);
        var day = local.Year * 10000 + local.Month * 100 + local.Day;
        var today = t.PerDayLimit is null ? 0 : await CountAsync(tx, "SELECT count FROM offer_daily_counts WHERE template_id = @t AND day = @day", ct, ("t", t.Id), ("day", day));

        var granted = new List<int>();
        foreach (var i in pending)
        {
            var profile = orders[i].ProfileId;
            if (stock is not null && remaining == 0) results[i] = new(IssueOutcome.OutOfStock);
            else if (t.PerCustomerLimit is { } limit && held.GetValueOrDefault(profile) >= limit) results[i] = new(IssueOutcome.LimitReached);
            else if (t.PerDayLimit is { } perDay && today >= perDay) results[i] = new(IssueOutcome.DailyLimitReached);
            else
            {
                remaining--;
                held[profile] = held.GetValueOrDefault(profile) + 1;
                today++;
                granted.Add(i);
            }
        }
        if (granted.Count == 0) return results;

        await ExecAsync(tx, """
            UPDATE offer_templates SET issued = issued + @n, remaining = CASE WHEN stock IS NULL THEN remaining ELSE remaining - @n END WHERE id = @t
            """, ct, ("n", (long)granted.Count), ("t", t.Id));
        if (t.PerCustomerLimit is not null)
        {
            var counts = granted.Select(i => orders[i].ProfileId).Distinct().Select(p => new object?[] { t.Id, p, t.TenantId, held[p] });
            await BulkInsert.InsertAsync(tx, "offer_customer_counts", ["template_id", "profile_id", "tenant_id", "count"], counts,
                " ON CONFLICT (template_id, profile_id) DO UPDATE SET count = excluded.count", ct);
        }
        if (t.PerDayLimit is not null)
            await ExecAsync(tx, """
                INSERT INTO offer_daily_counts (template_id, day, tenant_id, count) VALUES (@t, @day, @tenant, @count)
                ON CONFLICT (template_id, day) DO UPDATE SET count = excluded.count
                """, ct, ("t", t.Id), ("day", day), ("tenant", t.TenantId), ("count", today));

        var (from, until) = Validity(t, now, plan.Zone);
        var coupons = granted.Select(i => new OfferCoupon
        {
            TenantId = t.TenantId, TemplateId = t.Id, Code = CouponCodes.New(), ProfileId = orders[i].ProfileId, Status = CouponStatus.Issued,
            Source = orders[i].Source, IssueKey = orders[i].Key, IssueHash = orders[i].Hash, IssuedAt = now, ValidFrom = from, ValidUntil = until, CreatedAt = now,
        }).ToList();
        var ids = await CouponRows.InsertAsync(tx, coupons, ct);
        var issued = new List<IDomainEvent>(granted.Count);
        for (var k = 0; k < granted.Count; k++)
        {
            var c = coupons[k];
            var (id, code) = (ids[k], CouponCodes.Display(c.Code));
            results[granted[k]] = new(IssueOutcome.Issued, new IssuedCouponDto(id, code, t.Id, c.ProfileId!.Value, c.Source, now, from, until));
            issued.Add(new CouponIssued(id, t.Id, c.ProfileId!.Value, code, c.Source, until));
        }
        await events.PublishManyAsync(tx, plan.GroupId, t.TenantId, issued, ct);
        return results;
    }

    /// <summary>Takes the template's row lock (SQLite: the transaction's write lock already serialises) and reads its stock.</summary>
    internal static async Task<(long? Stock, long Remaining)> LockStockAsync(DbTransaction tx, long templateId, CancellationToken ct)
    {
        var forUpdate = tx.Connection is Npgsql.NpgsqlConnection ? " FOR UPDATE" : "";
        await using var command = Command(tx, "SELECT stock, remaining FROM offer_templates WHERE id = @t" + forUpdate, ("t", templateId));
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) throw new InvalidOperationException($"Template {templateId} vanished.");
        return (reader.IsDBNull(0) ? null : reader.GetInt64(0), reader.GetInt64(1));
    }

    private static async Task<Dictionary<long, int>> HeldAsync(DbTransaction tx, long templateId, List<long> profiles, CancellationToken ct)
    {
        var held = new Dictionary<long, int>();
        foreach (var chunk in profiles.Chunk(500))
        {
            var names = chunk.Select((_, i) => "@p" + i).ToArray();
            await using var command = Command(tx, $"SELECT profile_id, count FROM offer_customer_counts WHERE template_id = @t AND profile_id IN ({string.Join(", ", names)})",
                [("t", templateId), .. chunk.Select((p, i) => ("p" + i, (object?)p))]);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) held[reader.GetInt64(0)] = reader.GetInt32(1);
        }
        return held;
    }

    private static async Task<int> CountAsync(DbTransaction tx, string sql, CancellationToken ct, params (string Name, object? Value)[] args)
    {
        await using var command = Command(tx, sql, args);
        return await command.ExecuteScalarAsync(ct) is { } value and not DBNull ? Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>A fixed window, or N days from issue to the end of the Nth day (the issue day is the first) in the brand's time zone.</summary>
    public static (DateTime? From, DateTime? Until) Validity(OfferTemplate t, DateTime now, TimeZoneInfo zone)
    {
        if (t.ValidDays is not { } days) return (t.ValidFrom, t.ValidUntil);
        var localEnd = TimeZoneInfo.ConvertTimeFromUtc(now, zone).Date.AddDays(days);
        var until = TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(localEnd, DateTimeKind.Unspecified), zone);
        return (now, t.ValidUntil is { } end && end < until ? end : until);
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
        foreach (var (name, value) in args) command.AddParameter("@" + name, value);
        return command;
    }
}
