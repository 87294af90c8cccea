using System.Data.Common;
using Meridian.Data;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;

namespace Meridian.Hosting;

public enum DatabaseProvider
{
    Sqlite,
    Postgres,
}

/// <summary>A start-up problem the operator can fix (bad setting, unreachable database): printed as one line, no stack trace.</summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary><c>Meridian:Database</c>: the provider (<c>Sqlite</c>, the default, or <c>Postgres</c>) and its connection string.</summary>
public sealed record DatabaseSettings(DatabaseProvider Provider, string ConnectionString)
{
    public const string DefaultSqlite = "Data Source=data/meridian.db";

    public static DatabaseSettings Load(IConfiguration configuration)
    {
        var section = configuration.GetSection("Meridian:Database");
        var providerText = section["Provider"];
        var provider = DatabaseProvider.Sqlite;
        if (!string.IsNullOrWhiteSpace(providerText) && !Enum.TryParse(providerText, ignoreCase: true, out provider))
            throw new StartupException($"Meridian:Database:Provider is '{providerText}'; use 'Sqlite' or 'Postgres'.");

        var connectionString = section["ConnectionString"];
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            if (provider == DatabaseProvider.Postgres)
                throw new StartupException("Meridian:Database:ConnectionString is required with the Postgres provider (e.g. 'Host=localhost;Database=meridian;Username=meridian;Password=...').");
            connectionString = DefaultSqlite;
        }
        try
        {
            DbConnectionStringBuilder parsed = provider == DatabaseProvider.Sqlite ? new SqliteConnectionStringBuilder(connectionString) : new NpgsqlConnectionStringBuilder(connectionString);
            _ = parsed.ConnectionString;
            if (parsed is NpgsqlConnectionStringBuilder npgsql)
            {
                // Npgsql's ContainsKey answers for any keyword it knows, set or not: what was given is read from the text.
                var given = new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
                    .Select(keyword => keyword.Replace(" ", "")).ToHashSet(StringComparer.OrdinalIgnoreCase);
                // Meridian keeps no state in a PostgreSQL session (its locks are transaction locks): a pooled connection
                // needs no DISCARD ALL each time EF opens it again, which is before every query outside a transaction.
                if (!given.Contains("NoResetOnClose")) npgsql.NoResetOnClose = true;
                // A statement run 5 times on a connection is prepared there (kept across the pool's reuse): PostgreSQL
                // parses and plans it once instead of on every call, ~1 ms of a profile lookup's 3 (measured on 100,000
                // customers: one client p50 2.7-3.4 -> 1.7 ms). "Max Auto Prepare=0" turns it off.
                if (!given.Contains("MaxAutoPrepare")) npgsql.MaxAutoPrepare = 200;
                connectionString = npgsql.ConnectionString;
            }
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new StartupException($"Meridian:Database:ConnectionString is not a valid {provider} connection string: {ex.Message}");
        }
        return new DatabaseSettings(provider, connectionString);
    }

    /// <summary>Where the database is, for messages: never the password.</summary>
    public string Describe() => Provider == DatabaseProvider.Sqlite
        ? $"SQLite file {new SqliteConnectionStringBuilder(ConnectionString).DataSource}"
        : new NpgsqlConnectionStringBuilder(ConnectionString) is var b ? $"PostgreSQL at {b.Host}:{b.Port}/{b.Database}" : "";
}

public static class DatabaseExtensions
{
    /// <summary>
    /// A list in a query (<c>ids.Contains(x.Id)</c>, the tenant filter's brands) is sent as one array parameter
    /// (<c>json_each</c> on SQLite, <c>= ANY</c> on PostgreSQL). EF's default since 10 sends one parameter per item,
    /// which makes the SQL differ with the list's length, so every execution re-generated its SQL (a quarter of a
    /// simple GET's CPU, traced). A query that needs the items inlined for its plan can still say so with
    /// <c>EF.Constant</c> or <c>EF.MultipleParameters</c>.
    /// </summary>
    private const ParameterTranslationMode CollectionMode = ParameterTranslationMode.Parameter;

