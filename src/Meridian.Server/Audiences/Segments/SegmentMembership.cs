using System.Globalization;
using System.Text.Json.Serialization;
using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

/// <summary>A profile entered a segment (contract shared with Journeys: exactly these three fields).</summary>
public sealed record SegmentEntered(long SegmentId, long ProfileId, DateTime At) : IDomainEvent
{
    [JsonIgnore]
    public string EventType => "segment.entered";
}

/// <summary>A profile left a segment (its rule no longer holds, or it was merged into another or erased).</summary>
public sealed record SegmentExited(long SegmentId, long ProfileId, DateTime At) : IDomainEvent
{
    [JsonIgnore]
    public string EventType => "segment.exited";
}

/// <summary>
/// Brings a segment's materialised members in line with its rule for some profiles: evaluates the compiled rule
/// restricted to them, compares with <c>segment_members</c>, and in one transaction adds those who entered, removes
/// those who left, publishes <c>segment.entered</c> / <c>segment.exited</c> for each, and records when each profile's
/// answer can next change by time alone (<c>segment_rechecks</c>). Only <see cref="SegmentMaintenance"/> calls it,
/// under its lease, so no two writers diff the same rows.
/// </summary>
public sealed class SegmentMembership(MeridianDb db, EventPublisher events, Tags.Tagging tagging, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<Profiles.Identity.LifecycleThresholds> lifecycle)
{
    /// <summary>Which profiles to evaluate: a list of ids, or the ids in <c>(After, UpTo]</c>.</summary>
    public sealed record Scope(IReadOnlyCollection<long>? Ids, long After = 0, long UpTo = long.MaxValue)
    {
        public string Sql(string column) => Ids is { } ids
            ? $"{column} IN ({string.Join(",", ids.Select(i => i.ToString(CultureInfo.InvariantCulture)))})"
            : $"{column} > {After.ToString(CultureInfo.InvariantCulture)} AND {column} <= {UpTo.ToString(CultureInfo.InvariantCulture)}";

        public IQueryable<T> Filter<T>(IQueryable<T> rows, System.Linq.Expressions.Expression<Func<T, long>> profileId)
        {
            var p = profileId.Parameters[0];
            var body = Ids is { } ids
                ? (System.Linq.Expressions.Expression)System.Linq.Expressions.Expression.Call(typeof(Enumerable), nameof(Enumerable.Contains), [typeof(long)],
                    System.Linq.Expressions.Expression.Constant(ids.ToList()), profileId.Body)
                : System.Linq.Expressions.Expression.AndAlso(
                    System.Linq.Expressions.Expression.GreaterThan(profileId.Body, System.Linq.Expressions.Expression.Constant(After)),
                    System.Linq.Expressions.Expression.LessThanOrEqual(profileId.Body, System.Linq.Expressions.Expression.Constant(UpTo)));
            return rows.Where(System.Linq.Expressions.Expression.Lambda<Func<T, bool>>(body, p));
        }
    }

    public sealed record Change(List<long> Entered, List<long> Exited);

