using Meridian.Loyalty;
using Meridian.Offers.Claims;
using Meridian.Offers.Codes;
using Meridian.Offers.Cart;
using Meridian.Offers.Expiry;
using Meridian.Offers.Groups;
using Meridian.Offers.Redemption;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Meridian.Offers;

/// <summary>Offers: coupon templates, codes, claims and issues that never exceed stock or limits, cart validation, redemption.</summary>
public static class OffersModule
{
    public static IHostApplicationBuilder AddOffers(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<CouponIssuer>();
        builder.Services.AddScoped<CustomerCoupons>();
        builder.Services.AddScoped<CodeBatches>();
        builder.Services.AddScoped<Redemptions>();
        builder.Services.AddScoped<GroupCoupons>();
        builder.Services.AddScoped<SegmentConditions>();
        builder.Services.AddSingleton<ParsedTemplates>();
        builder.Services.TryAddScoped<MemberTiers>();
        builder.Services.AddOptions<ClaimOptions>().BindConfiguration("Meridian:Offers:Claims");
        builder.Services.AddOptions<CodeGuessingOptions>().BindConfiguration("Meridian:Offers:CodeGuessing");
        builder.Services.AddOptions<CouponExpiryOptions>().BindConfiguration("Meridian:Offers:Expiry");
        builder.Services.AddSingleton<CodeGuard>();
        builder.Services.AddSingleton<ClaimWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClaimWriter>());
        builder.Services.AddSingleton<CouponExpiryJob>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CouponExpiryJob>());
        return builder;
    }

    public static IEndpointRouteBuilder MapOffers(this IEndpointRouteBuilder app) => app.MapOffersRoutes();
}
