namespace Meridian.Service;

/// <summary>Service desk: agents in queues and customer tickets assigned to them (the CRM's service app will extend it).</summary>
public static class ServiceModule
{
    public static IHostApplicationBuilder AddService(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<ServiceDesk>();
        return builder;
    }

    public static IEndpointRouteBuilder MapService(this IEndpointRouteBuilder app) => app.MapServiceRoutes();
}
