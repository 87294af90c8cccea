using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Login.SelfService;
using Meridian.Messaging.Channels;
using Meridian.Messaging.Data;
using Meridian.Messaging.Delivery;
using Meridian.Messaging.Templates;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Messaging;

public sealed record MessageTemplateDto(long Id, long BrandId, string Name, string Channel, string? Subject, string Body, IReadOnlyList<string> Variables,
    bool Archived, DateTime CreatedAt, DateTime UpdatedAt)
{
    internal static MessageTemplateDto From(MessageTemplate t) => new(t.Id, t.TenantId, t.Name, t.Channel, t.Subject, t.Body,
        new[] { t.Subject, t.Body }.Where(x => x is not null).SelectMany(x => TemplateText.Parse(x!).Template?.Variables.Select(v => v.Path) ?? []).Distinct().ToList(),
        t.Archived, t.CreatedAt, t.UpdatedAt);
}

public sealed record CreateMessageTemplateRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required, RegularExpression("^(sms|email|webhook|inbox)$", ErrorMessage = "Use sms, email, webhook or inbox.")] string Channel,
    [property: StringLength(500, MinimumLength = 1)] string? Subject,
    [property: Required, StringLength(20_000, MinimumLength = 1)] string Body);

public sealed record UpdateMessageTemplateRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: StringLength(500, MinimumLength = 1)] string? Subject,
    [property: Required, StringLength(20_000, MinimumLength = 1)] string Body);

public sealed record PreviewRequest([property: Required] long? ProfileId, JsonElement? Event);

public sealed record PreviewDto(string? Subject, string? Body, IReadOnlyList<string> Missing);

/// <summary>A message as staff see it; the rendered subject and body only with <c>pii.read</c> (they name the customer).</summary>
public sealed record MessageDto(long Id, long BrandId, long ProfileId, string Channel, long TemplateId, string Purpose, string Origin, MessageStatus Status,
    string? Reason, int Attempts, DateTime NextAttemptAt, DateTime CreatedAt, DateTime? SentAt, DateTime? DeliveredAt, DateTime? FailedAt, DateTime? ReadAt,
    string? Subject, string? Body)
{
    internal static MessageDto From(Message m, bool pii) => new(m.Id, m.TenantId, m.ProfileId, m.Channel, m.TemplateId, m.Purpose, m.Origin, m.Status,
        m.Reason, m.Attempts, m.NextAttemptAt, m.CreatedAt, m.SentAt, m.DeliveredAt, m.FailedAt, m.ReadAt, pii ? m.Subject : null, pii ? m.Body : null);
}

public sealed record SendMessageRequest(
    [property: Required] long? ProfileId,
    [property: Required, RegularExpression("^(sms|email|webhook|inbox)$", ErrorMessage = "Use sms, email, webhook or inbox.")] string Channel,
    [property: Required] long? TemplateId,
    [property: Required, RegularExpression("^(marketing|service)$", ErrorMessage = "Use marketing or service.")] string Purpose,
    JsonElement? Event);

public sealed record InboxItemDto(long Id, string? Subject, string? Body, DateTime? SentAt, DateTime? ReadAt);

public sealed record ChannelSettingsRequest([property: Required] JsonElement? Settings);

public sealed record ChannelSettingsDto(string Channel, JsonElement Settings, DateTime? UpdatedAt);

public sealed record QuietHoursDto(
    [property: Required, RegularExpression("^([01][0-9]|2[0-3]):[0-5][0-9]$", ErrorMessage = "A local time as HH:mm.")] string Start,
    [property: Required, RegularExpression("^([01][0-9]|2[0-3]):[0-5][0-9]$", ErrorMessage = "A local time as HH:mm.")] string End);

public sealed record MessagingPolicyRequest(QuietHoursDto? QuietHours, [property: Range(1, 1000)] int? MarketingCap, [property: Range(1, 365)] int? CapDays);

public sealed record MessagingPolicyDto(QuietHoursDto? QuietHours, int? MarketingCap, int CapDays, string TimeZone);

