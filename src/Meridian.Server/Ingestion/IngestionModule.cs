using Meridian.Ingestion.Sources;

namespace Meridian.Ingestion;

/// <summary>Ingestion: sources and their write keys now; the tracking API, import and rejected events come next.</summary>
public static class IngestionModule
{
    public static IHostApplicationBuilder AddIngestion(this IHostApplicationBuilder builder) => builder;

    public static IEndpointRouteBuilder MapIngestion(this IEndpointRouteBuilder app) => app.MapSources();
}
