using Meridian.Audiences;
using Meridian.Hosting;
using Meridian.Ingestion;
using Meridian.Journeys;
using Meridian.Login;
using Meridian.Loyalty;
using Meridian.Messaging;
using Meridian.Offers;
using Meridian.Platform;
using Meridian.Profiles;
using Meridian.Service;

// `meridian migrate|keys|demo-data ...` are command-line verbs; no verb (or `serve`) starts the server.
if (MeridianCli.IsVerb(args)) return await MeridianCli.RunAsync(args);
if (args is ["serve", ..]) args = args[1..];

try
{
    // No reloading of appsettings.json on change: its watcher covers the content root and everything under it, which
    // by default holds the SQLite database, so every write to the database's log woke it (traced: a tenth of the
    // server's CPU under write load). `--hostBuilder:reloadConfigOnChange=true` turns reloading back on.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false", .. args] });
    builder.AddMeridianHosting();
    builder.AddPlatform();
    builder.AddIngestion();
    builder.AddProfiles();
    builder.AddLoyalty();
    builder.AddOffers();
    builder.AddAudiences();
    builder.AddLogin();
    builder.AddService();
    builder.AddMessaging();
    builder.AddJourneys();

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
    app.MapMessaging();
    app.MapJourneys();
    await app.RunAsync();
    return 0;
}
catch (StartupException ex)
{
    Console.Error.WriteLine($"meridian: {ex.Message}");
    return 2;
}

public partial class Program;
