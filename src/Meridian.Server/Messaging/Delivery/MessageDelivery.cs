using System.Data.Common;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Messaging.Channels;
using Meridian.Messaging.Data;
using Meridian.Messaging.Templates;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Messaging.Delivery;

/// <summary><c>Meridian:Messaging:Delivery</c>.</summary>
public sealed class MessageDeliveryOptions
{
    /// <summary>How often to look for due messages when nothing queued on this node has signalled.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>How long a claimed message stays with its node before another may take it over.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(60);
    public int BatchSize { get; set; } = 50;
    /// <summary>Messages of a batch sent at the same time (gateways answer slowly; the database is not the limit).</summary>
    public int Concurrency { get; set; } = 8;
    /// <summary>Send attempts before a message becomes a dead letter.</summary>
    public int MaxAttempts { get; set; } = 5;
    /// <summary>The wait after the first failed attempt; it doubles with each further one (at most an hour).</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromSeconds(30);
    public bool Enabled { get; set; } = true;
    public string? NodeName { get; set; }
    public string Node => NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";
}

/// <summary>
/// Sends queued messages. Each is claimed with a lease (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL), so nodes share the
/// work and never send one twice at the same time; its outcome is written only while the lease is still this node's.
/// Everything about the customer is decided now, at send time: the profile still exists, consent for the channel and
/// purpose (the latest change), quiet hours (marketing waits for them to end), the template rendered with the
/// profile as it is now, and the marketing frequency cap counted under the customer's cap lock.
/// </summary>
public sealed class MessageDelivery(IServiceScopeFactory scopes, IOptions<MessageDeliveryOptions> options, MessagingSignal signal, TimeProvider time,
    IEnumerable<IMessageChannel> channels, ILogger<MessageDelivery> logger) : BackgroundService
{
    private MessageDeliveryOptions Opts => options.Value;
    private readonly Dictionary<string, IMessageChannel> byName = channels.ToDictionary(c => c.Name);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Opts.Enabled) return;
        await Hosting.PeriodicWork.RunSignalledAsync("Message delivery", signal, Opts.PollInterval, logger, async ct => await RunOnceAsync(ct) > 0, stoppingToken);
    }

    /// <summary>Claims the due messages (one batch) and delivers them; returns how many it claimed.</summary>
    internal async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var claimed = await ClaimAsync(ct);
        await Parallel.ForEachAsync(claimed, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Opts.Concurrency), CancellationToken = ct },
            async (id, token) => await DeliverAsync(id, token));
        return claimed.Count;
    }

    private async Task<List<long>> ClaimAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var now = time.GetUtcNow().UtcDateTime;
        var skipLocked = db.Database.IsNpgsql() ? "FOR UPDATE SKIP LOCKED" : "";
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.CommandText = $"""
            UPDATE messaging_messages
               SET lease_owner = @owner, lease_until = @until
             WHERE id IN (SELECT id FROM messaging_messages
                           WHERE status = 0 AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
                           ORDER BY next_attempt_at, id LIMIT @limit {skipLocked})
               AND status = 0 AND (lease_until IS NULL OR lease_until < @now)
            RETURNING id
            """;
        command.AddParameter("@owner", Opts.Node);
        command.AddParameter("@until", now + Opts.Lease);
        command.AddParameter("@now", now);
        command.AddParameter("@limit", Opts.BatchSize);
        var ids = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids;
    }

    private async Task DeliverAsync(long id, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var message = await db.Set<Message>().AsNoTracking().SingleAsync(m => m.Id == id, ct);
        try
        {
            await DecideAndSendAsync(scope.ServiceProvider, db, message, ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            // Our own failure (database, bug): treated as a failed attempt, so it is retried and in the end dead-lettered.
            logger.LogWarning("Delivery of message {MessageId} failed with {Error}", id, ex.GetType().Name);
            Attempted(message, ChannelResult.Retry($"Meridian failed while sending ({ex.GetType().Name})."));
        }
        var m = message;
        var written = await db.Set<Message>().Where(x => x.Id == id && x.LeaseOwner == Opts.Node).ExecuteUpdateAsync(s => s
            .SetProperty(x => x.Status, m.Status)
            .SetProperty(x => x.Reason, m.Reason)
            .SetProperty(x => x.Attempts, m.Attempts)
            .SetProperty(x => x.NextAttemptAt, m.NextAttemptAt)
            .SetProperty(x => x.Subject, m.Subject)
            .SetProperty(x => x.Body, m.Body)
            .SetProperty(x => x.ExternalId, m.ExternalId)
            .SetProperty(x => x.SentAt, m.SentAt)
            .SetProperty(x => x.FailedAt, m.FailedAt)
            .SetProperty(x => x.CappedAt, m.CappedAt)
            .SetProperty(x => x.LeaseOwner, (string?)null)
            .SetProperty(x => x.LeaseUntil, (DateTime?)null), ct);
        if (written == 0) logger.LogWarning("Message {MessageId}: the lease lapsed before its outcome was written; another node owns it now", id);
    }

    private async Task DecideAndSendAsync(IServiceProvider services, MeridianDb db, Message m, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var profiles = services.GetRequiredService<ProfileDirectory>();
        if (!byName.TryGetValue(m.Channel, out var channel))
        {
            Finish(m, MessageStatus.Failed, $"This build has no '{m.Channel}' channel.");
            return;
        }
        if (await profiles.FindLiveAsync(m.ProfileId, ct) is not { } live || live.BrandId != m.TenantId)
        {
            Finish(m, MessageStatus.Suppressed, "The customer's profile no longer exists (erased).");
            return;
        }
        var settings = await db.Set<ChannelSettings>().AsNoTracking().Where(s => s.TenantId == m.TenantId && s.Channel == m.Channel)
            .Select(s => s.Config).SingleOrDefaultAsync(ct) is { } config ? JsonDocument.Parse(config).RootElement.Clone() : default;

        if (await ConsentRefusalAsync(profiles, live.ProfileId, channel.ConsentChannel(settings), m.Purpose, ct) is { } refusal)
        {
            Finish(m, MessageStatus.Suppressed, refusal);
            return;
        }
        var brand = await db.Set<Brand>().AsNoTracking().SingleAsync(b => b.Id == m.TenantId, ct);
        var policy = await db.Set<MessagingPolicy>().AsNoTracking().SingleOrDefaultAsync(p => p.TenantId == m.TenantId, ct);
        if (m.Purpose == "marketing" && policy is not null && QuietHours.EndOf(policy, brand.TimeZone, now) is { } quietEnd)
        {
            m.NextAttemptAt = quietEnd;
            m.Reason = $"Waiting for the brand's quiet hours to end ({quietEnd:yyyy-MM-ddTHH:mm}Z).";
            return;
        }

        var template = await db.Set<MessageTemplate>().AsNoTracking().SingleOrDefaultAsync(t => t.Id == m.TemplateId && t.TenantId == m.TenantId, ct);
        if (template is null)
        {
            Finish(m, MessageStatus.Failed, $"Template {m.TemplateId} no longer exists.");
            return;
        }
        var values = await services.GetRequiredService<TemplateValues>().ForAsync(m.TenantId, live.ProfileId, m.Event, ct);
        var (body, missing) = TemplateText.Parse(template.Body).Template!.Render(values);
        var (subject, missingInSubject) = template.Subject is null ? (null, []) : TemplateText.Parse(template.Subject).Template!.Render(values);
        missing.AddRange(missingInSubject.Except(missing));
        if (body is null || missing.Count > 0)
        {
            Finish(m, MessageStatus.Failed, $"No value and no default for this customer: {string.Join(", ", missing)}.");
            return;
        }

        string? to = null;
        if (channel.AddressType is { } type)
        {
            var held = await profiles.IdentifiersOfAsync([live.ProfileId], [type], pii: true, ct);
            to = held[live.ProfileId].GetValueOrDefault(type)?.LastOrDefault();
            if (to is null)
            {
                Finish(m, MessageStatus.Failed, $"The customer has no {type} identifier.");
                return;
            }
        }
        if (channel.Invalid(settings) is { } invalid)
        {
            Finish(m, MessageStatus.Failed, $"The brand's {m.Channel} channel is not set up: {invalid}");
            return;
        }

        if (m.Purpose == "marketing" && policy?.MarketingCap is { } cap && m.CappedAt is null)
        {
            if (await FrequencyCaps.TryCountAsync(db, await profiles.WithMergedAsync(live.ProfileId, ct), live.ProfileId, m, cap, policy.CapDays, Opts.Node, now, ct) is { } capped)
            {
                Finish(m, MessageStatus.Suppressed, capped);
                return;
            }
            m.CappedAt = now;
        }

        m.Subject = subject;
        m.Body = body;
        var result = await channel.SendAsync(new Outgoing(m.Id, m.TenantId, brand.Slug, live.ProfileId, to, subject, body, settings), ct);
        Attempted(m, result);
    }

    private static async Task<string?> ConsentRefusalAsync(ProfileDirectory profiles, long profileId, string channel, string purpose, CancellationToken ct)
    {
        var latest = (await profiles.ConsentsAsync(profileId, ct)).FirstOrDefault(c => c.Channel == channel && c.Purpose == purpose);
        if (latest is { Granted: false }) return $"The customer withdrew {channel} consent for {purpose} ({latest.ChangedAt:yyyy-MM-dd}).";
        // Marketing needs an explicit grant; service messages (an order, a password) go unless the customer said no.
        if (latest is null && purpose == "marketing") return $"No {channel} consent for marketing is recorded for the customer.";
        return null;
    }

    private void Attempted(Message m, ChannelResult result)
    {
        var now = time.GetUtcNow().UtcDateTime;
        m.Attempts++;
        if (result.Sent)
        {
            m.Status = MessageStatus.Sent;
            m.SentAt = now;
            m.ExternalId = result.ExternalId;
            m.Reason = null;
            return;
        }
        if (result.Permanent || m.Attempts >= Opts.MaxAttempts)
        {
            Finish(m, MessageStatus.Failed, result.Permanent ? result.Error : $"Gave up after {m.Attempts} attempts; the last: {result.Error}");
            return;
        }
        m.Reason = result.Error;
        m.NextAttemptAt = now + Backoff(m.Attempts);
    }

    private TimeSpan Backoff(int attempts) =>
        TimeSpan.FromTicks((long)Math.Min(TimeSpan.FromHours(1).Ticks, Opts.RetryBackoff.Ticks * Math.Pow(2, attempts - 1)));

    private void Finish(Message m, MessageStatus status, string? reason)
    {
        m.Status = status;
        m.Reason = reason is { Length: > 1000 } ? reason[..1000] : reason;
        if (status == MessageStatus.Failed) m.FailedAt = time.GetUtcNow().UtcDateTime;
    }
}