public sealed record SmsReceiptRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Id,
    [property: Required, RegularExpression("^(delivered|failed)$", ErrorMessage = "delivered or failed.")] string Status,
    [property: StringLength(500)] string? Error);

/// <summary>Templates, sending, message status, dead letters, channel settings and policy; the staff and customer inboxes; SMS receipts.</summary>
public static class MessagingEndpoints
{
    public const string IdempotencyHeader = "Idempotency-Key";

    public static IEndpointRouteBuilder MapMessagingRoutes(this IEndpointRouteBuilder app)
    {
        var messaging = app.MapGroup("/api/v1/messaging").WithTags("Messaging").RequireAuthorization(Permissions.MessagingRead);
        messaging.MapGet("/templates", Templates);
        messaging.MapPost("/templates", CreateTemplate).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        messaging.MapGet("/templates/{id}", Template);
        messaging.MapPut("/templates/{id}", UpdateTemplate).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        messaging.MapDelete("/templates/{id}", ArchiveTemplate).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        messaging.MapPost("/templates/{id}/preview", Preview).RequireAuthorization(Permissions.PiiRead).RequireBrand();
        messaging.MapPost("/messages", Send).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        messaging.MapGet("/messages", Messages);
        messaging.MapGet("/messages/{id}", MessageById);
        messaging.MapGet("/dead-letters", DeadLetters);
        messaging.MapPost("/dead-letters/{id}/retry", RetryDeadLetter).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        messaging.MapGet("/channels/{channel}", Channel).RequireBrand();
        messaging.MapPut("/channels/{channel}", SetChannel).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        messaging.MapGet("/policy", Policy).RequireBrand();
        messaging.MapPut("/policy", SetPolicy).RequireAuthorization(Permissions.MessagingWrite).RequireBrand();
        app.MapPost("/api/v1/messaging/receipts/sms/{brandId}", SmsReceipt).WithTags("Messaging").AllowAnonymous();

        app.MapGet("/api/v1/profiles/{id}/inbox", ProfileInbox).WithTags("Messaging").RequireAuthorization(Permissions.ProfilesRead);
        var me = app.MapCustomerGroup("/api/v1/me/inbox", "Customer self-service");
        me.MapGet("/", MyInbox);
        me.MapPost("/{id}/read", MarkRead);
        return app;
    }

    public static async Task<Ok<Page<MessageTemplateDto>>> Templates([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<MessageTemplate>().AsNoTracking().Where(t => t.Id > page.After).OrderBy(t => t.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(MessageTemplateDto.From).ToList(), t => t.Id));
    }

    public static async Task<Results<Ok<MessageTemplateDto>, ProblemHttpResult>> Template(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<MessageTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id, ct) is { } t
            ? TypedResults.Ok(MessageTemplateDto.From(t))
            : Problems.NotFound($"Template {id}");

