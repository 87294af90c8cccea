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

/// <summary>The command line: <c>--rows N --seconds S --concurrency C --only sqlite|postgres --server PATH --quick</c>.</summary>
internal sealed record BenchOptions(int Rows, int Seconds, int Concurrency, Provider? Only, string? ServerDll, bool Quick)
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/Meridian.Bench -- [options]
          --rows N            rows inserted by the raw-insert baselines (default 200000)
          --seconds S         measured seconds of each read load, after a warm-up (default 10)
          --concurrency C     concurrent workers of each read load (default 16)
          --only sqlite|postgres
          --server PATH       the meridian.dll to start (default: src/Meridian.Server/bin/Release/net10.0/meridian.dll)
          --quick             a smoke run: 20000 rows, 2 s
        """;

    /// <summary>Each read load first runs this long unmeasured, so that JIT, connection pools and caches are warm.</summary>
    public TimeSpan WarmUp => TimeSpan.FromSeconds(Math.Clamp(Seconds / 4.0, 1, 5));

    public TimeSpan Measured => TimeSpan.FromSeconds(Seconds);

    public bool Runs(Provider provider) => Only is null || Only == provider;

    /// <summary>Null (after printing why) when the arguments are wrong.</summary>
    public static BenchOptions? Parse(string[] args)
    {
        var quick = args.Contains("--quick");
        var options = new BenchOptions(quick ? 20_000 : 200_000, quick ? 2 : 10, 16, null, null, quick);
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--quick":
                    continue;
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
}
