using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Meridian.Audiences.Data;
using Meridian.Audiences.Tags;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Journeys.Graph;
using Meridian.Loyalty.Data;
using Meridian.Loyalty.Ledger;
using Meridian.Messaging;
using Meridian.Offers.Claims;
using Meridian.Offers.Data;
using Meridian.Platform.Tenancy;
using Meridian.Platform.Webhooks;
using Meridian.Profiles;
using Meridian.Profiles.Data;
using Meridian.Service;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Journeys.Engine;

/// <summary>What an action did: done (go on), worth retrying (an outage), or refused for good (take the failure edge).</summary>
public sealed record ActionOutcome(bool Done, bool Retry, string? Detail)
{
    public static ActionOutcome Ok(string? detail = null) => new(true, false, detail);
    public static ActionOutcome Later(string reason) => new(false, true, reason);
    public static ActionOutcome Refused(string reason) => new(false, false, reason);
}

/// <summary>
/// The action nodes, each done by the module that owns the effect, each under the instance's action key
/// (<see cref="RunningInstance.ActionKey"/>: journey, instance, node and step) so that running the step again, after a
/// crash or on another node, finds the first effect instead of making a second: the coupon's issue key, the ledger's
/// source key, the message's idempotency key, the webhook's id. Tags and traits are set, not added, so repeating is harmless.
/// </summary>
public sealed class JourneyActions(MeridianDb db, ProfileDirectory profiles, CouponIssuer coupons, PointsLedger ledger, Loyalty.Members.MemberLinks members,
    Tagging tagging, ServiceDesk desk, MessageDispatch messages, ProfileSteward steward, IHttpClientFactory clients, TimeProvider time)
{
    public const string HttpClientName = "journeys";

    public async Task<ActionOutcome> RunAsync(RunningInstance i, JourneyNode node, CancellationToken ct)
    {
        if (await profiles.FindLiveAsync(i.ProfileId, ct) is not { } live) return ActionOutcome.Refused("The customer's profile no longer exists.");
        var profileId = live.ProfileId;
        var key = i.ActionKey;
        var by = $"journey:{i.JourneyId}";
        return node.Type switch
        {
            NodeKinds.SendMessage => await SendMessageAsync(i, profileId, node, key, ct),
            NodeKinds.IssueCoupon => await IssueCouponAsync(i.TenantId, profileId, node.Long("templateId")!.Value, key, ct),
            NodeKinds.AwardPoints => await AwardPointsAsync(i.TenantId, profileId, node.Long("points")!.Value, key, by, ct),
            NodeKinds.AddTag or NodeKinds.RemoveTag => await TagAsync(i.TenantId, profileId, node.Long("tagId")!.Value, node.Type == NodeKinds.AddTag, by, ct),
            NodeKinds.UpdateTrait => await UpdateTraitAsync(profileId, node.Text("trait")!, node.Element("value")!.Value, by, ct),
            NodeKinds.Webhook => await WebhookAsync(i, profileId, node, key, ct),
            NodeKinds.OpenTicket => await OpenTicketAsync(i, profileId, node, key, ct),
            _ => ActionOutcome.Refused($"The {node.Type} action is not available in this build."),
        };
    }

    /// <summary>
    /// Hands the message to Messaging, which records it once per key and delivers it later: consent, quiet hours and caps are
    /// checked at send time there, so a queued or suppressed message lets the customer go on; one that can never be sent
    /// (unknown template, wrong channel) takes the failure edge.
    /// </summary>
    private async Task<ActionOutcome> SendMessageAsync(RunningInstance i, long profileId, JourneyNode node, string key, CancellationToken ct)
    {
        var context = JsonNode.Parse(i.Context)!.AsObject();
        JsonElement? properties = context["event"] is JsonObject e ? JsonDocument.Parse(e.ToJsonString()).RootElement.Clone() : null;
        var outcome = await messages.SendAsync(new SendRequest(i.TenantId, profileId, node.Text("channel")!, node.Long("templateId")!.Value,
            node.Text("purpose") ?? "marketing", key, $"journey:{i.JourneyId}/node:{node.Id}", properties), ct);
        return outcome.Status == SendStatus.Rejected
            ? ActionOutcome.Refused($"message rejected: {outcome.Reason}")
            : ActionOutcome.Ok($"message {outcome.MessageId} {JsonNamingPolicy.SnakeCaseLower.ConvertName(outcome.Status.ToString())}");
    }

    private async Task<ActionOutcome> IssueCouponAsync(long brand, long profileId, long templateId, string key, CancellationToken ct)
    {
        if (await IssuedAsync(brand, key, ct) is { } earlier) return earlier;
        var plan = (await coupons.PlanAsync([templateId], ct)).GetValueOrDefault(templateId);
        try
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var result = await coupons.IssueAsync(new IssueOrder(brand, templateId, profileId, "journey", key, null), plan, Instants.Now(time), ct);
            if (result.Coupon is not { } coupon) return ActionOutcome.Refused($"coupon not issued: {JsonNamingPolicy.SnakeCaseLower.ConvertName(result.Outcome.ToString())}");
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
            return ActionOutcome.Ok($"coupon {coupon.Id}");
        }
        catch (Exception ex) when (ProblemExceptionHandler.IsUniqueViolation(ex))
        {
            // The same step ran on another node meanwhile and issued first.
            db.ChangeTracker.Clear();
            return await IssuedAsync(brand, key, ct) ?? throw new InvalidOperationException("A coupon issue key conflicted but no coupon carries it.", ex);
        }
    }

    private async Task<ActionOutcome?> IssuedAsync(long brand, string key, CancellationToken ct) =>
        await db.Set<OfferCoupon>().AsNoTracking().Where(c => c.TenantId == brand && c.IssueKey == key).Select(c => (long?)c.Id).SingleOrDefaultAsync(ct) is { } id
            ? ActionOutcome.Ok($"coupon {id}")
            : null;

    private async Task<ActionOutcome> AwardPointsAsync(long brand, long profileId, long points, string key, string by, CancellationToken ct)
    {
        var memberId = (await members.AtBrandAsync(brand, profileId, ct))?.Id;
        if (memberId is null) return ActionOutcome.Refused("The customer is no member of the brand's loyalty programme.");
        try
        {
            var entry = await ledger.At(brand).EarnAsync(memberId.Value, points, by, ct, rule: "journey", sourceKey: key);
            return entry is null ? ActionOutcome.Refused("The ledger credited nothing.") : ActionOutcome.Ok($"ledger entry {entry.Id}");
        }
        catch (BusinessRuleException refused)
        {
            return ActionOutcome.Refused(refused.Message);
        }
    }

    private async Task<ActionOutcome> TagAsync(long brand, long profileId, long tagId, bool add, string by, CancellationToken ct)
    {
        var tag = await db.Set<Tag>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == tagId && t.TenantId == brand, ct);
        if (tag is null) return ActionOutcome.Refused($"The brand has no tag {tagId}.");
        var group = await db.GroupOfAsync(brand, ct);
        if (add) await tagging.AddAsync(tag, group, [profileId], by, null, ct);
        else await tagging.RemoveAsync(tag, group, await profiles.WithMergedAsync(profileId, ct), by, null, ct);
        return ActionOutcome.Ok();
    }

    private async Task<ActionOutcome> UpdateTraitAsync(long profileId, string trait, JsonElement value, string by, CancellationToken ct)
    {
        var profile = await db.Set<Profile>().SingleAsync(p => p.Id == profileId, ct);
        await steward.WriteTraitsAsync(profile, [new(trait, value)], by, ct);
        await db.SaveChangesAsync(ct);
        return ActionOutcome.Ok();
    }

    /// <summary>Opens a service ticket in the node's queue; the service desk assigns it to an agent of that queue at once (or when one is free).</summary>
    private async Task<ActionOutcome> OpenTicketAsync(RunningInstance i, long profileId, JourneyNode node, string key, CancellationToken ct)
    {
        var result = await desk.OpenTicketAsync(new TicketRequest(i.TenantId, profileId, node.Text("subject")!, node.Text("note"), node.Text("queue"), key,
            $"journey:{i.JourneyId}/node:{node.Id}"), ct);
        return result.Ticket is { } ticket
            ? ActionOutcome.Ok($"ticket {ticket.Id}" + (ticket.AgentId is { } agent ? $" assigned to agent {agent}" : $" waiting in queue {ticket.Queue}"))
            : ActionOutcome.Refused("The customer's profile was not found by the service desk.");
    }

    /// <summary>
    /// POSTs the step to the node's URL, signed as Meridian's webhooks are (<c>webhook-id</c>, <c>webhook-timestamp</c>,
    /// <c>webhook-signature</c>: HMAC-SHA256 of id.timestamp.body). The id is the action key: a receiver that keeps the ids
    /// it has seen acts once, however often a crash makes the step repeat. A non-2xx answer or no answer is retried.
    /// </summary>
    private async Task<ActionOutcome> WebhookAsync(RunningInstance i, long profileId, JourneyNode node, string key, CancellationToken ct)
    {
        var context = JsonNode.Parse(i.Context)!.AsObject();
        var body = new JsonObject
        {
            ["id"] = key, ["journeyId"] = i.JourneyId, ["instanceId"] = i.Id, ["node"] = node.Id, ["profileId"] = profileId,
            ["event"] = context["event"]?.DeepClone(), ["data"] = node.Element("data") is { } data ? JsonNode.Parse(data.GetRawText()) : null,
        }.ToJsonString();
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, node.Text("url")) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("webhook-id", key);
        request.Headers.Add("webhook-timestamp", timestamp);
        request.Headers.Add("webhook-signature", "v1," + WebhookSubscriber.Sign(node.Text("secret")!, $"{key}.{timestamp}.{body}"));
        try
        {
            using var response = await clients.CreateClient(HttpClientName).SendAsync(request, ct);
            return response.IsSuccessStatusCode ? ActionOutcome.Ok($"HTTP {(int)response.StatusCode}") : ActionOutcome.Later($"the endpoint answered {(int)response.StatusCode}");
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return ActionOutcome.Later($"the endpoint could not be reached: {ex.GetType().Name}");
        }
    }
}
