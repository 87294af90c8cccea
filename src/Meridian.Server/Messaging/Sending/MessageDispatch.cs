using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Messaging.Data;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Messaging;

/// <summary>A request to send one templated message to one customer (the contract journeys call).</summary>
public sealed record SendRequest(long TenantId, long ProfileId, string Channel /* "sms" | "email" | "webhook" | "inbox" */,
    long TemplateId, string Purpose /* consent purpose: "marketing" | "service" */, string IdempotencyKey /* unique per brand */,
    string Origin /* e.g. "journey:12/v3/node:welcome" */, JsonElement? Event = null /* triggering event's properties */);

public enum SendStatus { Queued, Suppressed, Rejected }

public sealed record SendOutcome(SendStatus Status, long? MessageId, string? Reason);

/// <summary>The channels and consent purposes a message can have.</summary>
public static class MessageChannels
{
    public const string Sms = "sms";
    public const string Email = "email";
    public const string Webhook = "webhook";
    public const string Inbox = "inbox";
    public static readonly string[] All = [Sms, Email, Webhook, Inbox];
    public static readonly string[] Purposes = ["marketing", "service"];
}

/// <summary>
/// Records a message to send (committed at once, in its own unit of work, whatever the caller's context holds) and
/// leaves delivery to <see cref="Delivery.MessageDelivery"/>. Idempotent per brand and key: a repeated request returns
/// the first outcome and creates nothing. <see cref="SendStatus.Rejected"/> means it can never be sent (unknown template,
/// profile not found, channel mismatch); consent, quiet hours and caps are decided at send time, not here.
/// </summary>
public sealed class MessageDispatch(IServiceScopeFactory scopes, TimeProvider time, MessagingSignal signal)
{
    public async Task<SendOutcome> SendAsync(SendRequest request, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(request.IdempotencyKey);
        if (request.IdempotencyKey.Length > 200) throw new ArgumentException("An idempotency key has at most 200 characters.", nameof(request));
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        if (await ExistingAsync(db, request.TenantId, request.IdempotencyKey, ct) is { } first) return first;

        var reason = await RejectionAsync(db, scope.ServiceProvider.GetRequiredService<ProfileDirectory>(), request, ct);
        var now = time.GetUtcNow().UtcDateTime;
        var message = new Message
        {
            TenantId = request.TenantId,
            ProfileId = request.ProfileId,
            Channel = Truncate(request.Channel, 16),
            TemplateId = request.TemplateId,
            Purpose = Truncate(request.Purpose, 32),
            IdempotencyKey = request.IdempotencyKey,
            Origin = Truncate(request.Origin ?? "", 200),
            Event = request.Event is { ValueKind: JsonValueKind.Object } e ? e.GetRawText() : null,
            Status = reason is null ? MessageStatus.Queued : MessageStatus.Rejected,
            Reason = reason,
            NextAttemptAt = now,
            CreatedAt = now,
        };
        db.Add(message);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (Exception ex) when (ProblemExceptionHandler.IsUniqueViolation(ex))
        {
            // The same request raced this one and committed first: its outcome is the answer.
            db.ChangeTracker.Clear();
            if (await ExistingAsync(db, request.TenantId, request.IdempotencyKey, ct) is { } raced) return raced;
            throw;
        }
        if (reason is null) signal.Notify();
        return Outcome(message.Id, message.Status == MessageStatus.Rejected, reason);
    }

    private static string Truncate(string value, int length) => value.Length <= length ? value : value[..length];

    private static SendOutcome Outcome(long id, bool rejected, string? reason) =>
        rejected ? new SendOutcome(SendStatus.Rejected, id, reason) : new SendOutcome(SendStatus.Queued, id, null);

    private static async Task<SendOutcome?> ExistingAsync(MeridianDb db, long tenantId, string key, CancellationToken ct) =>
        await db.Set<Message>().AsNoTracking().Where(m => m.TenantId == tenantId && m.IdempotencyKey == key)
            .Select(m => new { m.Id, m.Status, m.Reason }).SingleOrDefaultAsync(ct) is { } m
            ? Outcome(m.Id, m.Status == MessageStatus.Rejected, m.Status == MessageStatus.Rejected ? m.Reason : null)
            : null;

    private static async Task<string?> RejectionAsync(MeridianDb db, ProfileDirectory profiles, SendRequest request, CancellationToken ct)
    {
        if (!await db.Set<Brand>().AnyAsync(b => b.Id == request.TenantId, ct)) throw new ArgumentException($"No brand {request.TenantId}.", nameof(request));
        if (!MessageChannels.All.Contains(request.Channel)) return $"Unknown channel '{request.Channel}'; one of: {string.Join(", ", MessageChannels.All)}.";
        if (!MessageChannels.Purposes.Contains(request.Purpose)) return $"Unknown purpose '{request.Purpose}'; one of: {string.Join(", ", MessageChannels.Purposes)}.";
        var template = await db.Set<MessageTemplate>().AsNoTracking().Where(t => t.Id == request.TemplateId && t.TenantId == request.TenantId)
            .Select(t => new { t.Channel, t.Archived }).SingleOrDefaultAsync(ct);
        if (template is null) return $"Template {request.TemplateId} does not exist in this brand.";
        if (template.Archived) return $"Template {request.TemplateId} is archived.";
        if (template.Channel != request.Channel) return $"Template {request.TemplateId} is for {template.Channel}, not {request.Channel}.";
        if (await profiles.FindLiveAsync(request.ProfileId, ct) is not { } live || live.BrandId != request.TenantId)
            return $"Profile {request.ProfileId} does not exist in this brand.";
        return null;
    }
}

/// <summary>Wakes this node's delivery worker when a message is queued here.</summary>
public sealed class MessagingSignal : WorkSignal;