    public static async Task<Results<Created<MessageTemplateDto>, ValidationProblem>> CreateTemplate(CreateMessageTemplateRequest request, MeridianDb db,
        TenantScope tenant, TemplateValues values, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (!MessageChannels.All.Contains(request.Channel)) return Problems.Validation("channel", $"One of: {string.Join(", ", MessageChannels.All)}.");
        if (await InvalidTextAsync(tenant.Brand, request.Channel, request.Subject, request.Body, values, ct) is { } invalid) return invalid;
        var now = time.GetUtcNow().UtcDateTime;
        var template = new MessageTemplate
        {
            TenantId = tenant.Brand, Name = request.Name.Trim(), Channel = request.Channel, Subject = request.Subject, Body = request.Body,
            CreatedAt = now, UpdatedAt = now,
        };
        db.Add(template);
        audit.Record(template.TenantId, () => new AuditChange("messaging.template-created", "message_template", template.Id, null, new { template.Name, template.Channel }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/messaging/templates/{template.Id}", MessageTemplateDto.From(template));
    }

    public static async Task<Results<Ok<MessageTemplateDto>, ValidationProblem, ProblemHttpResult>> UpdateTemplate(long id, UpdateMessageTemplateRequest request,
        MeridianDb db, TenantScope tenant, TemplateValues values, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var template = await db.Set<MessageTemplate>().SingleOrDefaultAsync(t => t.Id == id && t.TenantId == tenant.Brand, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        if (await InvalidTextAsync(tenant.Brand, template.Channel, request.Subject, request.Body, values, ct) is { } invalid) return invalid;
        template.Name = request.Name.Trim();
        template.Subject = request.Subject;
        template.Body = request.Body;
        template.UpdatedAt = time.GetUtcNow().UtcDateTime;
        audit.Record(template.TenantId, () => new AuditChange("messaging.template-changed", "message_template", template.Id, null, new { template.Name }));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(MessageTemplateDto.From(template));
    }

    /// <summary>Archived, not deleted: messages keep naming it; new sends with it are rejected.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> ArchiveTemplate(long id, MeridianDb db, TenantScope tenant, AuditLog audit, CancellationToken ct)
    {
        var template = await db.Set<MessageTemplate>().SingleOrDefaultAsync(t => t.Id == id && t.TenantId == tenant.Brand, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        template.Archived = true;
        audit.Record(template.TenantId, () => new AuditChange("messaging.template-archived", "message_template", template.Id, null, null));
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    /// <summary>Parse errors and unknown variables of the subject and body, as a 400 naming the field and the variable.</summary>
    private static async Task<ValidationProblem?> InvalidTextAsync(long brandId, string channel, string? subject, string body, TemplateValues values, CancellationToken ct)
    {
        if (channel == MessageChannels.Email && string.IsNullOrWhiteSpace(subject)) return Problems.Validation("subject", "An email template needs a subject.");
        var errors = new Dictionary<string, string[]>();
        foreach (var (field, text) in new[] { ("subject", subject), ("body", body) })
        {
            if (text is null) continue;
            var (parsed, error) = TemplateText.Parse(text);
            if (parsed is null)
            {
                errors[field] = [error!];
                continue;
            }
            var unknown = await values.UnknownAsync(brandId, parsed.Variables, ct);
            if (unknown.Count > 0) errors[field] = unknown.Select(v => $"Unknown variable '{v}'. {TemplateValues.Help}").ToArray();
        }
        return errors.Count > 0 ? Problems.Validation(errors) : null;
    }

    /// <summary>The template rendered for one customer now, with the variables that would make the send fail.</summary>
    public static async Task<Results<Ok<PreviewDto>, ValidationProblem, ProblemHttpResult>> Preview(long id, PreviewRequest request, MeridianDb db, TenantScope tenant,
        TemplateValues values, ProfileDirectory profiles, CancellationToken ct)
    {
        var template = await db.Set<MessageTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == id && t.TenantId == tenant.Brand, ct);
        if (template is null) return Problems.NotFound($"Template {id}");
        if (request.Event is { } e && e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null)) return Problems.Validation("event", "The event's properties as a JSON object.");
        if (await profiles.FindLiveAsync(request.ProfileId!.Value, ct) is not { } live || live.BrandId != tenant.Brand) return Problems.NotFound($"Profile {request.ProfileId}");
        var lookup = await values.ForAsync(tenant.Brand, live.ProfileId, request.Event is { ValueKind: JsonValueKind.Object } o ? o.GetRawText() : null, ct);
        var (body, missing) = TemplateText.Parse(template.Body).Template!.Render(lookup);
        var (subject, missingInSubject) = template.Subject is null ? (null, []) : TemplateText.Parse(template.Subject).Template!.Render(lookup);
        return TypedResults.Ok(new PreviewDto(subject, body, missingInSubject.Concat(missing).Distinct().ToList()));
    }

    /// <summary>
    /// Staff send one message (<c>Idempotency-Key</c> required): 202 with the queued message, 422 when it can never be
    /// sent. The key is the staff's own (stored as <c>api:{key}</c>, apart from the journeys' keys).
    /// </summary>
    public static async Task<Results<Accepted<MessageDto>, ValidationProblem, ProblemHttpResult>> Send(SendMessageRequest request, HttpContext http,
        MeridianDb db, TenantScope tenant, MessageDispatch dispatch, CancellationToken ct)
    {
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        if (key.Length is 0 or > 190) return Problems.Validation(IdempotencyHeader, "An Idempotency-Key header of 1 to 190 characters is required.");
        if (request.Event is { } e && e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null)) return Problems.Validation("event", "The event's properties as a JSON object.");
        var stored = "api:" + key;
        var earlier = await db.Set<Message>().AsNoTracking().SingleOrDefaultAsync(m => m.TenantId == tenant.Brand && m.IdempotencyKey == stored, ct);
        if (earlier is not null && (earlier.ProfileId, earlier.Channel, earlier.TemplateId, earlier.Purpose) != (request.ProfileId!.Value, request.Channel, request.TemplateId!.Value, request.Purpose))
            return TypedResults.Problem(statusCode: 422, type: ProblemTypes.IdempotencyKeyReused, title: "The Idempotency-Key was used for another request.",
                detail: $"Message {earlier.Id} was sent with this key to another customer, channel, template or purpose.");
        var outcome = await dispatch.SendAsync(new SendRequest(tenant.Brand, request.ProfileId!.Value, request.Channel, request.TemplateId!.Value, request.Purpose,
            stored, $"key:{http.Caller().KeyId}", request.Event is { ValueKind: JsonValueKind.Object } o ? o : null), ct);
        if (outcome.Status == SendStatus.Rejected)
            return TypedResults.Problem(statusCode: 422, type: ProblemTypes.BusinessRule, title: "The message cannot be sent.", detail: outcome.Reason,
                extensions: new Dictionary<string, object?> { ["messageId"] = outcome.MessageId });
        var message = await db.Set<Message>().AsNoTracking().SingleAsync(m => m.Id == outcome.MessageId, ct);
        return TypedResults.Accepted($"/api/v1/messaging/messages/{message.Id}", MessageDto.From(message, CanReadPii(http)));
    }

    public static async Task<Results<Ok<MessageDto>, ProblemHttpResult>> MessageById(long id, HttpContext http, MeridianDb db, CancellationToken ct) =>
        await db.Set<Message>().AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, ct) is { } m
            ? TypedResults.Ok(MessageDto.From(m, CanReadPii(http)))
            : Problems.NotFound($"Message {id}");

    /// <summary>Messages, oldest first; <c>status</c> (queued, sent, delivered, failed, suppressed, rejected) and <c>profileId</c> filter.</summary>
    public static async Task<Results<Ok<Page<MessageDto>>, ValidationProblem>> Messages([AsParameters] PageRequest page, long? profileId, string? status, HttpContext http,
        MeridianDb db, CancellationToken ct)
    {
        if (status is null) return await ListAsync(page, profileId, null, http, db, ct);
        if (!Enum.TryParse<MessageStatus>(status, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed) || status.Any(char.IsDigit))
            return Problems.Validation("status", "One of: queued, sent, delivered, failed, suppressed, rejected.");
        return await ListAsync(page, profileId, parsed, http, db, ct);
    }

    private static async Task<Ok<Page<MessageDto>>> ListAsync(PageRequest page, long? profileId, MessageStatus? status, HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var query = db.Set<Message>().AsNoTracking().Where(m => m.Id > page.After);
        if (profileId is { } p) query = query.Where(m => m.ProfileId == p);
        if (status is { } s) query = query.Where(m => m.Status == s);
        var rows = await query.OrderBy(m => m.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(m => MessageDto.From(m, CanReadPii(http))).ToList(), m => m.Id));
    }

