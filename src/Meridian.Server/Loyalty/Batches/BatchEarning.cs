using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Earning;
using Meridian.Loyalty.Ledger;
using Meridian.Loyalty.Tiers;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Loyalty.Batches;

/// <summary>1 to 1,000 earnings, each for a member of the acting brand's programme.</summary>
public sealed record EarnBatchRequest([property: Required] List<EarnBatchItem?>? Postings);

/// <summary>
/// One earning: <c>sourceKey</c> (what produced it, e.g. a till's receipt number) is unique per member, so a batch
/// sent twice credits once. With <c>pendingDays</c> the points are held that many days, as in the single earn.
/// </summary>
public sealed record EarnBatchItem(long? MemberId, long? Points, string? SourceKey, string? Reference = null, int? PendingDays = null);

/// <summary>Why an item of a batch was rejected: a stable problem <c>type</c> and a sentence.</summary>
public sealed record BatchProblem(string Type, string Detail);

/// <summary>The outcome of the item at <c>index</c>: <c>posted</c> (its entry), <c>duplicate</c> (the entry its source key posted before), <c>rejected</c> (the problem).</summary>
public sealed record EarnBatchResult(int Index, string Status, EntryDto? Entry, BatchProblem? Problem);

public sealed record EarnBatchResponse(IReadOnlyList<EarnBatchResult> Results);

