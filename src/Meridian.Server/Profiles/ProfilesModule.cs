using Meridian.Profiles.Identity;
using Meridian.Profiles.Scoring;

namespace Meridian.Profiles;

/// <summary>Profiles: ID-Mapping over the event log, the unified profile and its lookup by any identifier.</summary>
public static class ProfilesModule
{
    public static IHostApplicationBuilder AddProfiles(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<ProfileSteward>();
        builder.Services.AddScoped<ProfileViews>();
        builder.Services.AddSingleton<IdentifierRules>();
        builder.Services.AddScoped<ProfileDirectory>();
        builder.Services.AddOptions<LifecycleThresholds>().BindConfiguration("Meridian:Profiles:Lifecycle");
        builder.Services.AddOptions<ProjectorOptions>().BindConfiguration("Meridian:Profiles:Projector");
        builder.Services.AddSingleton<ProfilesResolvedSignal>();
        builder.Services.AddSingleton<ProfileProjector>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ProfileProjector>());
        builder.Services.AddSingleton<Ingestion.Tracking.IPacedFollower, ResolutionPace>();
        builder.Services.AddOptions<ScoringOptions>().BindConfiguration("Meridian:Profiles:Scoring");
        builder.Services.AddSingleton<ProfileScorer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ProfileScorer>());
        return builder;
    }

    public static IEndpointRouteBuilder MapProfiles(this IEndpointRouteBuilder app) => app.MapProfileRoutes();
}