    /// <summary>Messages that will not be sent because they failed (a permanent error, or retries exhausted), each with its reason.</summary>
    public static Task<Ok<Page<MessageDto>>> DeadLetters([AsParameters] PageRequest page, HttpContext http, MeridianDb db, CancellationToken ct) =>
        ListAsync(page, null, MessageStatus.Failed, http, db, ct);

    /// <summary>Queues a dead letter again (after the cause was fixed: a gateway set up, a template corrected), with its attempts reset.</summary>
    public static async Task<Results<Ok<MessageDto>, ProblemHttpResult>> RetryDeadLetter(long id, HttpContext http, MeridianDb db, TenantScope tenant,
        AuditLog audit, MessagingSignal signal, TimeProvider time, CancellationToken ct)
    {
        var message = await db.Set<Message>().SingleOrDefaultAsync(m => m.Id == id && m.TenantId == tenant.Brand, ct);
        if (message is null) return Problems.NotFound($"Message {id}");
        if (message.Status != MessageStatus.Failed) return Problems.Conflict($"Message {id} is {JsonNamingPolicy.SnakeCaseLower.ConvertName(message.Status.ToString())}, not a dead letter.");
        var requeued = await db.Set<Message>().Where(m => m.Id == id && m.Status == MessageStatus.Failed).ExecuteUpdateAsync(s => s
            .SetProperty(m => m.Status, MessageStatus.Queued)
            .SetProperty(m => m.Attempts, 0)
            .SetProperty(m => m.NextAttemptAt, time.GetUtcNow().UtcDateTime)
            .SetProperty(m => m.FailedAt, (DateTime?)null)
            .SetProperty(m => m.Reason, "Retried by staff after: " + (message.Reason ?? "")), ct);
        if (requeued == 0) return Problems.Conflict($"Message {id} was retried at the same moment by another request.");
        audit.Record(message.TenantId, () => new AuditChange("messaging.dead-letter-retried", "message", id, null, new { previousReason = message.Reason }));
        await db.SaveChangesAsync(ct);
        signal.Notify();
        var fresh = await db.Set<Message>().AsNoTracking().SingleAsync(m => m.Id == id, ct);
        return TypedResults.Ok(MessageDto.From(fresh, CanReadPii(http)));
    }

