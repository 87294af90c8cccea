using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Loyalty.Expiry;

/// <summary>
/// Expires the points left in due lots, one expiry entry per lot (many members' due lots in one transaction), and sends <c>points.expiring</c> the programme's
/// notice days before a lot's date. Exactly once across nodes and restarts (see <see cref="LedgerSweep"/>): each lot
/// expires under the member's balance row like any posting, so expiry never takes points a concurrent spend has drawn,
/// and a lot's notice is marked on the lot in the transaction that sends it.
/// </summary>
public sealed class PointsExpiryJob(IServiceScopeFactory scopes, LoyaltyJobOptions opts, TimeProvider time, ILogger<PointsExpiryJob> logger)
    : LedgerSweep(scopes, opts, time, logger)
{
    public const string JobName = "points-expiry";
    protected override string Name => JobName;

    /// <summary>Members with due lots (each handled whole: one transaction expires all of a member's due lots).</summary>
    protected override Task<List<DueItem>> DueAsync(MeridianDb db, DateTime now, int take, CancellationToken ct) =>
        db.Set<PointLot>().AsNoTracking().Where(l => l.Remaining > 0 && l.ExpiresAt <= now).Select(l => l.MemberId).Distinct().OrderBy(m => m)
            .Take(take).Select(m => new DueItem(m, m)).ToListAsync(ct);

    protected override async Task<bool> HandleAsync(PointsLedger ledger, DueItem member, CancellationToken ct) =>
        await ledger.ExpireDueAsync(member.MemberId, ct) > 0;

    /// <summary>Members expired together in one transaction (<see cref="BatchExpiry"/>: one commit, a statement a table, instead of a transaction and ~10 statements a lot).</summary>
    internal const int MembersPerTransaction = 200;

    /// <summary>
    /// Expires the due members <see cref="MembersPerTransaction"/> at a time, each group set-based in one transaction;
    /// a group that fails is rolled back and done again member by member, so one member's failure holds back no other.
    /// </summary>
    protected override async Task<int> HandleDueAsync(List<DueItem> due, CancellationToken ct)
    {
        var handled = 0;
        foreach (var group in due.Chunk(MembersPerTransaction))
        {
            try
            {
                handled += await InScopeAsync((_, services) => services.GetRequiredService<BatchExpiry>().ExpireAsync([.. group.Select(m => m.MemberId)], ct));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Logger.LogWarning(ex, "Expiring a group of {Members} members failed; expiring them one by one", group.Length);
                handled += await base.HandleDueAsync([.. group], ct);
            }
        }
        return handled;
    }

    protected override Task AfterSweepAsync(CancellationToken ct) => NoticeExpiringAsync(ct);

    /// <summary>One <c>points.expiring</c> per member and expiry date; each lot is marked as it goes, so it is noticed once.</summary>
    private async Task NoticeExpiringAsync(CancellationToken ct)
    {
        var programmes = await InScopeAsync((db, _) => db.Set<LoyaltyProgramme>().AsNoTracking().Where(p => p.ExpiringNoticeDays > 0 && p.Expiry != ExpiryPolicy.Never).ToListAsync(ct));
        foreach (var programme in programmes)
        {
            await InScopeAsync(async (db, _) =>
            {
                var now = Instants.Now(Time);
                var horizon = now.AddDays(programme.ExpiringNoticeDays);
                await using var transaction = await db.Database.BeginTransactionAsync(ct);
                var lots = await (from l in db.Set<PointLot>()
                                  join m in db.Set<LoyaltyMember>() on l.MemberId equals m.Id
                                  where m.ProgrammeId == programme.Id && l.Remaining > 0 && l.NoticeSentAt == null && l.ExpiresAt > now && l.ExpiresAt <= horizon
                                  select new { Lot = l, m.ProfileId }).Take(Options.BatchSize).ToListAsync(ct);
                var events = new EventPublisher(db, Time);
                foreach (var group in lots.GroupBy(x => (x.Lot.MemberId, x.ProfileId, x.Lot.ExpiresAt!.Value)))
                {
                    foreach (var x in group) x.Lot.NoticeSentAt = now;
                    var (memberId, profileId, expiresAt) = group.Key;
                    var points = group.Sum(x => x.Lot.Remaining);
                    events.Publish(programme.GroupId, programme.TenantId, () => new PointsExpiring(memberId, profileId, points, expiresAt));
                }
                await db.SaveChangesAsync(ct);
                await transaction.CommitAsync(ct);
                return lots.Count;
            });
        }
    }
}
