using Meridian.Messaging.Channels;
using Meridian.Messaging.Delivery;
using Meridian.Messaging.Templates;

namespace Meridian.Messaging;

/// <summary>
/// Messaging: templates, <see cref="MessageDispatch"/> (what journeys and staff call to send), the leased delivery worker
/// that decides consent, quiet hours and caps at send time, and the channels (SMS gateway, email over SMTP, signed webhook, in-app inbox).
/// </summary>
public static class MessagingModule
{
    public static IHostApplicationBuilder AddMessaging(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<MessageDeliveryOptions>().BindConfiguration("Meridian:Messaging:Delivery");
        services.AddSingleton<MessagingSignal>();
        services.AddSingleton<MessageDispatch>();
        services.AddScoped<TemplateValues>();
        services.AddHttpClient<SmsGateway>(c => c.Timeout = TimeSpan.FromSeconds(10));
        services.AddSingleton<IMessageChannel, SmsChannel>();
        services.AddSingleton<IMessageChannel, InboxChannel>();
        services.AddSingleton<IMessageChannel, EmailChannel>();
        services.AddSingleton<IMessageChannel, WebhookChannel>();
        services.AddSingleton<MessageDelivery>();
        services.AddHostedService(sp => sp.GetRequiredService<MessageDelivery>());
        return builder;
    }

    public static IEndpointRouteBuilder MapMessaging(this IEndpointRouteBuilder app) => app.MapMessagingRoutes();
}
