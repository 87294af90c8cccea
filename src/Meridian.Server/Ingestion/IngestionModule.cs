using Meridian.Ingestion.Import;
using Meridian.Ingestion.Sources;
using Meridian.Ingestion.Tracking;

namespace Meridian.Ingestion;

/// <summary>Ingestion: sources and write keys, the Segment-Spec tracking API, bulk import, rejects and per-source daily counts.</summary>
public static class IngestionModule
{
    public static IHostApplicationBuilder AddIngestion(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<WriteKeyStore>();
        builder.Services.AddSingleton<EventLogSignal>();
        builder.Services.AddScoped<EventLog>();
        builder.Services.AddScoped<EventStore>();
        builder.Services.AddOptions<IngestOptions>().BindConfiguration("Meridian:Ingestion");
        builder.Services.AddSingleton<IngestWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<IngestWriter>());
        builder.Services.AddImports();
        builder.Services.AddHostedService<ImportWorker>();
        return builder;
    }

    /// <summary>What running an import needs, in the server and in the CLI's tool host alike.</summary>
    internal static IServiceCollection AddImports(this IServiceCollection services)
    {
        services.AddOptions<ImportOptions>().BindConfiguration("Meridian:Import");
        services.AddSingleton<ImportProcessor>();
        services.AddSingleton<ImportSignal>();
        return services;
    }

    public static IEndpointRouteBuilder MapIngestion(this IEndpointRouteBuilder app) => app
        .MapSources()
        .MapTracking()
        .MapImports()
        .MapDataQuality();
}
