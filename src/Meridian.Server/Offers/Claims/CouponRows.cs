using System.Data.Common;
using System.Globalization;
using System.Text;
using Meridian.Offers.Codes;
using Meridian.Offers.Data;

namespace Meridian.Offers.Claims;

/// <summary>
/// Inserts issued coupons and returns their ids, as <see cref="Hosting.BulkInsert"/> does for rows without: SQLite one
/// prepared statement rebound per row (no round trip in an embedded database), PostgreSQL multi-row statements.
/// A code that exists already (about one chance in 10^12 per code at a million codes) is skipped by the insert and
/// drawn again.
/// </summary>
internal static class CouponRows
{
    private const int RowsPerStatement = 200;
    private static readonly string[] Columns = ["tenant_id", "template_id", "code", "profile_id", "status", "source", "issue_key", "issue_hash", "issued_at",
        "valid_from", "valid_until", "discount", "created_at"];

    private static object?[] Values(OfferCoupon c) =>
        [c.TenantId, c.TemplateId, c.Code, c.ProfileId, (int)c.Status, c.Source, c.IssueKey, c.IssueHash, c.IssuedAt, c.ValidFrom, c.ValidUntil, 0L, c.CreatedAt];

    /// <summary>The ids of the coupons, in their order (codes redrawn on a clash are set on the coupons).</summary>
    public static async Task<long[]> InsertAsync(DbTransaction tx, List<OfferCoupon> coupons, CancellationToken ct)
    {
        var ids = new long[coupons.Count];
        var todo = Enumerable.Range(0, coupons.Count).ToList();
        for (var attempt = 0; todo.Count > 0; attempt++)
        {
            if (attempt > 10) throw new InvalidOperationException("Could not draw unused coupon codes.");
            if (attempt > 0) foreach (var i in todo) coupons[i] = Redraw(coupons[i]);
            var byCode = tx.Connection is Microsoft.Data.Sqlite.SqliteConnection ? await SqliteAsync(tx, todo.Select(i => coupons[i]), ct) : await PostgresAsync(tx, todo.Select(i => coupons[i]).ToList(), ct);
            foreach (var i in todo) if (byCode.TryGetValue(coupons[i].Code, out var id)) ids[i] = id;
            todo = todo.Where(i => !byCode.ContainsKey(coupons[i].Code)).ToList();
        }
        return ids;
    }

    private static OfferCoupon Redraw(OfferCoupon c) => new()
    {
        TenantId = c.TenantId, TemplateId = c.TemplateId, Code = CouponCodes.New(), ProfileId = c.ProfileId, Status = c.Status, Source = c.Source,
        IssueKey = c.IssueKey, IssueHash = c.IssueHash, IssuedAt = c.IssuedAt, ValidFrom = c.ValidFrom, ValidUntil = c.ValidUntil, CreatedAt = c.CreatedAt,
    };

    private static string Insert => $"INSERT INTO offer_coupons ({string.Join(", ", Columns)}) VALUES ";
    private const string Suffix = " ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id, code";

    private static async Task<Dictionary<string, long>> SqliteAsync(DbTransaction tx, IEnumerable<OfferCoupon> coupons, CancellationToken ct)
    {
        var byCode = new Dictionary<string, long>();
        await using var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        command.CommandText = Insert + "(" + string.Join(", ", Columns.Select((_, c) => "@p" + c)) + ")" + Suffix;
        for (var c = 0; c < Columns.Length; c++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@p" + c;
            command.Parameters.Add(parameter);
        }
        foreach (var coupon in coupons)
        {
            var values = Values(coupon);
            for (var c = 0; c < values.Length; c++) command.Parameters[c].Value = values[c] ?? DBNull.Value;
            await using var reader = await command.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct)) byCode[reader.GetString(1)] = reader.GetInt64(0);
        }
        return byCode;
    }

    private static async Task<Dictionary<string, long>> PostgresAsync(DbTransaction tx, List<OfferCoupon> coupons, CancellationToken ct)
    {
        var byCode = new Dictionary<string, long>();
        foreach (var chunk in coupons.Chunk(RowsPerStatement))
        {
            await using var command = tx.Connection!.CreateCommand();
            command.Transaction = tx;
            var sql = new StringBuilder(Insert);
            for (var r = 0; r < chunk.Length; r++)
            {
                var values = Values(chunk[r]);
                sql.Append(r == 0 ? "(" : ", (");
                for (var c = 0; c < values.Length; c++)
                {
                    sql.Append(c == 0 ? "$" : ", $").Append((r * values.Length + c + 1).ToString(CultureInfo.InvariantCulture));
                    var parameter = command.CreateParameter();
                    parameter.Value = values[c] ?? DBNull.Value;
                    command.Parameters.Add(parameter);
                }
                sql.Append(')');
            }
            command.CommandText = sql.Append(Suffix).ToString();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) byCode[reader.GetString(1)] = reader.GetInt64(0);
        }
        return byCode;
    }
}
