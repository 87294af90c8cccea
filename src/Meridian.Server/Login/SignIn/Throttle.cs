using Meridian.Data;
using Meridian.Login.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Login.SignIn;

/// <summary>
/// Progressive delays after failed sign-ins, per account and per source address. The first few failures cost nothing;
/// then each one blocks that key for twice as long as the one before (up to <see cref="MaxDelay"/>). A blocked
/// attempt is answered exactly like a wrong secret, without checking it, and counts as a failure: an attack that keeps
/// going keeps the key blocked, for longer each time. An SMS code is throttled per address only,
/// so that nobody can lock a customer out of their account by failing on purpose: the customer's phone always gets in.
/// </summary>
public sealed class Throttle(MeridianDb db, TimeProvider time)
{
    public const int FreeAccountFailures = 5;
    public const int FreeAddressFailures = 20;
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(15);

    public static string AccountKey(long brandId, string identifier) => $"acct:{brandId}:{identifier}";
    public static string AddressKey(string address) => $"ip:{address}";

    public async Task<bool> IsBlockedAsync(IEnumerable<string> keys, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var list = keys.ToList();
        return await db.Set<LoginThrottle>().AsNoTracking().AnyAsync(t => list.Contains(t.Key) && t.BlockedUntil > now, ct);
    }

    public async Task FailedAsync(IEnumerable<string> keys, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var key in keys)
        {
            var row = await db.Set<LoginThrottle>().SingleOrDefaultAsync(t => t.Key == key, ct);
            if (row is null) db.Add(row = new LoginThrottle { Key = key });
            row.Failures++;
            row.UpdatedAt = now;
            var free = key.StartsWith("ip:", StringComparison.Ordinal) ? FreeAddressFailures : FreeAccountFailures;
            if (row.Failures > free)
            {
                var seconds = Math.Min(MaxDelay.TotalSeconds, Math.Pow(2, Math.Min(row.Failures - free - 1, 20)));
                row.BlockedUntil = now.AddSeconds(seconds);
            }
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear(); // two failures raced to create the same row: one counted is enough
        }
    }

    public async Task SucceededAsync(string key, CancellationToken ct) =>
        await db.Set<LoginThrottle>().Where(t => t.Key == key).ExecuteDeleteAsync(ct);
}
