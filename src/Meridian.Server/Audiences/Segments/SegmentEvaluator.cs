using Meridian.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

/// <summary>Runs a rule against a brand's live profiles in the database: how many match, which, and whether one does.</summary>
public sealed class SegmentEvaluator(MeridianDb db, TimeProvider time, Microsoft.Extensions.Options.IOptions<Profiles.Identity.LifecycleThresholds> lifecycle)
{
    private const string LiveProfiles = "FROM profiles p WHERE p.tenant_id = @brand AND p.merged_into_id IS NULL AND p.erased_at IS NULL";

    public async Task<long> CountAsync(long brandId, SegmentRule rule, CancellationToken ct) =>
        Convert.ToInt64(await ScalarAsync($"SELECT COUNT(*) {LiveProfiles} AND {{0}}", brandId, rule, [], ct));

    public async Task<bool> ContainsAsync(long brandId, SegmentRule rule, long profileId, CancellationToken ct) =>
        await ScalarAsync($"SELECT p.id {LiveProfiles} AND p.id = @profile AND {{0}}", brandId, rule, [("@profile", profileId)], ct) is not null;

    /// <summary>Matching profile ids above <paramref name="after"/>, ascending: one more than <paramref name="take"/> tells that more follow.</summary>
    public async Task<List<long>> MembersAsync(long brandId, SegmentRule rule, long after, int take, CancellationToken ct)
    {
        await using var command = await CommandAsync($"SELECT p.id {LiveProfiles} AND p.id > @after AND {{0}} ORDER BY p.id LIMIT {take + 1}", brandId, rule,
            [("@after", after)], ct);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new List<long>();
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids;
    }

    private async Task<object?> ScalarAsync(string sql, long brandId, SegmentRule rule, (string, object)[] extra, CancellationToken ct)
    {
        await using var command = await CommandAsync(sql, brandId, rule, extra, ct);
        var value = await command.ExecuteScalarAsync(ct);
        return value is DBNull ? null : value;
    }

    private async Task<System.Data.Common.DbCommand> CommandAsync(string sql, long brandId, SegmentRule rule, (string, object)[] extra, CancellationToken ct)
    {
        var (condition, parameters) = SegmentSql.Compile(rule, db.Database.IsNpgsql(), time.GetUtcNow().UtcDateTime, lifecycle.Value);
        var connection = db.Database.GetDbConnection();
        if (connection.State != System.Data.ConnectionState.Open) await db.Database.OpenConnectionAsync(ct);
        var command = connection.CreateCommand();
        command.CommandText = sql.Replace("{0}", condition, StringComparison.Ordinal);
        SegmentSql.Bind(command, [("@brand", brandId), .. extra, .. parameters]);
        return command;
    }
}