/// <summary>
/// Earn postings in bulk (a till's end-of-day file, a campaign's grant, a migration), by the single earn's rules
/// (tier and campaign multipliers, rounding, lot expiry, held points, the entry's explanation, <c>points.earned</c>),
/// written set-based in one transaction: the batch's members are locked in one statement (<see cref="MemberRows"/>),
/// their earlier source keys read in one query, every entry and lot computed in memory (<see cref="PointsBook"/>) and
/// written with <see cref="EntityRows"/>, the balances in one update. A member whose posting needs what the in-memory
/// path does not do (owed points to pay back, a tier to move, a tier qualified from the entries) is posted through
/// <see cref="PointsLedger"/> in the same transaction.
/// </summary>
public sealed class BatchEarning(MeridianDb db, PointsLedger ledger, EventPublisher events, ProgrammeRules rules, CampaignSegments campaignSegments, TenantScope tenant,
    TimeProvider time)
{
    public const int MaxPostings = 1000;
    public const string Posted = "posted";
    public const string Duplicate = "duplicate";
    public const string Rejected = "rejected";
    private const string Rule = "api";
    private const long MaxPoints = 1_000_000_000_000;

    /// <summary>
    /// <c>POST /api/v1/loyalty/postings/earn-batch</c>: results in request order; bad items are rejected and the good
    /// ones kept. An <c>Idempotency-Key</c> is optional (the source keys already make a resend safe); with one, a retry
    /// gets the first response byte for byte.
    /// </summary>
    public static async Task<IResult> Post(EarnBatchRequest request, HttpContext http, IdempotentPosting once, BatchEarning batch, MeridianDb db,
        CancellationToken ct)
    {
        if (Invalid(request) is { } errors) return Problems.Validation(errors);
        var postings = request.Postings!.Select(p => p!).ToList();
        // With a key, the idempotent runner takes SQLite's writer turn itself.
        if (http.Request.Headers.ContainsKey(IdempotentPosting.Header))
            return await once.RunAsync(http, request, async () => await batch.EarnAsync(postings, ct), "The batch", ct);
        using var turn = await db.Database.WriterTurnAsync(ct);
        return TypedResults.Ok(await batch.EarnAsync(postings, ct));
    }

    /// <summary>What makes the body unreadable as a batch (a 400 with field errors); what makes one item unpostable rejects that item only.</summary>
    private static Dictionary<string, string[]>? Invalid(EarnBatchRequest request)
    {
        if (request.Postings is not { Count: >= 1 and <= MaxPostings } postings)
            return new() { ["postings"] = [$"Send 1 to {MaxPostings:N0} postings."] };
        var errors = new Dictionary<string, string[]>();
        for (var i = 0; i < postings.Count; i++)
        {
            var field = $"postings[{i}]";
            if (postings[i] is not { } p)
            {
                errors[field] = ["A posting is an object with memberId, points and sourceKey."];
                continue;
            }
            if (p.MemberId is null) errors[$"{field}.memberId"] = ["Name the member."];
            if (p.Points is null) errors[$"{field}.points"] = ["Say how many points the member earns."];
            else if (p.Points > MaxPoints) errors[$"{field}.points"] = [$"At most {MaxPoints:N0} points a posting."];
            if (p.SourceKey is { Length: > 250 }) errors[$"{field}.sourceKey"] = ["At most 250 characters."];
            if (p.Reference is { Length: > 200 }) errors[$"{field}.reference"] = ["At most 200 characters."];
            if (p.PendingDays is < 0 or > 365) errors[$"{field}.pendingDays"] = ["From 0 to 365 days."];
        }
        return errors.Count == 0 ? null : errors;
    }

    /// <summary>Posts the batch in one transaction (the caller's, when it opened one: the idempotent runner).</summary>
    public async Task<EarnBatchResponse> EarnAsync(IReadOnlyList<EarnBatchItem> postings, CancellationToken ct)
    {
        using var noSavepoints = PointsLedger.NoSavepoints(db);
        await using var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        var results = await PostAsync(postings, ct);
        await StoreRejectsAsync(postings, results, ct);
        if (own is not null) await own.CommitAsync(ct);
        return new EarnBatchResponse(results);
    }

    /// <summary>The rejected items, kept with their reasons in the batch's transaction (<c>GET /postings/rejected</c>).</summary>
    private async Task StoreRejectsAsync(IReadOnlyList<EarnBatchItem> postings, EarnBatchResult[] results, CancellationToken ct)
    {
        var now = Instants.Now(time);
        var rejects = results.Where(r => r.Status == Rejected).Select(r => new RejectedPosting
        {
            TenantId = tenant.Brand, ReceivedAt = now, Position = r.Index, MemberId = postings[r.Index].MemberId, Points = postings[r.Index].Points,
            SourceKey = postings[r.Index].SourceKey, Reference = postings[r.Index].Reference, ProblemType = r.Problem!.Type,
            Detail = r.Problem.Detail.Length > 1000 ? r.Problem.Detail[..1000] : r.Problem.Detail,
        }).ToList();
        if (rejects.Count > 0) await EntityRows.InsertAsync(db, rejects, returnKeys: false, ct);
    }

    /// <summary>A member's postings in the batch, computed in memory, not yet written.</summary>
    private sealed record Plan(LoyaltyMember Member, LoyaltyProgramme Programme, PointsBook Book, long ProfileId, long Qualifying,
        List<(int Index, LedgerEntry Entry)> Entries, List<(int Index, string Detail)> NothingToCredit);

    private async Task<EarnBatchResult[]> PostAsync(IReadOnlyList<EarnBatchItem> postings, CancellationToken ct)
    {
        var results = new EarnBatchResult?[postings.Count];
        void Reject(int index, string type, string detail) => results[index] = new(index, Rejected, null, new BatchProblem(type, detail));
        for (var i = 0; i < postings.Count; i++)
        {
            if (postings[i].Points <= 0) Reject(i, ProblemTypes.Validation, "points: a posting earns at least 1 point.");
            else if (string.IsNullOrWhiteSpace(postings[i].SourceKey)) Reject(i, ProblemTypes.Validation, "sourceKey: name what produced the points, so that a resent batch credits once.");
        }

        var members = await MemberRows.LockAsync(db, [.. Enumerable.Range(0, postings.Count).Where(i => results[i] is null).Select(i => postings[i].MemberId!.Value).Distinct().Order()], ct);
        for (var i = 0; i < postings.Count; i++)
            if (results[i] is null && !members.ContainsKey(postings[i].MemberId!.Value))
                Reject(i, ProblemTypes.NotFound, $"Member {postings[i].MemberId} was not found.");
        var items = Enumerable.Range(0, postings.Count).Where(i => results[i] is null).ToLookup(i => postings[i].MemberId!.Value);

        // What the batch's source keys posted before (a resent batch), and what this batch posts: a repeat of either is a duplicate.
        var earned = (await EarlierAsync([.. items.SelectMany(g => g).Select(i => (postings[i].MemberId!.Value, postings[i].SourceKey!)).Distinct()], ct))
            .ToDictionary(e => (e.MemberId, e.SourceKey!));
        var brand = tenant.Brand;
        var profiles = await ProfilesAtAsync(members.Values, brand, ct);
        var now = Instants.Now(time);
        // Segment campaigns: the batch's members' memberships in one read (not one per posting).
        var running = new List<LoyaltyCampaign>();
        foreach (var programmeId in members.Values.Select(m => m.ProgrammeId).Distinct()) running.AddRange((await rules.OfAsync(db, programmeId, ct)).Campaigns);
        var segments = await campaignSegments.OfAsync(members.Values, running, now, ct);

        var plans = new List<Plan>();
        foreach (var member in members.Values)
        {
            var (programme, tiers, campaigns) = await rules.OfAsync(db, member.ProgrammeId, ct);
            var mine = items[member.Id].ToList();
            if (PlanOf(member, programme, tiers, campaigns, segments, mine, postings, earned, profiles.GetValueOrDefault(member.Id, member.ProfileId), now) is { } plan)
            {
                plans.Add(plan);
                foreach (var (_, entry) in plan.Entries) earned[(member.Id, entry.SourceKey!)] = entry;
                foreach (var (index, detail) in plan.NothingToCredit) Reject(index, ProblemTypes.BusinessRule, detail);
            }
            else await PostThroughLedgerAsync(mine, postings, earned, results, ct);
        }

        await WriteAsync(plans, postings, brand, ct);
        foreach (var (index, entry) in plans.SelectMany(p => p.Entries)) results[index] = new(index, Posted, LoyaltyEndpoints.ToDto(entry), null);
        // The rest repeat a source key, posted before or earlier in this batch.
        return [.. results.Select((r, i) => r ?? new(i, Duplicate, LoyaltyEndpoints.ToDto(earned[(postings[i].MemberId!.Value, postings[i].SourceKey!)]), null))];
    }

    /// <summary>
    /// The member's postings in memory, or null when one needs the ledger's full path: owed points (a credit pays them
    /// back from lots), a tier qualified from the entries, or a posting that moves the member's tier (the multiplier of
    /// the postings after it changes, and <c>tier.changed</c> goes out). Duplicates are left out; postings that credit
    /// nothing are listed with the reason.
    /// </summary>
    private static Plan? PlanOf(LoyaltyMember member, LoyaltyProgramme programme, List<LoyaltyTier> tiers, List<LoyaltyCampaign> campaigns, MemberSegments segments,
        List<int> mine, IReadOnlyList<EarnBatchItem> postings, Dictionary<(long, string), LedgerEntry> earned, long profileId, DateTime now)
    {
        if (member.Owed > 0 || (tiers.Count > 0 && TierStanding.SumsEntries(programme))) return null;
        var multipliers = PointsLedger.Multipliers(member, tiers, campaigns, now, segments);
        var book = new PointsBook(member.TenantId, member.ProgrammeId, member.Id, member.Balance, member.Pending, member.Owed, []);
        var qualifying = member.QualifyingPoints;
        var entries = new List<(int, LedgerEntry)>();
        var nothing = new List<(int, string)>();
        var keys = new HashSet<string>();
        foreach (var index in mine)
        {
            var posting = postings[index];
            if (earned.ContainsKey((member.Id, posting.SourceKey!)) || !keys.Add(posting.SourceKey!)) continue;
            var (points, explained) = EarningMath.Apply(posting.Points!.Value, multipliers, programme.Combination, programme.Rounding);
            if (points <= 0)
            {
                // As the single earn refuses it (and the key stays free for a later posting).
                keys.Remove(posting.SourceKey!);
                nothing.Add((index, $"{Rule}: {explained}: nothing to credit."));
                continue;
            }
            qualifying += points;
            if (tiers.Count > 0 && TierStanding.Target(programme, member, tiers, qualifying, mayDowngrade: false)?.Id != member.TierId) return null;
            DateTime? heldUntil = posting.PendingDays > 0 ? now.AddDays(posting.PendingDays.Value) : null;
            var entry = book.Grant(EntryKinds.Earn, LedgerAccounts.Issued, points, programme.ExpiresAt(now), now, $"{Rule}: {explained}",
                reference: posting.Reference, sourceKey: posting.SourceKey, heldUntil: heldUntil);
            entry.BasePoints = posting.Points;
            entries.Add((index, entry));
        }
        return new Plan(member, programme, book, profileId, qualifying - member.QualifyingPoints, entries, nothing);
    }

    /// <summary>The slow path, for a member <see cref="PlanOf"/> declined: the single earn's code, posting by posting, in this transaction.</summary>
    private async Task PostThroughLedgerAsync(List<int> mine, IReadOnlyList<EarnBatchItem> postings, Dictionary<(long, string), LedgerEntry> earned,
        EarnBatchResult?[] results, CancellationToken ct)
    {
        foreach (var index in mine)
        {
            var posting = postings[index];
            if (earned.ContainsKey((posting.MemberId!.Value, posting.SourceKey!))) continue;
            try
            {
                var entry = await ledger.EarnAsync(posting.MemberId.Value, posting.Points!.Value, posting.Reference, ct, Rule, posting.SourceKey, posting.PendingDays ?? 0);
                earned[(posting.MemberId.Value, posting.SourceKey!)] = entry!;
                results[index] = new(index, Posted, LoyaltyEndpoints.ToDto(entry), null);
            }
            catch (BusinessRuleException refused)
            {
                // Thrown before the posting wrote anything: the batch's transaction carries on.
                results[index] = new(index, Rejected, null, new BatchProblem(refused.Type, refused.Message));
            }
        }
    }

    /// <summary>
    /// The entries earlier postings made with these members' source keys. PostgreSQL: joined with the exact pairs, one
    /// probe of the unique (member, source key) index each; "= ANY" lists on both columns read every entry of the
    /// batch's members (in the bench 1,800 buffers a batch of 500 against 1,250 joined, and growing with the members'
    /// history). SQLite: the members and keys as lists (a superset of the pairs; its probes are in-process and cheap).
    /// </summary>
    private async Task<List<LedgerEntry>> EarlierAsync(List<(long Member, string Key)> pairs, CancellationToken ct)
    {
        if (pairs.Count == 0) return [];
        if (db.Database.IsNpgsql())
        {
            long[] members = [.. pairs.Select(p => p.Member)];
            string[] keys = [.. pairs.Select(p => p.Key)];
            return await db.Set<LedgerEntry>().FromSql($"""
                SELECT e.* FROM unnest({members}, {keys}) AS k(member_id, source_key)
                JOIN loyalty_entries e ON e.member_id = k.member_id AND e.source_key = k.source_key
                """).AsNoTracking().ToListAsync(ct);
        }
        var memberIds = pairs.Select(p => p.Member).Distinct().ToList();
        var sourceKeys = pairs.Select(p => p.Key).Distinct().ToList();
        return await db.Set<LedgerEntry>().AsNoTracking().Where(e => memberIds.Contains(e.MemberId) && sourceKeys.Contains(e.SourceKey!)).ToListAsync(ct);
    }

    /// <summary>Members of a shared programme earn under their profile at the acting brand (the enrolment profile when not linked there).</summary>
    private async Task<Dictionary<long, long>> ProfilesAtAsync(IEnumerable<LoyaltyMember> members, long brand, CancellationToken ct)
    {
        var shared = new List<long>();
        foreach (var member in members)
            if ((await rules.OfAsync(db, member.ProgrammeId, ct)).Programme.Shared) shared.Add(member.Id);
        if (shared.Count == 0) return [];
        return await db.Set<LoyaltyMemberProfile>().AsNoTracking().Where(p => shared.Contains(p.MemberId) && p.BrandId == brand)
            .ToDictionaryAsync(p => p.MemberId, p => p.ProfileId, ct);
    }

    /// <summary>Entries, then their lots (which name them), the members' totals in one statement, and <c>points.earned</c> for each entry.</summary>
    private async Task WriteAsync(List<Plan> plans, IReadOnlyList<EarnBatchItem> postings, long brand, CancellationToken ct)
    {
        var entries = plans.SelectMany(p => p.Entries).Select(e => e.Entry).ToList();
        if (entries.Count == 0) return;
        foreach (var entry in entries) entry.BrandId = brand;
        await EntityRows.InsertAsync(db, entries, returnKeys: true, ct);
        foreach (var entry in entries) entry.Lot!.EntryId = entry.Id;
        await EntityRows.InsertAsync(db, [.. entries.Select(e => e.Lot!)], returnKeys: true, ct);
        await MemberRows.StoreTotalsAsync(db, [.. plans.Where(p => p.Entries.Count > 0).Select(p => new MemberRows.Totals(p.Member.Id, p.Book.Spendable, p.Book.Pending, p.Qualifying))], ct);
        var tx = db.Database.CurrentTransaction!.GetDbTransaction();
        foreach (var group in plans.GroupBy(p => p.Programme.GroupId))
            await events.PublishManyAsync(tx, group.Key, brand, group.SelectMany(p => p.Entries.Select(e =>
                (IDomainEvent)new PointsEarned(p.Member.Id, p.ProfileId, e.Entry.Id, e.Entry.Total, e.Entry.BalanceAfter, postings[e.Index].Reference))), ct);
    }
}
