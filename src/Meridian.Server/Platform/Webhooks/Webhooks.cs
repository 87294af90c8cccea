using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Platform.Webhooks;

/// <summary>An HTTPS endpoint of the customer's that receives the brand's domain events, signed.</summary>
public sealed class WebhookEndpoint : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Url { get; set; }
    public string Description { get; set; } = "";
    /// <summary>Event types to send; empty means all.</summary>
    public List<string> EventTypes { get; set; } = [];
    /// <summary>The HMAC secret (<c>whsec_...</c>): it must be readable to sign, so it is stored as is.</summary>
    public required string Secret { get; init; }
    public bool Enabled { get; set; } = true;
    public DateTime CreatedAt { get; init; }

    public bool Wants(string eventType) => Enabled && (EventTypes.Count == 0 || EventTypes.Contains(eventType));
}

internal sealed class WebhookEndpointMap : IEntityTypeConfiguration<WebhookEndpoint>
{
    public void Configure(EntityTypeBuilder<WebhookEndpoint> b)
    {
        b.ToTable("webhook_endpoints");
        b.HasIndex(x => x.TenantId);
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.Property(x => x.Url).HasMaxLength(2000);
        b.Property(x => x.Description).HasMaxLength(500);
        b.Property(x => x.Secret).HasMaxLength(100);
    }
}

/// <summary>
/// Sends each event to every enabled endpoint of its brand that wants it, one delivery per endpoint, following the
/// Standard Webhooks conventions: <c>webhook-id</c> (stable across retries, for the receiver to deduplicate),
/// <c>webhook-timestamp</c> and <c>webhook-signature</c> (<c>v1,</c> + base64 HMAC-SHA256 of <c>id.timestamp.body</c>).
/// </summary>
internal sealed class WebhookSubscriber(MeridianDb db, IHttpClientFactory clients, TimeProvider time) : IEventSubscriber
{
    public const string HttpClientName = "webhooks";
    public string Name => "webhooks";

    /// <summary>A brand's enabled endpoints, read once per scope (the dispatcher's scope is one batch of messages).</summary>
    private readonly Dictionary<long, List<WebhookEndpoint>> endpointsOf = [];

    public async ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct)
    {
        if (message.BrandId is not { } brand) return [];
        if (!endpointsOf.TryGetValue(brand, out var endpoints))
            endpointsOf[brand] = endpoints = await db.Set<WebhookEndpoint>().AsNoTracking().Where(w => w.TenantId == brand && w.Enabled).ToListAsync(ct);
        return endpoints.Where(w => w.Wants(message.Type)).Select(w => w.Id.ToString(CultureInfo.InvariantCulture)).ToList();
    }

    public async Task HandleAsync(OutboxMessage message, string target, CancellationToken ct)
    {
        var endpointId = long.Parse(target, CultureInfo.InvariantCulture);
        var endpoint = await db.Set<WebhookEndpoint>().AsNoTracking().SingleOrDefaultAsync(w => w.Id == endpointId, ct);
        if (endpoint is null || !endpoint.Enabled) return; // deleted or disabled since: nothing to send

        var id = $"evt_{message.Id}";
        var body = $$"""{"id":"{{id}}","type":"{{message.Type}}","occurredAt":"{{message.OccurredAt:O}}","brandId":{{message.BrandId}},"data":{{message.Payload}}}""";
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint.Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("webhook-id", id);
        request.Headers.Add("webhook-timestamp", timestamp);
        request.Headers.Add("webhook-signature", "v1," + Sign(endpoint.Secret, $"{id}.{timestamp}.{body}"));
        using var response = await clients.CreateClient(HttpClientName).SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"The endpoint answered {(int)response.StatusCode}.");
    }

    public static string Sign(string secret, string content)
    {
        var key = Convert.FromBase64String(secret.StartsWith("whsec_", StringComparison.Ordinal) ? secret["whsec_".Length..] : secret);
        return Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(content)));
    }
}

public sealed record WebhookEndpointDto(long Id, long BrandId, string Url, string Description, IReadOnlyList<string> EventTypes, bool Enabled, DateTime CreatedAt)
{
    public static WebhookEndpointDto From(WebhookEndpoint w) => new(w.Id, w.TenantId, w.Url, w.Description, w.EventTypes, w.Enabled, w.CreatedAt);
}

public sealed record CreatedWebhookEndpointDto(WebhookEndpointDto Endpoint, string Secret);

public sealed record CreateWebhookEndpointRequest(
    [property: Required, Url, StringLength(2000)] string Url,
    [property: StringLength(500)] string? Description,
    List<string>? EventTypes);

public sealed record UpdateWebhookEndpointRequest([property: Url, StringLength(2000)] string? Url, [property: StringLength(500)] string? Description, List<string>? EventTypes, bool? Enabled);

