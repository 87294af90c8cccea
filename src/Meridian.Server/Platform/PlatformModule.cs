using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Bootstrap;
using Meridian.Platform.CustomFields;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Platform.Webhooks;

namespace Meridian.Platform;

/// <summary>Platform: tenants (group and brands), staff access, audit log, outbox and webhooks.</summary>
public static class PlatformModule
{
    public static IHostApplicationBuilder AddPlatform(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddScoped<AuditLog>();
        services.AddScoped<EventPublisher>();
        services.AddScoped<CustomFieldCatalog>();
        services.AddOptions<OutboxOptions>().BindConfiguration("Meridian:Outbox");
        services.AddOptions<BootstrapOptions>().BindConfiguration("Meridian:Bootstrap");
        services.AddHostedService<OutboxDispatcher>();
        services.AddScoped<IEventSubscriber, WebhookSubscriber>();
        services.AddHttpClient(WebhookSubscriber.HttpClientName, c => c.Timeout = TimeSpan.FromSeconds(10));
        return builder;
    }

    public static IEndpointRouteBuilder MapPlatform(this IEndpointRouteBuilder app) => app
        .MapBrands()
        .MapAccess()
        .MapAudit()
        .MapWebhooks()
        .MapCustomFields();
}
