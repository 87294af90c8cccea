using Meridian.Data;
using Meridian.Hosting;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

/// <summary>Runs a rule against a brand's live profiles in the database: how many match, which, and whether one does.</summary>
public sealed class SegmentEvaluator(MeridianDb db, TimeProvider time, Microsoft.Extensions.Options.IOptions<Profiles.Identity.LifecycleThresholds> lifecycle)
{
    private const string LiveProfiles = "FROM profiles p WHERE p.tenant_id = @brand AND p.merged_into_id IS NULL AND p.erased_at IS NULL";

    public async Task<long> CountAsync(long brandId, SegmentRule rule, CancellationToken ct) =>
        Convert.ToInt64(await ScalarAsync($"SELECT COUNT(*) {LiveProfiles} AND {{0}}", brandId, rule, [], ct, wholeBrand: true));

    public async Task<bool> ContainsAsync(long brandId, SegmentRule rule, long profileId, CancellationToken ct) =>
        await ScalarAsync($"SELECT p.id {LiveProfiles} AND p.id = @profile AND {{0}}", brandId, rule, [("@profile", profileId)], ct) is not null;

    /// <summary>Matching profile ids above <paramref name="after"/>, ascending: one more than <paramref name="take"/> tells that more follow.</summary>
    public async Task<List<long>> MembersAsync(long brandId, SegmentRule rule, long after, int take, CancellationToken ct)
    {
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = Command($"SELECT p.id {LiveProfiles} AND p.id > @after AND {{0}} ORDER BY p.id LIMIT {take + 1}", brandId, rule,
            [("@after", after)]);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new List<long>();
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids;
    }

    /// <summary>
    /// Which of <paramref name="profileIds"/> the rule matches now: each id answers for itself, or for the profile it was
    /// merged into (live, of the brand). For a segment still evaluating; ready ones are read from the table.
    /// </summary>
    public async Task<List<long>> MatchingAsync(long brandId, SegmentRule rule, IReadOnlyCollection<long> profileIds, CancellationToken ct)
    {
        if (profileIds.Count == 0) return [];
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = Command($$"""
            SELECT asked.id FROM profiles asked JOIN profiles p ON p.id = COALESCE(asked.merged_into_id, asked.id)
             WHERE asked.id IN ({{SegmentMembers.List(profileIds)}}) AND p.tenant_id = @brand AND p.merged_into_id IS NULL AND p.erased_at IS NULL AND {0}
            """, brandId, rule, []);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new List<long>();
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids;
    }

    /// <summary>
    /// Whether a live profile is in a ready segment, read from the materialised table in one query: the segment (of
    /// <paramref name="brandIds"/>; null: any brand), the profile (of the segment's brand, neither merged away nor erased)
    /// and the member row. Null when that does not describe them (no such segment or profile, a segment still evaluating,
    /// a merged or erased profile): the caller then finds out which.
    /// </summary>
    public async Task<bool?> ReadyMemberAsync(long segmentId, long profileId, IReadOnlyList<long>? brandIds, CancellationToken ct)
    {
        if (brandIds is { Count: 0 }) return null;
        var brands = brandIds is null ? "" : $" AND s.tenant_id IN ({string.Join(", ", brandIds.Select((_, i) => "@b" + i))})";
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.CommandText = $"""
            SELECT CASE WHEN EXISTS (SELECT 1 FROM segment_members m WHERE m.segment_id = s.id AND m.profile_id = p.id) THEN 1 ELSE 0 END
              FROM segments s JOIN profiles p ON p.id = @profile AND p.tenant_id = s.tenant_id
             WHERE s.id = @segment AND s.status = @ready AND p.merged_into_id IS NULL AND p.erased_at IS NULL{brands}
            """;
        SegmentSql.Bind(command, [("@segment", segmentId), ("@profile", profileId), ("@ready", nameof(Data.SegmentStatus.Ready)),
            .. (brandIds ?? []).Select((b, i) => ("@b" + i, (object)b))]);
        return await command.ExecuteScalarAsync(ct) is { } found and not DBNull ? Convert.ToInt64(found, System.Globalization.CultureInfo.InvariantCulture) == 1 : null;
    }

    private async Task<object?> ScalarAsync(string sql, long brandId, SegmentRule rule, (string, object)[] extra, CancellationToken ct, bool wholeBrand = false)
    {
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = Command(sql, brandId, rule, extra, wholeBrand);
        var value = await command.ExecuteScalarAsync(ct);
        return value is DBNull ? null : value;
    }

    /// <summary>The rule's query on the context's connection, which the caller has opened.</summary>
    private System.Data.Common.DbCommand Command(string sql, long brandId, SegmentRule rule, (string, object)[] extra, bool wholeBrand = false)
    {
        var (condition, parameters) = SegmentSql.Compile(rule, db.Database.IsNpgsql(), time.GetUtcNow().UtcDateTime, lifecycle.Value,
            wholeBrand ? brandId : null);
        var command = db.Database.GetDbConnection().CreateCommand();
        command.CommandText = sql.Replace("{0}", condition, StringComparison.Ordinal);
        SegmentSql.Bind(command, [("@brand", brandId), .. extra, .. parameters]);
        return command;
    }
}