    /// <summary>
    /// Registers the context for the configured provider. Settings are read when first needed (after the host is
    /// built), so every configuration source, test hosts included, is in place; start-up validates them before serving.
    /// </summary>
    public static IServiceCollection AddMeridianDatabase(this IServiceCollection services)
    {
        services.AddSingleton(sp => DatabaseSettings.Load(sp.GetRequiredService<IConfiguration>()));
        services.AddScoped<TenantScope>();
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<OutboxSignalInterceptor>();
        services.AddHostedService<SqliteCheckpointer>();
        services.AddPooledDbContextFactory<SqliteMeridianDb>((sp, o) => o
            .UseSqlite(sp.GetRequiredService<DatabaseSettings>().ConnectionString, sqlite => sqlite.UseParameterizedCollectionMode(CollectionMode))
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(sp.GetRequiredService<OutboxSignalInterceptor>(), SqliteBusyTimeout.Instance));
        services.AddPooledDbContextFactory<PostgresMeridianDb>((sp, o) => o
            .UseNpgsql(sp.GetRequiredService<DatabaseSettings>().ConnectionString, npgsql => npgsql.UseParameterizedCollectionMode(CollectionMode))
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(sp.GetRequiredService<OutboxSignalInterceptor>()));
        // One context per scope, rented from the pool and disposed (returned) with the scope.
        services.AddScoped<MeridianDb>(sp =>
        {
            MeridianDb db = sp.GetRequiredService<DatabaseSettings>().Provider == DatabaseProvider.Sqlite
                ? sp.GetRequiredService<IDbContextFactory<SqliteMeridianDb>>().CreateDbContext()
                : sp.GetRequiredService<IDbContextFactory<PostgresMeridianDb>>().CreateDbContext();
            return db.Rent(sp.GetRequiredService<TenantScope>(), sp.GetRequiredService<ILogger<MeridianDb>>());
        });
        return services;
    }

    /// <summary>Applies pending migrations; an unreachable or refused database becomes one clear line.</summary>
    public static async Task MigrateAsync(IServiceProvider services, CancellationToken ct = default)
    {
        var settings = services.GetRequiredService<DatabaseSettings>();
        if (settings.Provider == DatabaseProvider.Sqlite
            && Path.GetDirectoryName(Path.GetFullPath(new SqliteConnectionStringBuilder(settings.ConnectionString).DataSource)) is { Length: > 0 } folder)
            Directory.CreateDirectory(folder);
        await using var scope = services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        try
        {
            // Probe on the raw connection first: EF would log the failure with a stack trace before we could say it in one line.
            var connection = db.Database.GetDbConnection();
            await connection.OpenAsync(ct);
            await connection.CloseAsync();
            await db.Database.MigrateAsync(ct);
            // WAL lets readers run beside the single writer; the setting is stored in the file, so once is enough.
            if (settings.Provider == DatabaseProvider.Sqlite) await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
        }
        catch (Exception ex) when (ex is DbException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException { InnerException: DbException })
        {
            var reason = (ex.InnerException as DbException ?? ex).Message.Split('\n')[0];
            throw new StartupException($"cannot use the {settings.Describe()}: {reason}", ex);
        }
    }
}

/// <summary>
/// Lets SQLite itself wait for the write lock (retrying within milliseconds) instead of failing at once: the driver's
/// own retry sleeps 150 ms between attempts, so a writer that meets a busy database (ingestion, the projector, the
/// import worker and staff writes all write) lost every race to writers that retry sooner, and could time out.
/// </summary>
internal sealed class SqliteBusyTimeout : DbConnectionInterceptor
{
    public static readonly SqliteBusyTimeout Instance = new();
    /// <summary>
    /// Also: a commit checkpoints the log itself only once it is past 10,000 pages (40 MB); <see cref="SqliteCheckpointer"/>
    /// does it every second beside the writers.
    /// </summary>
    private const string Pragma = "PRAGMA busy_timeout = 30000; PRAGMA wal_autocheckpoint = 10000;";

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
    {
        using var command = connection.CreateCommand();
        command.CommandText = Pragma;
        command.ExecuteNonQuery();
    }

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = Pragma;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>
/// Wakes this node's dispatcher when a unit of work that wrote domain events commits, so in-process delivery does
/// not wait for a poll (and commits without events, such as ingestion, do not wake it for nothing).
/// </summary>
internal sealed class OutboxSignalInterceptor(OutboxSignal signal) : ISaveChangesInterceptor, IDbTransactionInterceptor
{
    public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is MeridianDb db && db.ChangeTracker.Entries<OutboxMessage>().Any())
        {
            if (db.Database.CurrentTransaction is null) signal.Notify();
            else db.OutboxPending = true;
        }
        return ValueTask.FromResult(result);
    }

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is MeridianDb { OutboxPending: true } db)
        {
            db.OutboxPending = false;
            signal.Notify();
        }
        return Task.CompletedTask;
    }
}
