using Meridian.Audiences;
using Meridian.Hosting;
using Meridian.Ingestion;
using Meridian.Login;
using Meridian.Loyalty;
using Meridian.Offers;
using Meridian.Platform;
using Meridian.Profiles;
using Meridian.Service;

// `meridian migrate|keys|demo-data ...` are command-line verbs; no verb (or `serve`) starts the server.
if (MeridianCli.IsVerb(args)) return await MeridianCli.RunAsync(args);
if (args is ["serve", ..]) args = args[1..];

try
{
    var builder = WebApplication.CreateBuilder(args);
    builder.AddMeridianHosting();
    builder.AddPlatform();
    builder.AddIngestion();
    builder.AddProfiles();
    builder.AddLoyalty();
    builder.AddOffers();
    builder.AddAudiences();
    builder.AddLogin();
    builder.AddService();

    var app = builder.Build();
    await app.PrepareDatabaseAsync();
    app.UseMeridianHosting();
    app.MapPlatform();
    app.MapIngestion();
    app.MapProfiles();
    app.MapLoyalty();
    app.MapOffers();
    app.MapAudiences();
    app.MapLogin();
    app.MapService();
    await app.RunAsync();
    return 0;
}
catch (StartupException ex)
{
    Console.Error.WriteLine($"meridian: {ex.Message}");
    return 2;
}

public partial class Program;