    /// <summary>
    /// Evaluates <paramref name="scope"/> and applies the difference; <paramref name="holdsLease"/> runs inside the
    /// write transaction and must confirm (and renew) the caller's lease, or nothing is written. Returns null then.
    /// With <paramref name="queueDependents"/> (another segment's rule names this one) the profiles that entered or left
    /// are queued, in the same transaction, to be evaluated against the brand's segments again.
    /// </summary>
    public async Task<Change?> RefreshAsync(Segment segment, SegmentRule rule, long groupId, Scope scope, Func<CancellationToken, Task<bool>> holdsLease,
        bool queueDependents, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var matched = (await QueryAsync(segment.TenantId, rule, now, scope, ct)).ToHashSet();
        var current = (await scope.Filter(db.Set<SegmentMember>().AsNoTracking().Where(m => m.SegmentId == segment.Id), m => m.ProfileId)
            .Select(m => m.ProfileId).ToListAsync(ct)).ToHashSet();
        var rechecks = await RechecksAsync(segment.TenantId, rule, now, scope, ct);
        var entered = matched.Except(current).Order().ToList();
        var exited = current.Except(matched).Order().ToList();

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (!await holdsLease(ct)) return null;
        foreach (var chunk in exited.Chunk(500))
            await db.Set<SegmentMember>().Where(m => m.SegmentId == segment.Id && chunk.Contains(m.ProfileId)).ExecuteDeleteAsync(ct);
        await scope.Filter(db.Set<SegmentRecheck>().Where(r => r.SegmentId == segment.Id), r => r.ProfileId).ExecuteDeleteAsync(ct);
        foreach (var profileId in entered)
        {
            db.Add(new SegmentMember { SegmentId = segment.Id, ProfileId = profileId, TenantId = segment.TenantId, EnteredAt = now });
            events.Publish(groupId, segment.TenantId, () => new SegmentEntered(segment.Id, profileId, now));
        }
        foreach (var profileId in exited) events.Publish(groupId, segment.TenantId, () => new SegmentExited(segment.Id, profileId, now));
        foreach (var (profileId, due) in rechecks) db.Add(new SegmentRecheck { SegmentId = segment.Id, ProfileId = profileId, DueAt = due });
        if (queueDependents)
            foreach (var profileId in entered.Concat(exited)) db.Add(new SegmentDirtyProfile { TenantId = segment.TenantId, ProfileId = profileId });
        // Rule tags follow the members; Tagging queues the profiles it changes, for segments naming the tag.
        foreach (var tag in await db.Set<Tag>().AsNoTracking().Where(t => t.SegmentId == segment.Id).ToListAsync(ct))
        {
            var tagged = await scope.Filter(db.Set<ProfileTag>().AsNoTracking().Where(pt => pt.TagId == tag.Id), pt => pt.ProfileId).Select(pt => pt.ProfileId).ToListAsync(ct);
            var by = $"segment:{segment.Id.ToString(CultureInfo.InvariantCulture)}";
            await tagging.AddAsync(tag, groupId, matched.Except(tagged).ToList(), by, null, ct);
            await tagging.RemoveAsync(tag, groupId, tagged.Except(matched).ToList(), by, null, ct);
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        db.ChangeTracker.Clear();
        return new Change(entered, exited);
    }

    /// <summary>The live profiles of the brand within the scope that the rule selects now.</summary>
    private async Task<List<long>> QueryAsync(long brandId, SegmentRule rule, DateTime now, Scope scope, CancellationToken ct)
    {
        var (condition, parameters) = SegmentSql.Compile(rule, db.Database.IsNpgsql(), now, lifecycle.Value);
        var ids = new List<long>();
        await ReadAsync($"SELECT p.id FROM profiles p WHERE p.tenant_id = @brand AND p.merged_into_id IS NULL AND p.erased_at IS NULL AND {scope.Sql("p.id")} AND {condition}",
            brandId, parameters, reader => ids.Add(reader.GetInt64(0)), ct);
        return ids;
    }

    /// <summary>For each live profile in scope whose answer can change by time alone, the first moment it can (just after an event leaves its window).</summary>
    private async Task<List<(long ProfileId, DateTime Due)>> RechecksAsync(long brandId, SegmentRule rule, DateTime now, Scope scope, CancellationToken ct)
    {
        var (points, parameters) = SegmentSql.CompileTimePoints(rule, db.Database.IsNpgsql(), now, lifecycle.Value);
        var due = new List<(long, DateTime)>();
        if (points.Count == 0) return due;
        var columns = string.Join(", ", points.Select(p => p.Sql));
        await ReadAsync($"SELECT p.id, {columns} FROM profiles p WHERE p.tenant_id = @brand AND p.merged_into_id IS NULL AND p.erased_at IS NULL AND {scope.Sql("p.id")}",
            brandId, parameters, reader =>
            {
                DateTime? next = null;
                for (var i = 0; i < points.Count; i++)
                {
                    if (reader.IsDBNull(i + 1)) continue;
                    // A second past the edge: the SQL keeps an event dated exactly at the window's start inside it.
                    var at = Time(reader.GetValue(i + 1)) + points[i].After + TimeSpan.FromSeconds(1);
                    if (at > now && (next is null || at < next)) next = at;
                }
                if (next is { } found) due.Add((reader.GetInt64(0), found));
            }, ct);
        return due;
    }

    private static DateTime Time(object value) => value switch
    {
        DateTime d => DateTime.SpecifyKind(d, DateTimeKind.Utc),
        DateTimeOffset o => o.UtcDateTime,
        string s => DateTime.SpecifyKind(DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal), DateTimeKind.Utc),
        _ => throw new InvalidOperationException($"Not a time: {value.GetType().Name}."),
    };

    private async Task ReadAsync(string sql, long brandId, IReadOnlyList<(string Name, object Value)> parameters, Action<System.Data.Common.DbDataReader> row,
        CancellationToken ct)
    {
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.CommandText = sql;
        SegmentSql.Bind(command, [("@brand", brandId), .. parameters]);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) row(reader);
    }
}
