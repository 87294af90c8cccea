namespace Meridian.Bench;

internal enum Provider
{
    Sqlite,
    Postgres,
}

internal static class ProviderNames
{
    public static string Title(this Provider provider) => provider == Provider.Sqlite ? "SQLite" : "PostgreSQL";
}

/// <summary>The command line: see <see cref="Usage"/>.</summary>
internal sealed record BenchOptions(int Rows, int Seconds, int Concurrency, Provider? Only, string? ServerDll, bool Quick)
{
    /// <summary>Events sent through <c>/v1/batch</c> (and inserted by their baseline); 0 skips the ingest measure.</summary>
    public int IngestEvents { get; init; } = Quick ? 20_000 : 1_000_000;

    /// <summary>
    /// People in the generated demo data set. About 18.8 events each (seed 42), so 55,000 is the smallest round figure
    /// whose two event files hold a million events (50,000 hold 940,000).
    /// </summary>
    public int Customers { get; init; } = Quick ? 2_000 : 55_000;

    /// <summary>Events per <c>/v1/batch</c> request, and per transaction of the baseline they are divided by.</summary>
    public int IngestBatch { get; init; } = 100;

    /// <summary>Concurrent clients sending batches.</summary>
    public int IngestConcurrency { get; init; } = 8;

    /// <summary>A folder that already holds <c>events-demo.jsonl</c> (from <c>meridian demo-data</c>), instead of generating one.</summary>
    public string? DemoData { get; init; }

    /// <summary>Only the ingest measure and its baseline.</summary>
    public bool IngestOnly { get; init; }

    /// <summary>Skip the ingest measure: the reads (the lookup's baseline) and the identity run only.</summary>
    public bool IdentityOnly { get; init; }

    /// <summary>Only the raw baselines, the GET measure and the loyalty measures.</summary>
    public bool LoyaltyOnly { get; init; }

    /// <summary>The steady rates (events/s) at which <see cref="PacedLag"/> measures the lag, one after the other.</summary>
    public IReadOnlyList<int> PacedRates { get; init; } = [1_000];

    /// <summary>The steady rates (lookups/s) at which the identity run measures the lookup's latency, open loop.</summary>
    public IReadOnlyList<int> LookupRates { get; init; } = [500, 1_000];

    /// <summary>Only the reads: the raw baselines, the GET and the OpenID Connect provider (no events, no identity, loyalty or offers runs).</summary>
    public bool ReadsOnly { get; init; }

    /// <summary>How many due lots the loyalty run seeds for the expiry job.</summary>
    public long ExpiryLots { get; init; } = Quick ? 20_000 : 1_000_000;

    /// <summary>Only the offers measures (claims against their raw baseline, validation, code generation).</summary>
    public bool OffersOnly { get; init; }

    /// <summary>Only the messaging measure (queued → sent through an SMS gateway listener); it runs only when asked for.</summary>
    public bool MessagingOnly { get; init; }

    /// <summary>Only the journeys measures (timers waiting, fired at once, steps).</summary>
    public bool JourneysOnly { get; init; }

    /// <summary>Only the audiences measures (estimate vs hand-written SQL, membership check, entry lag).</summary>
    public bool AudiencesOnly { get; init; }

    /// <summary>Customers the audiences run makes (each with 0-4 orders).</summary>
    public int AudienceCustomers { get; init; } = Quick ? 5_000 : 50_000;

    /// <summary>
    /// Full-size audiences: profiles seeded straight into the tables (0: customers through <c>/v1/batch</c> instead), with
    /// <see cref="AudienceEvents"/> events among them (default 20 a profile).
    /// </summary>
    public int AudienceProfiles { get; init; }

    public long AudienceEvents { get; init; }

    /// <summary>Whether an <c>--x-only</c> flag narrowed the run to one area; each area runs when nothing narrowed it, or it did to that area.</summary>
    private bool Narrowed => IngestOnly || IdentityOnly || ReadsOnly || LoyaltyOnly || OffersOnly || JourneysOnly || AudiencesOnly || MessagingOnly;

