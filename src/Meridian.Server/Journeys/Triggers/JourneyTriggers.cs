using System.Globalization;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Tracking;
using Meridian.Journeys.Data;
using Meridian.Journeys.Engine;
using Meridian.Journeys.Graph;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Journeys.Triggers;

/// <summary>The active journeys and their published graphs, for the triggers to match against.</summary>
public static class ActiveJourneys
{
    public static async Task<List<(Journey Journey, JourneyGraph Graph)>> ListAsync(MeridianDb db, JourneyGraphs graphs, string triggerType, long? brand, CancellationToken ct)
    {
        var query = db.Set<Journey>().AsNoTracking().Where(j => j.Status == JourneyStatus.Active && j.CurrentVersionId != null);
        if (brand is { } b) query = query.Where(j => j.TenantId == b);
        var list = new List<(Journey, JourneyGraph)>();
        foreach (var journey in await query.ToListAsync(ct))
        {
            var graph = await graphs.GetAsync(db, journey.CurrentVersionId!.Value, ct);
            if (graph.Trigger.Type == triggerType) list.Add((journey, graph));
        }
        return list;
    }
}

/// <summary>
/// Tracked events start journeys (an <c>event</c> trigger whose name and property filters match) and wake instances
/// waiting for them (<c>wait_event</c> nodes). Follows the event log behind identity resolution, as loyalty earning does,
/// so each event has its customer: one node at a time holds the lease, and the position moves after each batch. An event
/// read twice (a crash before the position moved) enters nobody twice: its entry key is the event's id.
/// </summary>
public sealed class EventTrigger(IServiceScopeFactory scopes, IOptions<JourneyOptions> options, TimeProvider time, ILogger<EventTrigger> logger) : BackgroundService
{
    public const string Name = "journey-events";
    private readonly JourneyOptions opts = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        // Polled on the machine's clock, not the injected one: how soon an event is picked up is not business time
        // (a test's frozen clock must not stop triggers), while every time the trigger records comes from TimeProvider.
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await RunOnceAsync(stoppingToken) > 0) { }
                await Task.Delay(opts.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Journey event triggers tick failed");
                await Task.Delay(opts.PollInterval, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<MeridianDb>();
        // An idle poll writes nothing while this node holds the lease with more than half of it left: the batch's end moves
        // the position only while this node holds the lease, and renews it; what a batch does before (entries keyed by the
        // event, wakes of instances still waiting) is the same when done twice.
        var polled = time.GetUtcNow().UtcDateTime;
        var job = await db.Set<JourneyJob>().AsNoTracking().SingleOrDefaultAsync(j => j.Name == Name, ct);
        if (job is null || Leases.NeedsWrite(job.LeaseOwner, job.LeaseUntil, opts.Node, polled, opts.Lease))
        {
            if (!await JourneyJob.TakeLeaseAsync(db, Name, opts.Node, opts.Lease, polled, ct)) return 0;
            job = await db.Set<JourneyJob>().AsNoTracking().SingleAsync(j => j.Name == Name, ct);
        }
        var directory = services.GetRequiredService<ProfileDirectory>();
        var resolved = await directory.ResolvedUpToAsync(ct);
        var events = (await services.GetRequiredService<EventLog>().ReadAfterAsync(new EventLogPosition(job.PositionTx, job.PositionId), opts.BatchSize, ct))
            .TakeWhile(e => e.TxId < resolved.TxId || (e.TxId == resolved.TxId && e.Id <= resolved.Id)).ToList();
        if (events.Count == 0) return 0;

        var graphs = services.GetRequiredService<JourneyGraphs>();
        var journeys = await ActiveJourneys.ListAsync(db, graphs, "event", null, ct);
        var awaited = (await db.Set<JourneyInstance>().AsNoTracking().Where(x => x.State == InstanceState.Waiting && x.WaitEvent != null)
            .Select(x => x.WaitEvent!).Distinct().ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var entries = services.GetRequiredService<JourneyEntries>();
        var moving = events.Where(e => e.Type == "track" && e.Name is not null)
            .Select(e => (Event: e, Starting: journeys.Where(j => j.Journey.TenantId == e.TenantId && j.Graph.Trigger.Event == e.Name).ToList(), Waking: awaited.Contains(e.Name!)))
            .Where(m => m.Starting.Count > 0 || m.Waking).ToList();
        var profiles = await directory.ProfilesOfEventsAsync([.. moving.Select(m => m.Event.Id)], ct);
        foreach (var (e, starting, waking) in moving)
        {
            if (!profiles.TryGetValue(e.Id, out var profile)) continue;
            using var message = JsonDocument.Parse(e.Payload);
            var properties = message.RootElement.TryGetProperty("properties", out var p) ? p : default;
            foreach (var (journey, graph) in starting.Where(j => JourneyEntries.Matches(j.Graph.Trigger.Where, properties)))
                await entries.EnterAsync(journey, profile.ProfileId, JourneyEntries.Key("event", e.Id), properties.ValueKind == JsonValueKind.Object ? properties : null, ct);
            if (waking)
            {
                var now = time.GetUtcNow().UtcDateTime;
                var waiting = await db.Set<JourneyInstance>().AsNoTracking()
                    .Where(x => x.TenantId == e.TenantId && x.ProfileId == profile.ProfileId && x.State == InstanceState.Waiting && x.WaitEvent == e.Name && x.DueAt > now)
                    .Select(x => new { x.Id, x.VersionId, x.CurrentNode }).ToListAsync(ct);
                var woken = new List<long>();
                foreach (var w in waiting)
                {
                    var filters = (await graphs.GetAsync(db, w.VersionId, ct)).EventFilters;
                    if (!filters.TryGetValue(w.CurrentNode, out var where) || JourneyEntries.Matches(where, properties)) woken.Add(w.Id);
                }
                if (woken.Count == 0) continue;
                // Still waiting on that event: a timeout that fired meanwhile has moved the instance on, and is left alone.
                await db.Set<JourneyInstance>()
                    .Where(x => woken.Contains(x.Id) && x.State == InstanceState.Waiting && x.WaitEvent == e.Name && x.DueAt > now)
                    .ExecuteUpdateAsync(s => s.SetProperty(x => x.EventArrived, true).SetProperty(x => x.DueAt, now), ct);
                services.GetRequiredService<JourneySignal>().Notify();
            }
        }
        var last = events[^1];
        return await db.Set<JourneyJob>().Where(j => j.Name == Name && j.LeaseOwner == opts.Node)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.PositionTx, last.TxId).SetProperty(j => j.PositionId, last.Id)
                .SetProperty(j => j.LeaseUntil, time.GetUtcNow().UtcDateTime + opts.Lease), ct) == 1 ? events.Count : 0;
    }
}

