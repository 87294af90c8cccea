using System.CommandLine;
using Meridian.Data;
using Meridian.Ingestion;
using Meridian.Ingestion.Import;
using Meridian.Ingestion.Sources;
using Meridian.Ingestion.Tracking;
using Meridian.Platform;
using Meridian.Platform.Access;
using Meridian.Platform.Bootstrap;
using Meridian.Platform.DemoData;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Hosting;

/// <summary>
/// The <c>meridian</c> verbs besides <c>serve</c>: <c>migrate</c>, <c>keys create|list|revoke</c>, <c>import</c>, <c>demo-data</c>.
/// They use the same configuration (appsettings, <c>Meridian__...</c> environment variables, <c>--Meridian:...=</c> switches) as the server.
/// </summary>
public static class MeridianCli
{
    private static readonly string[] Verbs = ["migrate", "keys", "import", "demo-data", "bench", "--help", "-h", "-?"];

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
        root.Subcommands.Add(ImportCommand());
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
    private static async Task<IHost> BuildToolHostAsync(ParseResult parse, bool migrate = true, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(parse.UnmatchedTokens.ToArray());
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddMeridianDatabase();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddOptions<BootstrapOptions>().BindConfiguration("Meridian:Bootstrap");
        services?.Invoke(builder.Services);
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

    private static Command ImportCommand()
    {
        var brand = new Option<string?>("--brand") { Description = "Slug of the brand the rows belong to (rows of another brand, by a brand column, are skipped)." };
        var group = new Option<string?>("--group") { Description = "Group slug; needed only when the database holds several groups." };
        var source = new Option<string?>("--source") { Description = "The brand's source to store the rows under: its name or id." };
        var createSource = new Option<bool>("--create-source") { Description = "Create the source (channel import) if the brand has none of that name." };
        var kind = new Option<string?>("--kind") { Description = "customers, orders or events." };
        var format = new Option<string?>("--format") { Description = "csv or jsonl; by default from the file's extension, else csv (jsonl for events)." };
        var file = new Option<string?>("--file") { Description = "The file to import. It is read in place, streamed, and must not change until the import is done." };
        var map = new Option<string[]>("--map") { Description = "CSV column mapping, header=field; repeat for each column (e.g. --map mobile=phone)." };
        var resume = new Option<long?>("--resume") { Description = "Resume an interrupted import by id; the other options are then not needed." };
        var command = new Command("import", "Import a CSV or JSON lines file into a source, in this process, printing progress. Resumable.")
        {
            brand, group, source, createSource, kind, format, file, map, resume,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var host = await BuildToolHostAsync(parse, services: s => s.AddScoped<EventStore>().AddSingleton<EventLogSignal>().AddImports());
            var processor = host.Services.GetRequiredService<ImportProcessor>();
            var id = parse.GetValue(resume);
            if (id is null)
            {
                var (created, error) = await CreateImportAsync(host, processor.Node, parse.GetValue(group), parse.GetValue(brand), parse.GetValue(source),
                    parse.GetValue(createSource), parse.GetValue(kind), parse.GetValue(format), parse.GetValue(file), parse.GetValue(map) ?? [], ct);
                if (error is not null)
                {
                    Console.Error.WriteLine($"meridian: {error}");
                    return 1;
                }
                id = created;
            }
            if (id is not { } importId) return 1;

            var progress = new ConsoleImportProgress();
            ImportRunOutcome outcome;
            try
            {
                outcome = await processor.RunAsync(importId, processor.Node, null, progress, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                outcome = ImportRunOutcome.Stopped;
            }
            var last = progress.Last;
            switch (outcome)
            {
                case ImportRunOutcome.Completed:
                    progress.Summary(Console.Out);
                    return 0;
                case ImportRunOutcome.Failed:
                    Console.Error.WriteLine($"meridian: import {id} failed: {last?.Error}");
                    return 1;
                case ImportRunOutcome.NotClaimed:
                    Console.Error.WriteLine($"meridian: import {id} does not exist, is finished, or is being run by another process (see GET /api/v1/imports/{id}).");
                    return 1;
                default:
                    Console.Error.WriteLine($"meridian: import {id} stopped at line {last?.NextLine}: `meridian import --resume {id}` (or a running server) resumes it there.");
                    return 1;
            }
        });
        return command;
    }

    /// <summary>Creates the CLI's import, already leased to this process so that no server takes it first; returns its id or what is wrong.</summary>
    private static async Task<(long? Id, string? Error)> CreateImportAsync(IHost host, string owner, string? groupSlug, string? brandSlug, string? sourceName,
        bool createSource, string? kindText, string? formatText, string? file, string[] map, CancellationToken ct)
    {
        if (brandSlug is null || sourceName is null || kindText is null || file is null)
            return (null, "name --brand, --source, --kind and --file (or --resume an import).");
        if (!ImportSetup.TryParseKind(kindText, out var kind)) return (null, $"--kind '{kindText}' is not customers, orders or events.");
        var format = ImportSetup.FormatOf(null, file) ?? ImportSetup.DefaultFormat(kind);
        if (formatText is not null && !ImportSetup.TryParseFormat(formatText, out format)) return (null, $"--format '{formatText}' is not csv or jsonl.");
        if (ImportSetup.CheckCombination(kind, format) is { } combination) return (null, combination);
        var path = Path.GetFullPath(file);
        if (!File.Exists(path)) return (null, $"no file {path}.");
        var (overrides, mapError) = CsvPlan.ParsePairs(map);
        if (mapError is not null) return (null, "--map " + mapError);

        var db = SystemDb(host, out var scope);
        using var _ = scope;
        var groups = await db.Set<Group>().Where(g => groupSlug == null || g.Slug == groupSlug).ToListAsync(ct);
        if (groups.Count != 1) return (null, groups.Count == 0 ? "no such group." : "several groups exist; name one with --group.");
        var brand = await db.Set<Brand>().SingleOrDefaultAsync(b => b.GroupId == groups[0].Id && b.Slug == brandSlug, ct);
        if (brand is null) return (null, $"no brand '{brandSlug}' in group {groups[0].Slug}.");
        var sources = db.Set<Source>().Where(s => s.TenantId == brand.Id);
        var target = await sources.SingleOrDefaultAsync(s => s.Name == sourceName, ct)
            ?? (long.TryParse(sourceName, out var sourceId) ? await sources.SingleOrDefaultAsync(s => s.Id == sourceId, ct) : null);
        var now = DateTime.UtcNow;
        if (target is null && createSource)
        {
            var writeKey = Secrets.NewKey(Secrets.WriteKeyPrefix);
            target = new Source
            {
                TenantId = brand.Id, Name = sourceName, Channel = Channel.Import, WriteKeyPrefix = Secrets.Display(writeKey),
                WriteKeyHash = Secrets.Hash(writeKey), CreatedAt = now, UpdatedAt = now,
            };
            db.Add(target);
            await db.SaveChangesAsync(ct);
            Console.WriteLine($"Created source {target.Id} '{sourceName}' (channel import) in brand {brandSlug}.");
        }
        if (target is null)
        {
            var names = await sources.OrderBy(s => s.Id).Select(s => s.Name).ToListAsync(ct);
            return (null, $"brand {brandSlug} has no source '{sourceName}' (it has: {string.Join(", ", names)}); add --create-source to create it.");
        }
        if (!target.Enabled) return (null, $"source '{target.Name}' is disabled.");

        var (mapping, _, planError) = ImportSetup.Plan(kind, format, path, overrides);
        if (planError is not null) return (null, planError);
        var sha = await ImportSetup.Sha256Async(path, ct);
        var options = host.Services.GetRequiredService<IOptions<ImportOptions>>().Value;
        var job = new ImportJob
        {
            TenantId = brand.Id, SourceId = target.Id, Kind = kind, Format = format, Mapping = mapping, FileName = Path.GetFileName(path),
            FilePath = path, OwnsFile = false, FileBytes = new FileInfo(path).Length, FileSha256 = sha,
            MessageIdPrefix = ImportSetup.MessageIdPrefix(sha, kind, mapping), Status = ImportStatus.Queued, NextLine = 1,
            LeaseOwner = owner, LeaseUntil = now + options.Lease, CreatedBy = "cli", CreatedAt = now,
        };
        db.Add(job);
        db.AfterKeysAssigned(() => db.Add(new Platform.Audit.AuditEntry
        {
            GroupId = groups[0].Id, BrandId = brand.Id, OccurredAt = now, Actor = "cli", Action = "import.created",
            EntityType = "import", EntityId = job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }));
        await db.SaveChangesAsync(ct);
        Console.WriteLine($"Import {job.Id}: {kind.ToString().ToLowerInvariant()} from {job.FileName} ({job.FileBytes:N0} bytes) into source '{target.Name}' of brand {brandSlug}.");
        if (mapping is not null)
            Console.WriteLine("Columns: " + string.Join(", ", System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(mapping)!.Select(m => $"{m.Key}→{m.Value}")));
        return (job.Id, null);
    }

    /// <summary>Prints progress at most once a second (and the summary at the end), synchronously, in order.</summary>
    private sealed class ConsoleImportProgress : IProgress<ImportProgress>
    {
        private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
        private ImportProgress? first;
        private TimeSpan? printed;

        public ImportProgress? Last { get; private set; }

        public void Report(ImportProgress value)
        {
            first ??= value;
            Last = value;
            if (value == first || clock.Elapsed - printed < TimeSpan.FromSeconds(1) || value.Status != ImportStatus.Running) return;
            printed = clock.Elapsed;
            Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"  {value.Percent,5:F1}%  line {value.NextLine:N0}  rows {value.RowsRead:N0}: accepted {value.Accepted:N0}, duplicates {value.Duplicates:N0}, rejected {value.Rejected:N0}, skipped {value.Skipped:N0}"));
        }

        public void Summary(TextWriter output)
        {
            var p = Last!;
            var rows = p.RowsRead - first!.RowsRead;
            var seconds = Math.Max(clock.Elapsed.TotalSeconds, 0.001);
            output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"Import {p.Id} completed: {p.RowsRead:N0} rows: {p.Accepted:N0} accepted, {p.Duplicates:N0} duplicates, {p.Rejected:N0} rejected, {p.Skipped:N0} skipped ({rows:N0} rows in {seconds:F1} s, {rows / seconds:N0} rows/s)."));
            if (p.Rejected > 0) output.WriteLine("Rejected rows are kept with their line number and reason: GET /api/v1/sources/{id}/rejects.");
        }
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