    /// <summary>The raw baselines, reads, ingest, identity and loyalty share one server run per database.</summary>
    public bool RunsSuites => !Narrowed || IngestOnly || IdentityOnly || ReadsOnly || LoyaltyOnly;

    public bool RunsIngest => IngestEvents > 0 && (!Narrowed || IngestOnly);

    public bool RunsIdentity => !Narrowed || IdentityOnly;

    public bool RunsLoyalty => !Narrowed || LoyaltyOnly;

    public bool RunsOffers => !Narrowed || OffersOnly;

    public bool RunsJourneys => !Narrowed || JourneysOnly;

    public bool RunsAudiences => !Narrowed || AudiencesOnly;

    /// <summary>Messaging runs only when asked for.</summary>
    public bool RunsMessaging => MessagingOnly;

    public const string Usage = """
        usage: dotnet run -c Release --project bench/Meridian.Bench -- [options]
          --rows N            rows inserted by the raw-insert baselines (default 200000)
          --seconds S         measured seconds of each read load, after a warm-up (default 10)
          --concurrency C     concurrent workers of each read load (default 16)
          --only sqlite|postgres
          --server PATH       the meridian.dll to start (default: src/Meridian.Server/bin/Release/net10.0/meridian.dll)
          --ingest-events N   events sent through POST /v1/batch, and inserted raw as their baseline (default 1000000; 0 skips)
          --customers N       people in the generated demo data set the events come from (default 55000, about 1.03 M events)
          --demo-data DIR     take the events from DIR (meridian demo-data --out DIR) instead of generating them
          --ingest-batch B    events per /v1/batch request and per baseline transaction (default 100)
          --ingest-concurrency C
                              concurrent clients sending batches (default 8)
          --ingest-only       skip the raw insert/select and GET measures and the identity run
          --identity-only     skip the ingest measure (the identity run sends every event of the demo data set anyway)
          --loyalty-only      only the raw baselines, the GET measure and the loyalty measures
          --expiry-lots N     due lots the loyalty run seeds for the expiry job (default 1000000; --quick 20000)
          --offers-only       only the offers measures: claims/s vs a raw conditional UPDATE, validation p99, generating codes
          --journeys-only     only the journeys measures: 100,000 waiting timers (RSS, database size), 10,000 due at once (fires/s, lateness), steps/s
          --audiences-only    only the audiences measures: estimate vs hand-written SQL, membership check p99, entry lag p99
          --audience-customers N  customers the audiences run makes (default 50,000; --quick 5,000)
          --audience-profiles N   full size instead: N profiles seeded straight into the tables (bypassing ingestion)
          --audience-events N     events seeded among them (default 20 a profile), e.g. 1000000 and 20000000
          --messaging-only    only messaging: messages queued over HTTP, then sent per second through an SMS gateway listener
          --paced-rates R,... the steady rates (events/s) at which the identity run measures the lag (default 1000)
          --lookup-rates R,.. the steady rates (lookups/s, open loop) at which the identity run measures the lookup's latency (default 500,1000)
          --reads-only        only the raw baselines, the GET and the OpenID Connect provider (refresh grant, userinfo)
          --quick             a smoke run: 20000 rows, 2 s, 20000 events from 2000 customers
        """;

    /// <summary>Each read load first runs this long unmeasured, so that JIT, connection pools and caches are warm.</summary>
    public TimeSpan WarmUp => TimeSpan.FromSeconds(Math.Clamp(Seconds / 4.0, 1, 5));

    public TimeSpan Measured => TimeSpan.FromSeconds(Seconds);

    public bool Runs(Provider provider) => Only is null || Only == provider;

