using Meridian.Audiences.Tags;

namespace Meridian.Audiences;

/// <summary>Audiences: tag groups and tags on customers, with their history (segments come next).</summary>
public static class AudiencesModule
{
    public static IHostApplicationBuilder AddAudiences(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<Tagging>();
        return builder;
    }

    public static IEndpointRouteBuilder MapAudiences(this IEndpointRouteBuilder app) => app.MapAudiencesRoutes();
}
