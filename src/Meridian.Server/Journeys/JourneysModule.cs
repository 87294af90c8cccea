using Meridian.Journeys.Engine;
using Meridian.Journeys.Triggers;
using Meridian.Platform.Outbox;

namespace Meridian.Journeys;

/// <summary>
/// Journeys: versioned graphs of triggers, waits, branches and actions, run by a leased worker over instances kept in the
/// database (<c>Meridian:Journeys</c> sets its poll, lease, batch and retries).
/// </summary>
public static class JourneysModule
{
    public static IHostApplicationBuilder AddJourneys(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<JourneyOptions>().BindConfiguration("Meridian:Journeys");
        services.AddSingleton<JourneySignal>();
        services.AddSingleton<JourneyGraphs>();
        services.AddScoped<JourneyEntries>();
        services.AddScoped<JourneyActions>();
        services.AddScoped<IEventSubscriber, DomainEventTrigger>();
        services.AddHttpClient(JourneyActions.HttpClientName, c => c.Timeout = TimeSpan.FromSeconds(10));
        services.AddSingleton<JourneyWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<JourneyWorker>());
        services.AddSingleton<EventTrigger>();
        services.AddHostedService(sp => sp.GetRequiredService<EventTrigger>());
        services.AddSingleton<DateTrigger>();
        services.AddHostedService(sp => sp.GetRequiredService<DateTrigger>());
        return builder;
    }

    public static IEndpointRouteBuilder MapJourneys(this IEndpointRouteBuilder app) => app.MapJourneysRoutes();
}
