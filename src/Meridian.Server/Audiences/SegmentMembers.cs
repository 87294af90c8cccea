using System.Globalization;
using Meridian.Audiences.Data;
using Meridian.Audiences.Segments;
using Meridian.Data;
using Meridian.Hosting;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences;

/// <summary>Which of the asked profiles are in which of the asked segments now, and the names of the segments found.</summary>
public sealed record SegmentMemberships(IReadOnlyDictionary<long, string> Names, IReadOnlySet<(long SegmentId, long ProfileId)> Pairs)
{
    public static readonly SegmentMemberships None = new(new Dictionary<long, string>(), new HashSet<(long, long)>());

    /// <summary>Whether any asked profile is in at least one of the segments.</summary>
    public bool AnyIn(IReadOnlyCollection<long> segmentIds) => Pairs.Any(p => segmentIds.Contains(p.SegmentId));

    /// <summary>Whether the profile is in at least one of the segments.</summary>
    public bool InAny(IEnumerable<long> segmentIds, long profileId) => segmentIds.Any(s => Pairs.Contains((s, profileId)));

    /// <summary>The segment's name, or "segment {id}" when no such segment was found (deleted since).</summary>
    public string NameOf(long segmentId) => Names.TryGetValue(segmentId, out var name) ? name : $"segment {segmentId.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>
/// What other modules may ask about segments without reading Audiences' tables (Offers' and Loyalty's segment
/// conditions). Membership is read on every call, never cached: it follows the customer's behaviour. A ready segment
/// answers from <c>segment_members</c> (primary-key reads); one still evaluating (new or changed rule) evaluates its
/// rule live for the asked profiles only, as the membership check does. A profile merged into another answers for the
/// profile it was merged into.
/// </summary>
public sealed class SegmentMembers(MeridianDb db, SegmentEvaluator evaluator)
{
    /// <summary>The segments among <paramref name="segmentIds"/> that belong to one of <paramref name="brandIds"/>: id → (brand, name).</summary>
    public async Task<Dictionary<long, (long BrandId, string Name)>> ExistAsync(IReadOnlyCollection<long> brandIds, IReadOnlyCollection<long> segmentIds, CancellationToken ct)
    {
        if (brandIds.Count == 0 || segmentIds.Count == 0) return [];
        // Named brands, not the request's scope: a group programme's segment may be another participating brand's.
        var rows = await db.Set<Segment>().IgnoreQueryFilters().AsNoTracking().Where(s => brandIds.Contains(s.TenantId) && segmentIds.Contains(s.Id))
            .Select(s => new { s.Id, s.TenantId, s.Name }).ToListAsync(ct);
        return rows.ToDictionary(r => r.Id, r => (r.TenantId, r.Name));
    }

    /// <summary>The profiles among <paramref name="profileIds"/> in at least one of the segments (of <paramref name="brandId"/>).</summary>
    public async Task<HashSet<long>> InAnyAsync(long brandId, IReadOnlyCollection<long> segmentIds, IReadOnlyCollection<long> profileIds, CancellationToken ct) =>
        (await OfAsync([brandId], segmentIds, profileIds, ct)).Pairs.Select(p => p.ProfileId).ToHashSet();

    /// <summary>
    /// Which of the profiles are in which of the segments (those of <paramref name="brandIds"/>) now: one query when every
    /// segment is ready, plus one per segment still evaluating.
    /// </summary>
    public async Task<SegmentMemberships> OfAsync(IReadOnlyCollection<long> brandIds, IReadOnlyCollection<long> segmentIds, IReadOnlyCollection<long> profileIds,
        CancellationToken ct)
    {
        if (brandIds.Count == 0 || segmentIds.Count == 0 || profileIds.Count == 0) return SegmentMemberships.None;
        var names = new Dictionary<long, string>();
        var pairs = new HashSet<(long, long)>();
        var evaluating = new List<(long Id, long BrandId, string Rule)>();
        var (segments, profiles, brands) = (List(segmentIds), List(profileIds), List(brandIds));
        await using (var open = await db.Database.OpenedAsync(ct))
        {
            await using var command = open.Connection.CreateCommand();
            // The member rows of the asked profiles (or of those they were merged into), for ready segments only.
            command.CommandText = $"""
                SELECT s.id, s.tenant_id, s.name, s.status, CASE WHEN s.status = @ready THEN NULL ELSE s.rule END, x.profile_id
                  FROM segments s
                  LEFT JOIN (SELECT m.segment_id, asked.id AS profile_id
                               FROM profiles asked JOIN segment_members m ON m.profile_id = COALESCE(asked.merged_into_id, asked.id)
                              WHERE asked.id IN ({profiles}) AND m.segment_id IN ({segments})) x ON x.segment_id = s.id AND s.status = @ready
                 WHERE s.id IN ({segments}) AND s.tenant_id IN ({brands})
                """;
            SegmentSql.Bind(command, [("@ready", nameof(SegmentStatus.Ready))]);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var id = reader.GetInt64(0);
                names[id] = reader.GetString(2);
                if (!reader.IsDBNull(5)) pairs.Add((id, reader.GetInt64(5)));
                else if (!reader.IsDBNull(4)) evaluating.Add((id, reader.GetInt64(1), reader.GetString(4)));
            }
        }
        foreach (var (id, brandId, rule) in evaluating)
        {
            using var json = System.Text.Json.JsonDocument.Parse(rule);
            if (SegmentRuleParser.Parse(json.RootElement, out _) is not { } parsed) continue;
            foreach (var profileId in await evaluator.MatchingAsync(brandId, parsed, profileIds, ct)) pairs.Add((id, profileId));
        }
        return new SegmentMemberships(names, pairs);
    }

    /// <summary>Ids as SQL literals (longs only, so nothing to escape; the lists are bounded by the callers).</summary>
    internal static string List(IEnumerable<long> ids) => string.Join(",", ids.Distinct().Select(i => i.ToString(CultureInfo.InvariantCulture)));
}