    /// <summary>Null (after printing why) when the arguments are wrong.</summary>
    public static BenchOptions? Parse(string[] args)
    {
        var quick = args.Contains("--quick");
        if (args.Contains("--ingest-only") && args.Contains("--identity-only"))
        {
            Console.Error.WriteLine($"meridian-bench: --ingest-only and --identity-only exclude each other.\n{Usage}");
            return null;
        }
        var options = new BenchOptions(quick ? 20_000 : 200_000, quick ? 2 : 10, 16, null, null, quick);
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--quick":
                    continue;
                case "--ingest-only":
                    options = options with { IngestOnly = true };
                    continue;
                case "--identity-only":
                    options = options with { IdentityOnly = true };
                    continue;
                case "--reads-only":
                    options = options with { ReadsOnly = true };
                    continue;
                case "--loyalty-only":
                    options = options with { LoyaltyOnly = true };
                    continue;
                case "--expiry-lots" when long.TryParse(value, out var lots) && lots is >= 10 and <= 100_000_000:
                    options = options with { ExpiryLots = lots / 10 * 10 };
                    break;
                case "--offers-only":
                    options = options with { OffersOnly = true };
                    continue;
                case "--journeys-only":
                    options = options with { JourneysOnly = true };
                    continue;
                case "--audiences-only":
                    options = options with { AudiencesOnly = true };
                    continue;
                case "--audience-customers" when int.TryParse(value, out var ac) && ac is > 0 and <= 10_000_000:
                    options = options with { AudienceCustomers = ac };
                    break;
                case "--audience-profiles" when int.TryParse(value, out var ap) && ap is >= 1_000 and <= 10_000_000:
                    options = options with { AudienceProfiles = ap };
                    break;
                case "--audience-events" when long.TryParse(value, out var ae) && ae is >= 1_000 and <= 1_000_000_000:
                    options = options with { AudienceEvents = ae };
                    break;
                case "--messaging-only":
                    options = options with { MessagingOnly = true };
                    continue;
                case "--ingest-events" when int.TryParse(value, out var e) && e >= 0:
                    options = options with { IngestEvents = e };
                    break;
                case "--paced-rates" when Rates(value) is { } rates:
                    options = options with { PacedRates = rates };
                    break;
                case "--lookup-rates" when Rates(value) is { } rates:
                    options = options with { LookupRates = rates };
                    break;
                case "--customers" when int.TryParse(value, out var people) && people is > 0 and <= 10_000_000:
                    options = options with { Customers = people };
                    break;
                case "--demo-data" when value is not null:
                    options = options with { DemoData = Path.GetFullPath(value) };
                    break;
                case "--ingest-batch" when int.TryParse(value, out var b) && b is > 0 and <= 10_000:
                    options = options with { IngestBatch = b };
                    break;
                case "--ingest-concurrency" when int.TryParse(value, out var ic) && ic > 0:
                    options = options with { IngestConcurrency = ic };
                    break;
                case "--rows" when int.TryParse(value, out var n) && n > 0:
                    options = options with { Rows = n };
                    break;
                case "--seconds" when int.TryParse(value, out var s) && s > 0:
                    options = options with { Seconds = s };
                    break;
                case "--concurrency" when int.TryParse(value, out var c) && c > 0:
                    options = options with { Concurrency = c };
                    break;
                case "--only" when Enum.TryParse<Provider>(value, ignoreCase: true, out var p):
                    options = options with { Only = p };
                    break;
                case "--server" when value is not null:
                    options = options with { ServerDll = Path.GetFullPath(value) };
                    break;
                default:
                    Console.Error.WriteLine(args[i] is "-h" or "--help" ? Usage : $"meridian-bench: cannot use '{args[i]} {value}'.\n{Usage}");
                    return null;
            }
            i++;
        }
        return options;
    }

    /// <summary>A comma-separated list of rates, each 1 to 100,000 a second; null when any is not.</summary>
    private static List<int>? Rates(string? value) =>
        value?.Split(',').Select(r => int.TryParse(r, out var rate) && rate is > 0 and <= 100_000 ? rate : 0).ToList() is { } rates && rates.All(r => r > 0) ? rates : null;
}