public sealed record WebhookDeliveryDto(long Id, long EventId, string EventType, DeliveryStatus Status, int Attempts, DateTime NextAttemptAt, DateTime? DeliveredAt, string? LastError);

public static class WebhooksEndpoints
{
    public static IEndpointRouteBuilder MapWebhooks(this IEndpointRouteBuilder app)
    {
        var hooks = app.MapGroup("/api/v1/webhooks").WithTags("Webhooks").RequireAuthorization(Permissions.WebhooksManage);
        hooks.MapGet("/", List);
        hooks.MapGet("/{id}", Get);
        hooks.MapPost("/", Create).RequireBrand();
        hooks.MapPatch("/{id}", Update);
        hooks.MapDelete("/{id}", Delete);
        hooks.MapGet("/{id}/deliveries", Deliveries);
        return app;
    }

    public static async Task<Ok<Page<WebhookEndpointDto>>> List([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<WebhookEndpoint>().Where(w => w.Id > page.After).OrderBy(w => w.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(WebhookEndpointDto.From).ToList(), w => w.Id));
    }

    public static async Task<Results<Ok<WebhookEndpointDto>, ProblemHttpResult>> Get(long id, MeridianDb db, CancellationToken ct) =>
        await db.Set<WebhookEndpoint>().SingleOrDefaultAsync(w => w.Id == id, ct) is { } w
            ? TypedResults.Ok(WebhookEndpointDto.From(w))
            : Problems.NotFound($"Webhook endpoint {id}");

    private static ValidationProblem? InvalidUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http"
            ? null
            : Problems.Validation("url", "Use an absolute http or https URL.");

    public static async Task<Results<Created<CreatedWebhookEndpointDto>, ValidationProblem>> Create(
        CreateWebhookEndpointRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        if (InvalidUrl(request.Url) is { } invalid) return invalid;
        var endpoint = new WebhookEndpoint
        {
            TenantId = tenant.Brand,
            Url = request.Url,
            Description = request.Description ?? "",
            EventTypes = request.EventTypes ?? [],
            Secret = "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)),
            CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(endpoint);
        audit.Record(endpoint.TenantId, () => new AuditChange("webhook.created", "webhook", endpoint.Id, null, WebhookEndpointDto.From(endpoint)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/webhooks/{endpoint.Id}", new CreatedWebhookEndpointDto(WebhookEndpointDto.From(endpoint), endpoint.Secret));
    }

    public static async Task<Results<Ok<WebhookEndpointDto>, ValidationProblem, ProblemHttpResult>> Update(
        long id, UpdateWebhookEndpointRequest request, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var endpoint = await db.Set<WebhookEndpoint>().SingleOrDefaultAsync(w => w.Id == id, ct);
        if (endpoint is null) return Problems.NotFound($"Webhook endpoint {id}");
        if (request.Url is { } url && InvalidUrl(url) is { } invalid) return invalid;
        var before = WebhookEndpointDto.From(endpoint);
        endpoint.Url = request.Url ?? endpoint.Url;
        endpoint.Description = request.Description ?? endpoint.Description;
        endpoint.EventTypes = request.EventTypes ?? endpoint.EventTypes;
        endpoint.Enabled = request.Enabled ?? endpoint.Enabled;
        audit.Record(endpoint.TenantId, () => new AuditChange("webhook.updated", "webhook", endpoint.Id, before, WebhookEndpointDto.From(endpoint)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(WebhookEndpointDto.From(endpoint));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(long id, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var endpoint = await db.Set<WebhookEndpoint>().SingleOrDefaultAsync(w => w.Id == id, ct);
        if (endpoint is null) return Problems.NotFound($"Webhook endpoint {id}");
        db.Remove(endpoint);
        audit.Record(endpoint.TenantId, () => new AuditChange("webhook.deleted", "webhook", id, WebhookEndpointDto.From(endpoint), null));
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    public static async Task<Results<Ok<Page<WebhookDeliveryDto>>, ProblemHttpResult>> Deliveries(
        long id, [AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        if (!await db.Set<WebhookEndpoint>().AnyAsync(w => w.Id == id, ct)) return Problems.NotFound($"Webhook endpoint {id}");
        var target = id.ToString(CultureInfo.InvariantCulture);
        var rows = await (from d in db.Set<OutboxDelivery>()
                          join m in db.Set<OutboxMessage>() on d.MessageId equals m.Id
                          where d.Subscriber == "webhooks" && d.Target == target && d.Id > page.After
                          orderby d.Id
                          select new WebhookDeliveryDto(d.Id, m.Id, m.Type, d.Status, d.Attempts, d.NextAttemptAt, d.DeliveredAt, d.LastError))
            .Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows, d => d.Id));
    }
}
