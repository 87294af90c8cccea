using Meridian.Loyalty.Batches;
using Meridian.Loyalty.Expiry;
using Meridian.Loyalty.Ledger;
using Meridian.Loyalty.Members;
using Meridian.Loyalty.Orders;
using Meridian.Loyalty.Pending;
using Meridian.Loyalty.Rewards;
using Meridian.Loyalty.Tiers;
using Microsoft.Extensions.Options;

namespace Meridian.Loyalty;

/// <summary>
/// <c>Meridian:Loyalty:Expiry</c>, <c>Meridian:Loyalty:Release</c>, <c>Meridian:Loyalty:TierReview</c> and <c>Meridian:Loyalty:Orders</c>: how often a background job of the module looks
/// for work, and the lease that keeps other nodes out meanwhile (renewed as it goes; taken over once it lapses).
/// </summary>
public sealed class LoyaltyJobOptions
{
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(1);
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);
    public int BatchSize { get; set; } = 500;
    public bool Enabled { get; set; } = true;
    public string? NodeName { get; set; }
    public string Node => NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";
}

/// <summary>Loyalty: programmes, tiers, members and the points ledger (lots with expiry, idempotent postings).</summary>
public static class LoyaltyModule
{
    public static IHostApplicationBuilder AddLoyalty(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<PointsLedger>();
        builder.Services.AddScoped<Earning.CampaignSegments>();
        builder.Services.AddScoped<BatchEarning>();
        builder.Services.AddScoped<BatchExpiry>();
        builder.Services.AddSingleton<ProgrammeRules>();
        builder.Services.AddScoped<TierStanding>();
        builder.Services.AddScoped<MemberBenefits>();
        builder.Services.AddScoped<MemberWallet>();
        builder.Services.AddScoped<MemberLinks>();
        builder.Services.AddScoped<OrderPoints>();
        builder.Services.AddScoped<RewardRedemption>();
        builder.Services.AddScoped<IdempotentPosting>();
        AddJob<PointsExpiryJob>(builder.Services, PointsExpiryJob.JobName, "Meridian:Loyalty:Expiry", _ => { });
        AddJob<PointsReleaseJob>(builder.Services, PointsReleaseJob.JobName, "Meridian:Loyalty:Release", _ => { });
        AddJob<TierReviewJob>(builder.Services, TierReviewJob.JobName, "Meridian:Loyalty:TierReview", o => o.PollInterval = TimeSpan.FromMinutes(10));
        AddJob<OrderEarning>(builder.Services, OrderEarning.Name, "Meridian:Loyalty:Orders", o =>
        {
            o.PollInterval = TimeSpan.FromSeconds(1);
            o.Lease = TimeSpan.FromSeconds(30);
        });
        return builder;
    }

    public static IEndpointRouteBuilder MapLoyalty(this IEndpointRouteBuilder app) => app.MapLoyaltyRoutes();

    private static void AddJob<TJob>(IServiceCollection services, string name, string section, Action<LoyaltyJobOptions> defaults) where TJob : class, IHostedService
    {
        services.AddOptions<LoyaltyJobOptions>(name).Configure(defaults).BindConfiguration(section);
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<TJob>(sp, sp.GetRequiredService<IOptionsMonitor<LoyaltyJobOptions>>().Get(name)));
        services.AddHostedService(sp => sp.GetRequiredService<TJob>());
    }
}
