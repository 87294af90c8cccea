using Meridian.Ingestion.Sources;
using Meridian.Ingestion.Tracking;

namespace Meridian.Ingestion;

/// <summary>Ingestion: sources and write keys, the Segment-Spec tracking API, rejects and per-source daily counts.</summary>
public static class IngestionModule
{
    public static IHostApplicationBuilder AddIngestion(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<WriteKeyStore>();
        builder.Services.AddSingleton<EventLogSignal>();
        builder.Services.AddScoped<EventLog>();
        builder.Services.AddScoped<EventStore>();
        return builder;
    }

    public static IEndpointRouteBuilder MapIngestion(this IEndpointRouteBuilder app) => app
        .MapSources()
        .MapTracking()
        .MapDataQuality();
}
