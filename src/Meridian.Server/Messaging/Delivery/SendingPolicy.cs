using Meridian.Data;
using Meridian.Messaging.Data;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Messaging.Delivery;

/// <summary>Quiet hours: a time-of-day window in the brand's time zone during which marketing waits.</summary>
public static class QuietHours
{
    /// <summary>When the quiet hours <paramref name="utcNow"/> falls in end (UTC), or null when it falls in none.</summary>
    public static DateTime? EndOf(MessagingPolicy policy, string timeZone, DateTime utcNow)
    {
        if (policy.QuietStartMinute is not { } start || policy.QuietEndMinute is not { } end || start == end) return null;
        var zone = TimeZoneInfo.TryFindSystemTimeZoneById(timeZone, out var found) ? found : TimeZoneInfo.Utc;
        var local = TimeZoneInfo.ConvertTimeFromUtc(utcNow, zone);
        var minute = local.Hour * 60 + local.Minute;
        var quiet = start < end ? minute >= start && minute < end : minute >= start || minute < end;
        if (!quiet) return null;
        var until = local.Date.AddMinutes(end);
        if (until <= local) until = until.AddDays(1);
        while (zone.IsInvalidTime(until)) until = until.AddMinutes(15); // the end falls in a daylight-saving gap
        return TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(until, DateTimeKind.Unspecified), zone);
    }

    public static string Format(int? minute) => minute is { } m ? $"{m / 60:00}:{m % 60:00}" : "";
}

/// <summary>
/// The marketing frequency cap across every journey and staff send: counted and taken in one transaction that first
/// writes the customer's <c>messaging_cap_locks</c> row, which PostgreSQL row-locks (and SQLite's single writer
/// serialises) until commit, so two nodes sending to the same customer at once cannot both take the last place.
/// </summary>
internal static class FrequencyCaps
{
    /// <summary>Counts the message against the cap (sets its <c>capped_at</c>, committed) or returns why it may not be sent.</summary>
    public static async Task<string?> TryCountAsync(MeridianDb db, IReadOnlyCollection<long> profileIds, long liveProfileId, Message m, int cap, int days,
        string node, DateTime now, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO messaging_cap_locks (profile_id, tenant_id, touched_at) VALUES ({liveProfileId}, {m.TenantId}, {now})
            ON CONFLICT (profile_id) DO UPDATE SET touched_at = excluded.touched_at
            """, ct);
        var since = now.AddDays(-days);
        var counted = await db.Set<Message>().CountAsync(x => profileIds.Contains(x.ProfileId) && x.Purpose == "marketing" && x.CappedAt != null
            && x.CappedAt > since && x.Status != MessageStatus.Failed && x.Id != m.Id, ct);
        if (counted >= cap) return $"Frequency cap: the customer had {counted} marketing messages in the last {days} days (at most {cap}).";
        var taken = await db.Set<Message>().Where(x => x.Id == m.Id && x.LeaseOwner == node).ExecuteUpdateAsync(s => s.SetProperty(x => x.CappedAt, now), ct);
        if (taken == 0) return null; // the lease lapsed; the outcome will not be written either
        await transaction.CommitAsync(ct);
        return null;
    }
}
