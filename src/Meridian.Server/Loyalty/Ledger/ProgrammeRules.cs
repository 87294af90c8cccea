using System.Collections.Concurrent;
using System.Diagnostics;
using Meridian.Data;
using Meridian.Loyalty.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Ledger;

/// <summary>
/// A programme with its tiers and campaigns as postings read them, kept per node for <see cref="Lifetime"/> (a posting
/// read all three on every call). Changes made through this node's API forget the programme at once
/// (<see cref="Forget"/>); a change made on another node is seen here within <see cref="Lifetime"/>. Callers reach the
/// programme only through a member they found in their brands, so the rows need no tenant check of their own. The
/// rows are shared between requests: read them, never change them.
/// </summary>
public sealed class ProgrammeRules
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(2);
    private const int MaxEntries = 10_000;

    /// <summary>The programme, its tiers and all its campaigns (callers pick those running at their moment).</summary>
    public sealed record Rules(LoyaltyProgramme Programme, List<LoyaltyTier> Tiers, List<LoyaltyCampaign> Campaigns);

    private sealed record Entry(Rules Rules, long LoadedAt);

    private readonly ConcurrentDictionary<long, Entry> entries = new();
    private long generation;

    public async Task<Rules> OfAsync(MeridianDb db, long programmeId, CancellationToken ct)
    {
        if (entries.TryGetValue(programmeId, out var cached) && Stopwatch.GetElapsedTime(cached.LoadedAt) < Lifetime) return cached.Rules;
        var loading = Interlocked.Read(ref generation);
        var started = Stopwatch.GetTimestamp();
        var programme = await db.Set<LoyaltyProgramme>().AsNoTracking().SingleAsync(p => p.Id == programmeId, ct);
        var tiers = await db.Set<LoyaltyTier>().AsNoTracking().Where(t => t.ProgrammeId == programmeId).ToListAsync(ct);
        var campaigns = await db.Set<LoyaltyCampaign>().AsNoTracking().Where(c => c.ProgrammeId == programmeId).OrderBy(c => c.Id).ToListAsync(ct);
        var rules = new Rules(programme, tiers, campaigns);
        // Kept only when no change was made on this node while it loaded (it might have read the rows before that change).
        if (Interlocked.Read(ref generation) == loading)
        {
            if (entries.Count >= MaxEntries) entries.Clear();
            entries[programmeId] = new Entry(rules, started);
        }
        return rules;
    }

    /// <summary>The programme, its tiers or campaigns changed: the next posting reads them afresh.</summary>
    public void Forget(long programmeId)
    {
        Interlocked.Increment(ref generation);
        entries.TryRemove(programmeId, out _);
    }
}
