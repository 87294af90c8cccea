using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Audiences.Segments;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Journeys.Data;
using Meridian.Journeys.Engine;
using Meridian.Journeys.Graph;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Journeys.Triggers;

public enum EntryOutcome
{
    Entered,
    /// <summary>The same trigger (entry key) already let this customer in.</summary>
    AlreadyEntered,
    /// <summary>The re-entry policy keeps the customer out (once; once per N days).</summary>
    NotEligible,
    /// <summary>The journey let in as many customers as its <c>maxEntries</c>.</summary>
    LimitReached,
    NotActive,
    ProfileNotFound,
}

/// <summary>
/// Lets a customer into a journey, whatever the trigger: on the published version, if the journey is active, by the
/// re-entry policy and the entry limit, once per entry key (unique in the database, so two nodes handling the same
/// trigger admit one instance).
/// </summary>
public sealed class JourneyEntries(MeridianDb db, ProfileDirectory profiles, JourneyGraphs graphs, JourneySignal signal, TimeProvider time)
{
    public async Task<(EntryOutcome Outcome, long? InstanceId)> EnterAsync(Journey journey, long profileId, string entryKey, JsonElement? properties, CancellationToken ct)
    {
        if (journey.Status != JourneyStatus.Active || journey.CurrentVersionId is not { } versionId) return (EntryOutcome.NotActive, null);
        if (await profiles.FindLiveAsync(profileId, ct) is not { } live || live.BrandId != journey.TenantId) return (EntryOutcome.ProfileNotFound, null);
        profileId = live.ProfileId;
        var graph = await graphs.GetAsync(db, versionId, ct);
        // The checks below and the insert are one step: under a lock on this customer's entries (or on the journey's, with
        // an entry limit), so two triggers at the same instant on two nodes cannot both pass a check made before either wrote.
        var guarded = graph.Reentry.Policy != "every_time" || graph.MaxEntries is not null;
        await using var transaction = guarded && db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        if (guarded) await TransactionLocks.SerialiseAsync(db, "journey-entries", journey.Id, graph.MaxEntries is null ? profileId : 0, ct);
        var mine = db.Set<JourneyInstance>().AsNoTracking().Where(x => x.JourneyId == journey.Id && x.ProfileId == profileId);
        if (await mine.Where(x => x.EntryKey == entryKey).Select(x => (long?)x.Id).FirstOrDefaultAsync(ct) is { } earlier) return (EntryOutcome.AlreadyEntered, earlier);
        var now = time.GetUtcNow().UtcDateTime;
        var eligible = graph.Reentry.Policy switch
        {
            "once" => !await mine.AnyAsync(ct),
            "once_per_days" => !await mine.AnyAsync(x => x.EnteredAt > now.AddDays(-graph.Reentry.Days), ct),
            _ => true,
        };
        if (!eligible) return (EntryOutcome.NotEligible, null);
        if (graph.MaxEntries is { } max && await db.Set<JourneyInstance>().LongCountAsync(x => x.JourneyId == journey.Id, ct) >= max) return (EntryOutcome.LimitReached, null);

        var context = new JsonObject { ["event"] = properties is { } p ? JsonNode.Parse(p.GetRawText()) : null };
        var instance = new JourneyInstance
        {
            TenantId = journey.TenantId, JourneyId = journey.Id, VersionId = versionId, ProfileId = profileId, EntryKey = entryKey, State = InstanceState.Active,
            CurrentNode = graph.Start, DueAt = now, Context = context.ToJsonString(), EnteredAt = now,
        };
        db.Add(instance);
        try
        {
            await db.SaveChangesAsync(ct);
            if (transaction is not null) await transaction.CommitAsync(ct);
        }
        catch (DbUpdateException ex) when (ProblemExceptionHandler.IsUniqueViolation(ex))
        {
            db.ChangeTracker.Clear();
            return (EntryOutcome.AlreadyEntered, null);
        }
        signal.Notify();
        return (EntryOutcome.Entered, instance.Id);
    }

    /// <summary>Whether the event's properties pass every filter (the segment rule language's comparisons, on one value).</summary>
    public static bool Matches(IReadOnlyList<PropertyFilter> filters, JsonElement properties) =>
        filters.All(f => Holds(f.Compare, properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(f.Property, out var v) ? v : null));

    private static bool Holds(Comparison c, JsonElement? value)
    {
        var present = value is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) };
        if (c.Op == "exists") return present;
        if (c.Op == "not_exists") return !present;
        if (!present || c.Value is not { } expected) return false;
        var actual = value!.Value;
        return c.Op switch
        {
            "eq" => Same(actual, expected),
            "ne" => !Same(actual, expected),
            "in" => expected.ValueKind == JsonValueKind.Array && expected.EnumerateArray().Any(e => Same(actual, e)),
            "contains" => actual.ValueKind == JsonValueKind.String && expected.ValueKind == JsonValueKind.String
                && actual.GetString()!.Contains(expected.GetString()!, StringComparison.OrdinalIgnoreCase),
            _ => Order(actual, expected) is { } order && c.Op switch { "gt" => order > 0, "gte" => order >= 0, "lt" => order < 0, _ => order <= 0 },
        };
    }

    private static bool Same(JsonElement a, JsonElement b) => Order(a, b) == 0
        || (a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.String && string.Equals(a.GetString(), b.GetString(), StringComparison.Ordinal))
        || (a.ValueKind is JsonValueKind.True or JsonValueKind.False && a.ValueKind == b.ValueKind);

    private static int? Order(JsonElement a, JsonElement b)
    {
        if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number && a.TryGetDecimal(out var x) && b.TryGetDecimal(out var y)) return x.CompareTo(y);
        if (a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.String) return string.CompareOrdinal(a.GetString(), b.GetString());
        return null;
    }

    /// <summary>A stable entry key from a caller's text (an API call's Idempotency-Key), within the column's length.</summary>
    public static string Key(string kind, string value) => $"{kind}:{(value.Length > 180 ? value[..180] : value)}";

    public static string Key(string kind, long id) => $"{kind}:{id.ToString(CultureInfo.InvariantCulture)}";
}