    public static async Task<Results<Ok<ChannelSettingsDto>, ProblemHttpResult>> Channel(string channel, MeridianDb db, TenantScope tenant,
        IEnumerable<IMessageChannel> channels, CancellationToken ct)
    {
        if (channels.FirstOrDefault(c => c.Name == channel) is not { } known) return Problems.NotFound($"Channel '{channel}'");
        var row = await db.Set<ChannelSettings>().AsNoTracking().SingleOrDefaultAsync(s => s.TenantId == tenant.Brand && s.Channel == channel, ct);
        var settings = row is null ? JsonSerializer.SerializeToElement(new { }) : JsonDocument.Parse(row.Config).RootElement.Clone();
        return TypedResults.Ok(new ChannelSettingsDto(channel, ChannelSettingsJson.WithMasked(settings, known.Secrets), row?.UpdatedAt));
    }

    /// <summary>Replaces the brand's settings of a channel; a secret left out keeps its current value, so staff never need to see it again.</summary>
    public static async Task<Results<Ok<ChannelSettingsDto>, ValidationProblem, ProblemHttpResult>> SetChannel(string channel, ChannelSettingsRequest request,
        MeridianDb db, TenantScope tenant, IEnumerable<IMessageChannel> channels, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (channels.FirstOrDefault(c => c.Name == channel) is not { } known) return Problems.NotFound($"Channel '{channel}'");
        if (request.Settings is not { ValueKind: JsonValueKind.Object } given) return Problems.Validation("settings", "The channel's settings as a JSON object.");
        var row = await db.Set<ChannelSettings>().SingleOrDefaultAsync(s => s.TenantId == tenant.Brand && s.Channel == channel, ct);
        var merged = System.Text.Json.Nodes.JsonNode.Parse(given.GetRawText())!.AsObject();
        var previous = row is null ? default : JsonDocument.Parse(row.Config).RootElement;
        foreach (var secret in known.Secrets)
            if (!merged.ContainsKey(secret) && ChannelSettingsJson.String(previous, secret) is { } kept) merged[secret] = kept;
        var settings = JsonSerializer.SerializeToElement(merged);
        if (known.Invalid(settings) is { } invalid) return Problems.Validation("settings", invalid);
        var config = settings.GetRawText();
        if (config.Length > 10_000) return Problems.Validation("settings", "At most 10,000 characters of settings.");
        var now = time.GetUtcNow().UtcDateTime;
        if (row is null) db.Add(row = new ChannelSettings { TenantId = tenant.Brand, Channel = channel, Config = config, UpdatedAt = now });
        else
        {
            row.Config = config;
            row.UpdatedAt = now;
        }
        audit.Record(tenant.Brand, () => new AuditChange("messaging.channel-changed", "messaging_channel", row.Id, null, ChannelSettingsJson.WithMasked(settings, known.Secrets)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new ChannelSettingsDto(channel, ChannelSettingsJson.WithMasked(settings, known.Secrets), now));
    }

    public static async Task<Ok<MessagingPolicyDto>> Policy(MeridianDb db, TenantScope tenant, CancellationToken ct)
    {
        var policy = await db.Set<MessagingPolicy>().AsNoTracking().SingleOrDefaultAsync(p => p.TenantId == tenant.Brand, ct);
        var zone = await db.Set<Brand>().AsNoTracking().Where(b => b.Id == tenant.Brand).Select(b => b.TimeZone).SingleAsync(ct);
        return TypedResults.Ok(PolicyDto(policy ?? new MessagingPolicy { TenantId = tenant.Brand }, zone));
    }

    public static async Task<Ok<MessagingPolicyDto>> SetPolicy(MessagingPolicyRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var policy = await db.Set<MessagingPolicy>().SingleOrDefaultAsync(p => p.TenantId == tenant.Brand, ct);
        if (policy is null) db.Add(policy = new MessagingPolicy { TenantId = tenant.Brand });
        policy.QuietStartMinute = Minute(request.QuietHours?.Start);
        policy.QuietEndMinute = Minute(request.QuietHours?.End);
        policy.MarketingCap = request.MarketingCap;
        policy.CapDays = request.CapDays ?? 7;
        policy.UpdatedAt = time.GetUtcNow().UtcDateTime;
        var zone = await db.Set<Brand>().AsNoTracking().Where(b => b.Id == tenant.Brand).Select(b => b.TimeZone).SingleAsync(ct);
        var dto = PolicyDto(policy, zone);
        audit.Record(tenant.Brand, () => new AuditChange("messaging.policy-changed", "messaging_policy", policy.Id, null, dto));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(dto);
    }

    private static int? Minute(string? hhmm) => hhmm is null ? null : int.Parse(hhmm[..2], System.Globalization.CultureInfo.InvariantCulture) * 60 + int.Parse(hhmm[3..], System.Globalization.CultureInfo.InvariantCulture);

    private static MessagingPolicyDto PolicyDto(MessagingPolicy p, string zone) => new(
        p.QuietStartMinute is null || p.QuietEndMinute is null ? null : new QuietHoursDto(QuietHours.Format(p.QuietStartMinute), QuietHours.Format(p.QuietEndMinute)),
        p.MarketingCap, p.CapDays, zone);

    /// <summary>
    /// The SMS gateway reports what became of a message (<c>id</c>: the id it answered with, or our <c>msg_{id}</c>
    /// reference), authenticated with the brand's gateway token as a bearer token.
    /// </summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> SmsReceipt(long brandId, SmsReceiptRequest request, HttpContext http, MeridianDb db,
        TenantScope tenant, TimeProvider time, CancellationToken ct)
    {
        tenant.RunAsSystem();
        var config = await db.Set<ChannelSettings>().AsNoTracking().Where(s => s.TenantId == brandId && s.Channel == MessageChannels.Sms).Select(s => s.Config).SingleOrDefaultAsync(ct);
        var token = config is null ? null : ChannelSettingsJson.String(JsonDocument.Parse(config).RootElement, "token");
        var given = http.Request.Headers.Authorization.ToString();
        if (token is null || !given.StartsWith("Bearer ", StringComparison.Ordinal)
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given["Bearer ".Length..]), Encoding.UTF8.GetBytes(token)))
            return TypedResults.Problem(statusCode: 401, type: ProblemTypes.Unauthorized, title: "Authentication is required.",
                detail: "Send the brand's SMS gateway token as 'Authorization: Bearer <token>'.");
        var messages = db.Set<Message>().Where(m => m.TenantId == brandId && m.Channel == MessageChannels.Sms && m.ExternalId == request.Id && m.Status == MessageStatus.Sent);
        var now = time.GetUtcNow().UtcDateTime;
        var changed = request.Status == "delivered"
            ? await messages.ExecuteUpdateAsync(s => s.SetProperty(m => m.Status, MessageStatus.Delivered).SetProperty(m => m.DeliveredAt, now), ct)
            : await messages.ExecuteUpdateAsync(s => s.SetProperty(m => m.Status, MessageStatus.Failed).SetProperty(m => m.FailedAt, now)
                .SetProperty(m => m.Reason, "The SMS gateway reported the message undelivered: " + (request.Error ?? "no reason given")), ct);
        if (changed == 0 && !await db.Set<Message>().AnyAsync(m => m.TenantId == brandId && m.Channel == MessageChannels.Sms && m.ExternalId == request.Id, ct))
            return Problems.NotFound($"SMS message '{request.Id}'");
        return TypedResults.NoContent();
    }

    public static async Task<Results<Ok<List<InboxItemDto>>, ProblemHttpResult>> ProfileInbox(long id, HttpContext http, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        if (await profiles.FindLiveAsync(id, ct) is not { } live) return Problems.NotFound($"Profile {id}");
        return TypedResults.Ok(await InboxAsync(db, await profiles.WithMergedAsync(live.ProfileId, ct), CanReadPii(http), ct));
    }

    public static async Task<Results<Ok<List<InboxItemDto>>, ProblemHttpResult>> MyInbox(ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles, CancellationToken ct)
    {
        if (await SelfServiceEndpoints.AccountAsync(user, db, ct) is not { } account) return Problems.NotFound("Your account");
        return TypedResults.Ok(await InboxAsync(db, await profiles.WithMergedAsync(account.ProfileId, ct), pii: true, ct));
    }

    public static async Task<Results<Ok<InboxItemDto>, ProblemHttpResult>> MarkRead(long id, ClaimsPrincipal user, MeridianDb db, ProfileDirectory profiles,
        TimeProvider time, CancellationToken ct)
    {
        if (await SelfServiceEndpoints.AccountAsync(user, db, ct) is not { } account) return Problems.NotFound("Your account");
        var mine = await profiles.WithMergedAsync(account.ProfileId, ct);
        var message = await db.Set<Message>().SingleOrDefaultAsync(m => m.Id == id && m.Channel == MessageChannels.Inbox && mine.Contains(m.ProfileId)
            && (m.Status == MessageStatus.Sent || m.Status == MessageStatus.Delivered), ct);
        if (message is null) return Problems.NotFound($"Inbox message {id}");
        message.ReadAt ??= time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new InboxItemDto(message.Id, message.Subject, message.Body, message.SentAt, message.ReadAt));
    }

    /// <summary>The customer's in-app messages, newest first (the latest 200).</summary>
    private static Task<List<InboxItemDto>> InboxAsync(MeridianDb db, List<long> profileIds, bool pii, CancellationToken ct) =>
        db.Set<Message>().AsNoTracking()
            .Where(m => profileIds.Contains(m.ProfileId) && m.Channel == MessageChannels.Inbox && (m.Status == MessageStatus.Sent || m.Status == MessageStatus.Delivered))
            .OrderByDescending(m => m.SentAt).ThenByDescending(m => m.Id).Take(200)
            .Select(m => new InboxItemDto(m.Id, pii ? m.Subject : null, pii ? m.Body : null, m.SentAt, m.ReadAt)).ToListAsync(ct);

    private static bool CanReadPii(HttpContext http) => http.Caller().Permissions.Contains(Permissions.PiiRead);
}
