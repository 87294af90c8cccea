using Meridian.Loyalty.Expiry;
using Meridian.Loyalty.Ledger;

namespace Meridian.Loyalty;

/// <summary>Loyalty: programmes, tiers, members and the points ledger (lots with expiry, idempotent postings).</summary>
public static class LoyaltyModule
{
    public static IHostApplicationBuilder AddLoyalty(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<PointsLedger>();
        builder.Services.AddScoped<IdempotentPosting>();
        builder.Services.AddOptions<ExpiryOptions>().BindConfiguration("Meridian:Loyalty:Expiry");
        builder.Services.AddSingleton<PointsExpiryJob>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PointsExpiryJob>());
        return builder;
    }

    public static IEndpointRouteBuilder MapLoyalty(this IEndpointRouteBuilder app) => app.MapLoyaltyRoutes();
}