/// <summary>
/// Outbox domain events start journeys with a <c>domain_event</c> trigger of that type (e.g. <c>points.expiring</c>,
/// <c>tier.changed</c>, <c>segment.entered</c>), their filters applied to the event's payload (e.g. <c>segmentId</c>).
/// The payload's <c>profileId</c> is the customer; the entry key is the outbox message's id, so a redelivery enters nobody twice.
/// </summary>
internal sealed class DomainEventTrigger(MeridianDb db, JourneyGraphs graphs, JourneyEntries entries) : IEventSubscriber
{
    public string Name => "journeys";

    public async ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct) =>
        message.BrandId is { } brand && (await StartingAsync(brand, message, ct)).Count > 0 ? [""] : [];

    public async Task HandleAsync(OutboxMessage message, string target, CancellationToken ct)
    {
        if (message.BrandId is not { } brand) return;
        using var payload = JsonDocument.Parse(message.Payload);
        if (!payload.RootElement.TryGetProperty("profileId", out var p) || !p.TryGetInt64(out var profileId)) return;
        foreach (var (journey, _) in (await StartingAsync(brand, message, ct)).Where(j => JourneyEntries.Matches(j.Graph.Trigger.Where, payload.RootElement)))
            await entries.EnterAsync(journey, profileId, JourneyEntries.Key("outbox", message.Id), payload.RootElement, ct);
    }

    /// <summary>A brand's active journeys started by domain events, read once per scope (the dispatcher's scope is one batch of messages).</summary>
    private readonly Dictionary<long, List<(Journey Journey, JourneyGraph Graph)>> activeOf = [];

    private async Task<List<(Journey Journey, JourneyGraph Graph)>> StartingAsync(long brand, OutboxMessage message, CancellationToken ct)
    {
        if (!activeOf.TryGetValue(brand, out var active))
            activeOf[brand] = active = await ActiveJourneys.ListAsync(db, graphs, "domain_event", brand, ct);
        return active.Where(j => j.Graph.Trigger.Event == message.Type).ToList();
    }
}

