using System.CommandLine;
using Meridian.Data;
using Meridian.Ingestion;
using Meridian.Platform;
using Meridian.Platform.Access;
using Meridian.Platform.Bootstrap;
using Meridian.Platform.DemoData;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Hosting;

/// <summary>
/// The <c>meridian</c> verbs besides <c>serve</c>: <c>migrate</c>, <c>keys create|list|revoke</c>, <c>demo-data</c>.
/// They use the same configuration (appsettings, <c>Meridian__...</c> environment variables, <c>--Meridian:...=</c> switches) as the server.
/// </summary>
public static class MeridianCli
{
    private static readonly string[] Verbs = ["migrate", "keys", "demo-data", "bench", "--help", "-h", "-?"];

    public static bool IsVerb(string[] args) => args.Length > 0 && Verbs.Contains(args[0]);

    /// <summary>Called by the server after <c>Build()</c>: migrate, then create the demo group on an empty database.</summary>
    public static async Task PrepareDatabaseAsync(this WebApplication app)
    {
        await DatabaseExtensions.MigrateAsync(app.Services);
        var result = await Bootstrapper.EnsureDemoGroupAsync(app.Services, app.Services.GetRequiredService<IOptions<BootstrapOptions>>().Value);
        if (result is not null) Bootstrapper.Print(result, Console.Out);
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Meridian, the customer middle platform. Without a verb, starts the server (as `serve`).");
        root.Subcommands.Add(new Command("serve", "Start the server (default). ASP.NET Core switches such as --urls apply."));
        root.Subcommands.Add(MigrateCommand());
        root.Subcommands.Add(KeysCommand());
        root.Subcommands.Add(DemoDataCommand());
        root.Subcommands.Add(new Command("bench", "Benchmarks live in bench/: run `./meridian bench` from the repository.")
        {
            TreatUnmatchedTokensAsErrors = false,
        });
        // Configuration switches (--Meridian:Database:Provider=Postgres) pass through to the host.
        root.TreatUnmatchedTokensAsErrors = false;
        foreach (var c in root.Subcommands) c.TreatUnmatchedTokensAsErrors = false;
        try
        {
            return await root.Parse(args).InvokeAsync();
        }
        catch (StartupException ex)
        {
            Console.Error.WriteLine($"meridian: {ex.Message}");
            return 2;
        }
    }

    /// <summary>A host with the database and platform services but no web server, for the verbs.</summary>
    private static async Task<IHost> BuildToolHostAsync(ParseResult parse, bool migrate = true)
    {
        var builder = Host.CreateApplicationBuilder(parse.UnmatchedTokens.ToArray());
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddMeridianDatabase();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddOptions<BootstrapOptions>().BindConfiguration("Meridian:Bootstrap");
        var host = builder.Build();
        if (migrate) await DatabaseExtensions.MigrateAsync(host.Services);
        return host;
    }

    private static Command MigrateCommand()
    {
        var command = new Command("migrate", "Apply database migrations (and create the demo group on an empty database), then exit.");
        command.SetAction(async (parse, ct) =>
        {
            using var host = await BuildToolHostAsync(parse);
            var result = await Bootstrapper.EnsureDemoGroupAsync(host.Services, host.Services.GetRequiredService<IOptions<BootstrapOptions>>().Value, ct);
            if (result is not null) Bootstrapper.Print(result, Console.Out);
            Console.WriteLine($"The {host.Services.GetRequiredService<DatabaseSettings>().Describe()} is up to date.");
            return 0;
        });
        return command;
    }

