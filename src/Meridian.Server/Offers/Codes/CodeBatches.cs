using Meridian.Data;
using Meridian.Hosting;
using Meridian.Offers.Claims;
using Meridian.Offers.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Offers.Codes;

/// <summary>
/// Codes made ahead of time, nobody's until a customer claims one: generated here (printed on cards, sent to a partner)
/// or imported from elsewhere. They come out of the template's stock like issued coupons, reserved with the same
/// conditional <c>UPDATE</c> in the transaction that inserts them, so codes and claims together never exceed it.
/// Rows are written in chunks of <see cref="ChunkSize"/> per transaction with <see cref="BulkInsert"/>, so a million
/// codes neither sit in memory nor hold SQLite's write lock (and claims) for the whole run.
/// </summary>
public sealed class CodeBatches(MeridianDb db, TimeProvider time)
{
    public const int ChunkSize = 10_000;
    private static readonly string[] Columns = ["tenant_id", "template_id", "code", "status", "source", "valid_from", "valid_until", "discount", "created_at"];

    /// <summary>Generates <paramref name="count"/> new codes; returns how many were made before stock ran out (all, unless it did).</summary>
    public async Task<long> GenerateAsync(OfferTemplate template, long count, CancellationToken ct)
    {
        var made = 0L;
        while (made < count)
        {
            var chunk = (int)Math.Min(ChunkSize, count - made);
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var tx = transaction.GetDbTransaction();
            if (!await ReserveAsync(tx, template, chunk, ct)) break;
            var now = Instants.Now(time);
            var written = 0;
            // A clash with an existing code (about one in 10^12 per code at a million codes) is skipped and drawn again.
            while (written < chunk)
                written += await BulkInsert.InsertAsync(tx, "offer_coupons", Columns,
                    Rows(template, chunk - written, now, () => CouponCodes.New(), "generated"), " ON CONFLICT (tenant_id, code) DO NOTHING", ct);
            await transaction.CommitAsync(ct);
            made += chunk;
        }
        return made;
    }

    /// <summary>Imports codes made elsewhere (already normalised and distinct); returns those that already existed.</summary>
    public async Task<(int Imported, List<string> Existing)> ImportAsync(OfferTemplate template, IReadOnlyList<string> codes, CancellationToken ct)
    {
        var existing = await db.Set<OfferCoupon>().AsNoTracking().Where(c => c.TenantId == template.TenantId && codes.Contains(c.Code)).Select(c => c.Code).ToListAsync(ct);
        var fresh = codes.Except(existing).ToList();
        if (fresh.Count == 0) return (0, existing);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var tx = transaction.GetDbTransaction();
        if (!await ReserveAsync(tx, template, fresh.Count, ct))
            throw new BusinessRuleException($"The template has less stock left than the {fresh.Count} codes to import.", StatusCodes.Status409Conflict, ProblemTypes.OutOfStock);
        var now = Instants.Now(time);
        var queue = new Queue<string>(fresh);
        var written = await BulkInsert.InsertAsync(tx, "offer_coupons", Columns, Rows(template, fresh.Count, now, queue.Dequeue, "imported"),
            " ON CONFLICT (tenant_id, code) DO NOTHING", ct);
        // Codes another import wrote meanwhile were skipped: give their stock back.
        if (written < fresh.Count) await ReserveAsync(tx, template, written - fresh.Count, ct);
        await transaction.CommitAsync(ct);
        return (written, existing);
    }

    private static async Task<bool> ReserveAsync(System.Data.Common.DbTransaction tx, OfferTemplate template, long n, CancellationToken ct) =>
        await CouponIssuer.ExecAsync(tx, """
            UPDATE offer_templates SET issued = issued + @n, remaining = CASE WHEN stock IS NULL THEN remaining ELSE remaining - @n END
            WHERE id = @t AND (stock IS NULL OR remaining >= @n)
            """, ct, ("n", n), ("t", template.Id)) == 1;

    private static IEnumerable<object?[]> Rows(OfferTemplate t, int count, DateTime now, Func<string> code, string source)
    {
        // A code of a template valid N days from issue gets its dates when a customer claims it.
        var (from, until) = t.ValidDays is null ? (t.ValidFrom, t.ValidUntil) : (null, null);
        for (var i = 0; i < count; i++)
            yield return [t.TenantId, t.Id, code(), (int)CouponStatus.Unassigned, source, from, until, 0L, now];
    }
}