/// <summary>
/// Date triggers (a birthday, an anniversary): once a day per journey, at the trigger's time of day in the brand's time
/// zone, lets in the customers whose date trait falls <c>daysBefore</c> days ahead (month and day; 29 February is
/// celebrated on the 28th in other years). The day run is kept per journey, with a lease, so each day runs once on one node
/// and a day missed while the server was down runs when it is back (on that day); each entry's key is the day.
/// </summary>
public sealed class DateTrigger(IServiceScopeFactory scopes, IOptions<JourneyOptions> options, TimeProvider time, ILogger<DateTrigger> logger) : BackgroundService
{
    private readonly JourneyOptions opts = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        await PeriodicWork.RunAsync("Journey date triggers", opts.DatePollInterval, time, logger, RunOnceAsync, stoppingToken);
    }

    /// <summary>Runs every date journey whose day has come and not run yet; returns how many customers entered.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<MeridianDb>();
        var entered = 0;
        foreach (var (journey, graph) in await ActiveJourneys.ListAsync(db, services.GetRequiredService<JourneyGraphs>(), "date", null, ct))
        {
            var zone = Offers.Claims.CouponIssuer.Zone(await db.Set<Brand>().AsNoTracking().Where(b => b.Id == journey.TenantId).Select(b => b.TimeZone).SingleAsync(ct));
            var now = time.GetUtcNow().UtcDateTime;
            var local = TimeZoneInfo.ConvertTimeFromUtc(now, zone);
            if (TimeOnly.FromDateTime(local) < graph.Trigger.At) continue;
            var day = local.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            var name = $"journey-date:{journey.Id}";
            if (!await JourneyJob.TakeLeaseAsync(db, name, opts.Node, opts.Lease, now, ct)) continue;
            if (await db.Set<JourneyJob>().AsNoTracking().Where(j => j.Name == name).Select(j => j.LastDay).SingleAsync(ct) == day) continue;
            entered += await EnterDayAsync(services, journey, graph, DateOnly.FromDateTime(local).AddDays(graph.Trigger.DaysBefore), day, ct);
            await db.Set<JourneyJob>().Where(j => j.Name == name && j.LeaseOwner == opts.Node).ExecuteUpdateAsync(s => s.SetProperty(j => j.LastDay, day), ct);
        }
        return entered;
    }

    private static async Task<int> EnterDayAsync(IServiceProvider services, Journey journey, JourneyGraph graph, DateOnly target, string day, CancellationToken ct)
    {
        var db = services.GetRequiredService<MeridianDb>();
        var entries = services.GetRequiredService<JourneyEntries>();
        var trait = graph.Trigger.Trait!;
        var quoted = JsonSerializer.Serialize(trait);
        var entered = 0;
        for (long after = 0; ;)
        {
            var page = await db.Set<Profile>().AsNoTracking()
                .Where(p => p.TenantId == journey.TenantId && p.MergedIntoId == null && p.ErasedAt == null && p.Id > after && p.Traits.Contains(quoted))
                .OrderBy(p => p.Id).Take(1000).Select(p => new { p.Id, p.Traits }).ToListAsync(ct);
            if (page.Count == 0) return entered;
            after = page[^1].Id;
            foreach (var profile in page)
            {
                if (DateOf(profile.Traits, trait) is not { } date || !Falls(date, target)) continue;
                var (outcome, _) = await entries.EnterAsync(journey, profile.Id, JourneyEntries.Key("date", day), null, ct);
                if (outcome == EntryOutcome.Entered) entered++;
            }
            db.ChangeTracker.Clear();
        }
    }

    /// <summary>Month and day of a date trait written as yyyy-MM-dd (or a longer ISO time), MM-dd or --MM-dd.</summary>
    public static (int Month, int Day)? DateOf(string traits, string name)
    {
        using var document = JsonDocument.Parse(traits);
        if (!document.RootElement.TryGetProperty(name, out var t) || !t.TryGetProperty("v", out var v) || v.ValueKind != JsonValueKind.String) return null;
        var text = v.GetString()!.TrimStart('-');
        if (text.Length >= 10 && DateOnly.TryParseExact(text[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var full)) return (full.Month, full.Day);
        return text.Length == 5 && DateOnly.TryParseExact("2000-" + text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var md) ? (md.Month, md.Day) : null;
    }

    private static bool Falls((int Month, int Day) date, DateOnly target) =>
        (date.Month == target.Month && date.Day == target.Day)
        || (date is (2, 29) && !DateTime.IsLeapYear(target.Year) && target is { Month: 2, Day: 28 });
}
