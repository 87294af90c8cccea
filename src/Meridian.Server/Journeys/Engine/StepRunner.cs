using System.Globalization;
using System.Text.Json.Nodes;
using Meridian.Audiences.Segments;
using Meridian.Data;
using Meridian.Journeys.Data;
using Meridian.Journeys.Graph;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Journeys.Engine;

/// <summary>
/// Moves one claimed instance through its graph, node by node, until it waits (a timer in the future) or ends. Flow nodes
/// decide where to go; action nodes call <see cref="JourneyActions"/>. A failed action is tried again after a back-off
/// (the instance stays at the node, due later) and after the last try takes the node's failure edge, or fails the instance.
/// </summary>
public sealed class StepRunner(MeridianDb db, SegmentEvaluator segments, ProfileDirectory profiles, JourneyActions actions, TimeProvider time,
    JourneyOptions opts)
{
    private readonly Dictionary<long, TimeZoneInfo> zones = [];

    public async Task RunAsync(RunningInstance i, JourneyGraph graph, CancellationToken ct)
    {
        for (var moves = 0; moves < opts.MaxStepsPerClaim; moves++)
        {
            var now = time.GetUtcNow().UtcDateTime;
            if (i.State is not (InstanceState.Active or InstanceState.Waiting) || i.DueAt > now) return;
            var at = graph.Nodes[i.CurrentNode];
            switch (at.Type)
            {
                case NodeKinds.Wait:
                    if (i.State == InstanceState.Waiting) Leave(i, graph, "next", null, now);
                    else Wait(i, now + graph.Durations[at.Id]);
                    break;
                case NodeKinds.WaitUntil:
                    if (i.State == InstanceState.Waiting) Leave(i, graph, "next", null, now);
                    else if (Until(at, await ZoneAsync(i.TenantId, ct), now) is { } until && until > now) Wait(i, until);
                    else Leave(i, graph, "next", "the date had passed", now);
                    break;
                case NodeKinds.WaitEvent:
                    if (i.State == InstanceState.Waiting)
                    {
                        var arrived = i.EventArrived;
                        (i.WaitEvent, i.EventArrived) = (null, false);
                        Leave(i, graph, arrived ? "event" : "timeout", null, now);
                    }
                    else
                    {
                        i.WaitEvent = at.Text("event");
                        i.EventArrived = false;
                        Wait(i, now + graph.Durations[at.Id]);
                    }
                    break;
                case NodeKinds.Condition:
                    var live = await profiles.FindLiveAsync(i.ProfileId, ct);
                    var holds = live is { } p && await segments.ContainsAsync(i.TenantId, graph.Rules[at.Id], p.ProfileId, ct);
                    Leave(i, graph, holds ? "true" : "false", null, now);
                    break;
                case NodeKinds.Split:
                    var branch = Choose(graph.Branches[at.Id]);
                    var context = JsonNode.Parse(i.Context)!.AsObject();
                    if (context["splits"] is not JsonObject splits) context["splits"] = splits = [];
                    splits[at.Id] = branch;
                    i.Context = context.ToJsonString();
                    Leave(i, graph, branch, branch, now);
                    break;
                case NodeKinds.Goal:
                    Finish(i, InstanceState.Converted, "converted", null, now);
                    break;
                case NodeKinds.Exit:
                    Finish(i, InstanceState.Completed, "exited", null, now);
                    break;
                default:
                    var outcome = await actions.RunAsync(i, at, ct);
                    now = time.GetUtcNow().UtcDateTime;
                    if (outcome.Done) Leave(i, graph, "next", outcome.Detail, now);
                    else if (outcome.Retry && i.Attempts + 1 < opts.MaxAttempts)
                    {
                        i.Attempts++;
                        i.DueAt = now + opts.RetryBase * Math.Pow(2, i.Attempts - 1);
                        SetError(i, outcome.Detail);
                    }
                    else Fail(i, graph, outcome.Detail ?? "failed", now);
                    break;
            }
        }
    }

    private static void Wait(RunningInstance i, DateTime until)
    {
        i.State = InstanceState.Waiting;
        i.DueAt = until;
    }

    private void Leave(RunningInstance i, JourneyGraph graph, string exit, string? detail, DateTime now)
    {
        i.Log.Add((i.Step, i.CurrentNode, "passed", detail, now));
        if (graph.Next(i.CurrentNode, exit) is { } to) MoveTo(i, to, now);
        else End(i, InstanceState.Completed, now);
    }

    private void Fail(RunningInstance i, JourneyGraph graph, string reason, DateTime now)
    {
        i.Log.Add((i.Step, i.CurrentNode, "failed", Trim(reason), now));
        SetError(i, reason);
        if (graph.Next(i.CurrentNode, "failure") is { } to) MoveTo(i, to, now);
        else End(i, InstanceState.Failed, now);
    }

    private void Finish(RunningInstance i, InstanceState state, string outcome, string? detail, DateTime now)
    {
        i.Log.Add((i.Step, i.CurrentNode, outcome, detail, now));
        End(i, state, now);
    }

    private static void MoveTo(RunningInstance i, string to, DateTime now)
    {
        i.CurrentNode = to;
        i.Step++;
        i.State = InstanceState.Active;
        i.DueAt = now;
        i.Attempts = 0;
    }

    private static void End(RunningInstance i, InstanceState state, DateTime now)
    {
        i.Step++;
        i.State = state;
        i.DueAt = null;
        i.FinishedAt = now;
    }

    private static void SetError(RunningInstance i, string? error)
    {
        var context = JsonNode.Parse(i.Context)!.AsObject();
        context["error"] = Trim(error);
        i.Context = context.ToJsonString();
    }

    private static string? Trim(string? text) => text is { Length: > 1000 } ? text[..1000] : text;

    /// <summary>A branch drawn by the percents; the choice is kept in the instance's context and the step log.</summary>
    private static string Choose(IReadOnlyList<(string Name, int Percent)> branches)
    {
        var roll = Random.Shared.Next(100);
        foreach (var (name, percent) in branches)
        {
            if (roll < percent) return name;
            roll -= percent;
        }
        return branches[^1].Name;
    }

    /// <summary>When a wait_until node lets the customer go on: the next such time of day, or the date, in the brand's zone.</summary>
    public static DateTime? Until(JourneyNode at, TimeZoneInfo zone, DateTime now)
    {
        var local = TimeZoneInfo.ConvertTimeFromUtc(now, zone);
        DateTime target;
        if (at.Text("date") is { } date)
            target = DateTime.ParseExact(date, ["yyyy-MM-dd", "yyyy-MM-ddTHH:mm"], CultureInfo.InvariantCulture, DateTimeStyles.None);
        else
        {
            var timeOfDay = TimeOnly.ParseExact(at.Text("time")!, "HH:mm", CultureInfo.InvariantCulture);
            target = local.Date + timeOfDay.ToTimeSpan();
            if (target <= local) target = target.AddDays(1);
        }
        // A local time skipped by a daylight-saving jump is taken an hour later.
        if (zone.IsInvalidTime(target)) target = target.AddHours(1);
        return TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(target, DateTimeKind.Unspecified), zone);
    }

    private async Task<TimeZoneInfo> ZoneAsync(long brandId, CancellationToken ct)
    {
        if (zones.TryGetValue(brandId, out var zone)) return zone;
        var id = await db.Set<Brand>().AsNoTracking().Where(b => b.Id == brandId).Select(b => b.TimeZone).SingleAsync(ct);
        return zones[brandId] = Offers.Claims.CouponIssuer.Zone(id);
    }
}
