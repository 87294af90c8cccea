using Meridian.Audiences.Tags;

namespace Meridian.Audiences;

/// <summary>Audiences: tag groups and tags on customers, with their history and segments with materialised, continuously maintained membership.</summary>
public static class AudiencesModule
{
    public static IHostApplicationBuilder AddAudiences(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<Tagging>();
        builder.Services.AddScoped<Segments.SegmentEvaluator>();
        builder.Services.AddScoped<Segments.SegmentMembership>();
        builder.Services.AddScoped<SegmentMembers>();
        builder.Services.AddSingleton<Segments.SegmentSignal>();
        builder.Services.AddScoped<Platform.Outbox.IEventSubscriber, Segments.SegmentInputs>();
        builder.Services.AddOptions<Segments.SegmentMaintenanceOptions>().BindConfiguration("Meridian:Audiences:Segments");
        builder.Services.AddSingleton<Segments.SegmentMaintenance>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Segments.SegmentMaintenance>());
        return builder;
    }

    public static IEndpointRouteBuilder MapAudiences(this IEndpointRouteBuilder app) => app.MapAudiencesRoutes();
}