    private static Command KeysCommand()
    {
        var keys = new Command("keys", "Manage staff API keys (for recovery and scripting; the API does the same with an admin key).");

        var name = new Option<string>("--name") { Description = "What the key is for.", Required = true };
        var role = new Option<string>("--role") { Description = "Role name, e.g. admin, marketer, analyst.", DefaultValueFactory = _ => BuiltInRoles.Admin };
        var brand = new Option<string?>("--brand") { Description = "Brand slug; omit for a group-level key." };
        var group = new Option<string?>("--group") { Description = "Group slug; needed only when the database holds several groups." };
        var create = new Command("create", "Create a key and print it once.") { name, role, brand, group };
        create.SetAction(async (parse, ct) =>
        {
            using var host = await BuildToolHostAsync(parse);
            var db = SystemDb(host, out var scope);
            using var _ = scope;
            var groups = await db.Set<Group>().Where(g => parse.GetValue(group) == null || g.Slug == parse.GetValue(group)).ToListAsync(ct);
            if (groups.Count != 1)
            {
                Console.Error.WriteLine(groups.Count == 0 ? "meridian: no such group." : "meridian: several groups exist; name one with --group.");
                return 1;
            }
            var g = groups[0];
            var r = await db.Set<Role>().SingleOrDefaultAsync(x => x.GroupId == g.Id && x.Name == parse.GetValue(role), ct);
            if (r is null)
            {
                Console.Error.WriteLine($"meridian: no role '{parse.GetValue(role)}' in group {g.Slug}.");
                return 1;
            }
            long? brandId = null;
            if (parse.GetValue(brand) is { } slug)
            {
                brandId = await db.Set<Brand>().Where(b => b.GroupId == g.Id && b.Slug == slug).Select(b => (long?)b.Id).SingleOrDefaultAsync(ct);
                if (brandId is null)
                {
                    Console.Error.WriteLine($"meridian: no brand '{slug}' in group {g.Slug}.");
                    return 1;
                }
            }
            var secret = Secrets.NewKey(Secrets.StaffKeyPrefix);
            var key = new ApiKey
            {
                GroupId = g.Id, BrandId = brandId, RoleId = r.Id, Name = parse.GetValue(name)!, Prefix = Secrets.Display(secret),
                Hash = Secrets.Hash(secret), CreatedAt = DateTime.UtcNow,
            };
            db.Add(key);
            db.AfterKeysAssigned(() => db.Add(new Platform.Audit.AuditEntry
            {
                GroupId = g.Id, BrandId = brandId, OccurredAt = key.CreatedAt, Actor = "cli", Action = "api-key.created",
                EntityType = "api-key", EntityId = key.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }));
            await db.SaveChangesAsync(ct);
            Console.WriteLine($"Created key {key.Id} ({r.Name}, {(brandId is null ? "group " + g.Slug : "brand " + parse.GetValue(brand))}). Shown once:");
            Console.WriteLine(secret);
            return 0;
        });

        var list = new Command("list", "List keys (never their secrets).");
        list.SetAction(async (parse, ct) =>
        {
            using var host = await BuildToolHostAsync(parse);
            var db = SystemDb(host, out var scope);
            using var _ = scope;
            var rows = await (from k in db.Set<ApiKey>()
                              join r in db.Set<Role>() on k.RoleId equals r.Id
                              orderby k.Id
                              select new { k.Id, k.Prefix, k.Name, Role = r.Name, k.BrandId, k.RevokedAt, k.LastUsedAt }).ToListAsync(ct);
            Console.WriteLine($"{"id",-6} {"prefix",-14} {"role",-14} {"brand",-6} {"state",-8} {"last used",-20} name");
            foreach (var k in rows)
                Console.WriteLine($"{k.Id,-6} {k.Prefix,-14} {k.Role,-14} {(k.BrandId?.ToString() ?? "group"),-6} {(k.RevokedAt is null ? "active" : "revoked"),-8} {k.LastUsedAt?.ToString("u") ?? "never",-20} {k.Name}");
            return 0;
        });

        var id = new Argument<long>("id") { Description = "The key's id (see `keys list`)." };
        var revoke = new Command("revoke", "Revoke a key.") { id };
        revoke.SetAction(async (parse, ct) =>
        {
            using var host = await BuildToolHostAsync(parse);
            var db = SystemDb(host, out var scope);
            using var _ = scope;
            var key = await db.Set<ApiKey>().SingleOrDefaultAsync(k => k.Id == parse.GetValue(id), ct);
            if (key is null)
            {
                Console.Error.WriteLine($"meridian: no key {parse.GetValue(id)}.");
                return 1;
            }
            try
            {
                key.Revoke(DateTime.UtcNow);
            }
            catch (BusinessRuleException ex)
            {
                Console.Error.WriteLine($"meridian: {ex.Message}");
                return 1;
            }
            db.Add(new Platform.Audit.AuditEntry
            {
                GroupId = key.GroupId, BrandId = key.BrandId, OccurredAt = key.RevokedAt!.Value, Actor = "cli", Action = "api-key.revoked",
                EntityType = "api-key", EntityId = key.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            await db.SaveChangesAsync(ct);
            Console.WriteLine($"Revoked key {key.Id} ({key.Prefix}). Running servers stop accepting it within {ApiKeyStore.CacheFor.TotalSeconds:0} s.");
            return 0;
        });

        keys.Subcommands.Add(create);
        keys.Subcommands.Add(list);
        keys.Subcommands.Add(revoke);
        foreach (var c in keys.Subcommands) c.TreatUnmatchedTokensAsErrors = false;
        return keys;
    }

    private static MeridianDb SystemDb(IHost host, out IServiceScope scope)
    {
        scope = host.Services.CreateScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return scope.ServiceProvider.GetRequiredService<MeridianDb>();
    }

    private static Command DemoDataCommand()
    {
        var customers = new Option<int>("--customers") { Description = "How many people to generate (1 to 10,000,000).", DefaultValueFactory = _ => 10_000 };
        customers.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 10_000_000) r.AddError("--customers must be between 1 and 10,000,000.");
        });
        var seed = new Option<int>("--seed") { Description = "Same seed, same files.", DefaultValueFactory = _ => 42 };
        var output = new Option<string>("--out") { Description = "Folder to write into.", DefaultValueFactory = _ => "demo-data" };
        var command = new Command("demo-data", "Write a deterministic multi-brand retail data set (events, imports and the ground truth of identities).")
        {
            customers, seed, output,
        };
        command.SetAction(async (parse, ct) =>
        {
            var summary = await DemoDataGenerator.WriteAsync(new DemoDataSpec(parse.GetValue(customers), parse.GetValue(seed), parse.GetValue(output)!), ct);
            Console.WriteLine(summary);
            return 0;
        });
        return command;
    }
}
