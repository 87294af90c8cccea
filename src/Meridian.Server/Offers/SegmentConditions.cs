using System.Globalization;
using Meridian.Audiences;
using Meridian.Hosting;
using Meridian.Offers.Data;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Meridian.Offers;

/// <summary>
/// Templates' <c>conditions.segmentIds</c>: the customer must be in at least one of the segments (of the template's
/// brand) now. Answered by Audiences' <see cref="SegmentMembers"/> on every call, never cached here.
/// </summary>
public sealed class SegmentConditions(SegmentMembers members)
{
    public const int MaxSegments = 20;

    /// <summary>
    /// The memberships the templates' segment conditions need for the profiles, in one query (none when no template
    /// names a segment). A profile merged into another answers for the one it was merged into.
    /// </summary>
    public Task<SegmentMemberships> ReadAsync(IEnumerable<(long BrandId, CouponConditions Conditions)> templates, IEnumerable<long> profileIds, CancellationToken ct)
    {
        var named = templates.Where(t => t.Conditions.SegmentIds.Count > 0).ToList();
        if (named.Count == 0) return Task.FromResult(SegmentMemberships.None);
        return members.OfAsync(named.Select(t => t.BrandId).Distinct().ToList(), named.SelectMany(t => t.Conditions.SegmentIds).Distinct().ToList(),
            profileIds.Distinct().ToList(), ct);
    }

    /// <summary>A 400 naming each listed id that is not a segment of the brand (<c>conditions.segmentIds[i]</c>), or too many ids.</summary>
    public async Task<ValidationProblem?> InvalidAsync(long brandId, IReadOnlyList<long> segmentIds, CancellationToken ct)
    {
        if (segmentIds.Count > MaxSegments) return Problems.Validation("conditions.segmentIds", $"At most {MaxSegments} segments.");
        if (segmentIds.Count == 0) return null;
        var known = await members.ExistAsync([brandId], segmentIds, ct);
        var errors = new Dictionary<string, string[]>();
        for (var i = 0; i < segmentIds.Count; i++)
            if (!known.ContainsKey(segmentIds[i]))
                errors[$"conditions.segmentIds[{i.ToString(CultureInfo.InvariantCulture)}]"] = [$"Segment {segmentIds[i]} is not a segment of the brand."];
        return errors.Count == 0 ? null : Problems.Validation(errors);
    }
}
