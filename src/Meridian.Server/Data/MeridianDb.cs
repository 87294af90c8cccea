using System.Linq.Expressions;
using Meridian.Loyalty.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Data;

/// <summary>
/// The one database context of the host. Each module maps its own tables with <c>IEntityTypeConfiguration</c>
/// classes in its <c>Data/</c> folder; this class only adds what crosses modules: the tenant filter.
/// Two subclasses pin the provider so that each keeps its own migrations.
/// </summary>
public abstract class MeridianDb(DbContextOptions options) : DbContext(options)
{
    private TenantScope scope = new();

    // Read through properties so EF parameterises them per query instead of baking them into the cached model.
    private bool ScopeUnrestricted => scope.Unrestricted;
    private long[] ScopeBrandIds => scope.ReadableBrandIds;

    internal TenantScope Scope => scope;

    /// <summary>Domain events were saved inside the open transaction: wake the dispatcher when it commits.</summary>
    internal bool OutboxPending { get; set; }

    /// <summary>
    /// Contexts are pooled (creating one per request cost more than the query it ran): each rental gets the
    /// request's scope and starts with no deferred rows left over from a failed unit of work.
    /// </summary>
    internal MeridianDb Rent(TenantScope requestScope, ILogger<MeridianDb> log)
    {
        scope = requestScope;
        logger = log;
        rented = true;
        afterKeysAssigned.Clear();
        sharedOwners.Clear();
        OutboxPending = false;
        return this;
    }

    private ILogger<MeridianDb>? logger;
    private bool rented;

    /// <summary>
    /// The backstop for <see cref="Hosting.OpenedConnection"/>: a pooled context goes back to the pool with its
    /// connection, so one a unit of work opened and left open would stay out of the driver's pool for good (and a
    /// context the pool then discards never gives it back). It is closed here, with a warning naming the bug.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        if (rented)
        {
            rented = false;
            if (Database.CurrentTransaction is { } transaction) await transaction.DisposeAsync();
            var connection = Database.GetDbConnection();
            if (connection.State != System.Data.ConnectionState.Closed)
            {
                logger?.LogWarning("A unit of work left its database connection open; it is closed before the context goes back to the pool");
                for (var i = 0; i < 100 && connection.State != System.Data.ConnectionState.Closed; i++) await Database.CloseConnectionAsync();
                if (connection.State != System.Data.ConnectionState.Closed) await connection.CloseAsync();
            }
        }
        await base.DisposeAsync();
    }

    public override void Dispose()
    {
        if (rented)
        {
            rented = false;
            Database.CurrentTransaction?.Dispose();
            var connection = Database.GetDbConnection();
            if (connection.State != System.Data.ConnectionState.Closed)
            {
                logger?.LogWarning("A unit of work left its database connection open; it is closed before the context goes back to the pool");
                for (var i = 0; i < 100 && connection.State != System.Data.ConnectionState.Closed; i++) Database.CloseConnection();
                if (connection.State != System.Data.ConnectionState.Closed) connection.Close();
            }
        }
        base.Dispose();
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // Every timestamp is UTC; SQLite forgets the kind, so it is restored on read and JSON always carries the 'Z'.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
    }

    private sealed class UtcConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Local ? v.ToUniversalTime() : DateTime.SpecifyKind(v, DateTimeKind.Utc), v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(MeridianDb).Assembly, t => t.Namespace?.StartsWith("Meridian.", StringComparison.Ordinal) == true);
        foreach (var entity in modelBuilder.Model.GetEntityTypes().Where(e => typeof(ITenantOwned).IsAssignableFrom(e.ClrType)))
        {
            var name = typeof(IProgrammeShared).IsAssignableFrom(entity.ClrType) ? nameof(SharedProgrammeFilter) : nameof(TenantFilter);
            var filter = typeof(MeridianDb).GetMethod(name, System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
                .MakeGenericMethod(entity.ClrType).Invoke(this, null);
            modelBuilder.Entity(entity.ClrType).HasQueryFilter((LambdaExpression)filter!);
        }
    }

    private Expression<Func<T, bool>> TenantFilter<T>() where T : ITenantOwned =>
        e => ScopeUnrestricted || ScopeBrandIds.Contains(e.TenantId);

    /// <summary>
    /// A loyalty programme's rows belong to its owner brand and are also readable by the brands a shared programme is
    /// open to (a brand takes part in one programme, so the owner's rows are that programme's).
    /// </summary>
    private Expression<Func<T, bool>> SharedProgrammeFilter<T>() where T : IProgrammeShared =>
        e => ScopeUnrestricted || ScopeBrandIds.Contains(e.TenantId)
            || Set<LoyaltyProgrammeBrand>().Any(p => p.OwnerBrandId == e.TenantId && ScopeBrandIds.Contains(p.BrandId));

    /// <summary>Owner brands of shared programmes this unit of work was found to take part in (the write guard's cache).</summary>
    private readonly HashSet<long> sharedOwners = [];

    private readonly List<Action> afterKeysAssigned = [];

    /// <summary>
    /// Adds rows that need the database-generated ids of this unit of work (an audit entry or an event naming a
    /// new row). <see cref="SaveChangesAsync(bool, CancellationToken)"/> then saves twice in one transaction, so the
    /// change and the rows describing it still commit together.
    /// </summary>
    internal void AfterKeysAssigned(Action addRows) => afterKeysAssigned.Add(addRows);

    public override async Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        await GuardTenantWritesAsync(cancellationToken);
        if (afterKeysAssigned.Count == 0) return await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);

        if (!ChangeTracker.Entries().Any(e => e.State == EntityState.Added))
        {
            await RunAfterKeysAssignedAsync(cancellationToken);
            return await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
        }

        var ownTransaction = Database.CurrentTransaction is null ? await Database.BeginTransactionAsync(cancellationToken) : null;
        try
        {
            var written = await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
            await RunAfterKeysAssignedAsync(cancellationToken);
            written += await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
            if (ownTransaction is not null) await ownTransaction.CommitAsync(cancellationToken);
            return written;
        }
        finally
        {
            if (ownTransaction is not null) await ownTransaction.DisposeAsync();
        }
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess) =>
        throw new NotSupportedException("Use SaveChangesAsync: Meridian does no synchronous database writes.");

    private async Task RunAfterKeysAssignedAsync(CancellationToken ct)
    {
        var pending = afterKeysAssigned.ToArray();
        afterKeysAssigned.Clear();
        foreach (var add in pending) add();
        await GuardTenantWritesAsync(ct);
    }

    /// <summary>
    /// Defence in depth: a write to a brand outside the scope is a bug, never a client's choice. A shared loyalty
    /// programme's rows (owned by its owner brand) may be written by the brands the programme is open to.
    /// </summary>
    private async Task GuardTenantWritesAsync(CancellationToken ct)
    {
        if (scope.Unrestricted) return;
        foreach (var entry in ChangeTracker.Entries<ITenantOwned>().ToList())
        {
            if (entry.State is EntityState.Added or EntityState.Modified or EntityState.Deleted
                && !scope.BrandIds.Contains(entry.Entity.TenantId)
                && !(entry.Entity is IProgrammeShared && await SharesProgrammeOfAsync(entry.Entity.TenantId, ct)))
                throw new InvalidOperationException($"Refusing to write {entry.Entity.GetType().Name} of brand {entry.Entity.TenantId} outside the request's brands.");
        }
    }

    private async Task<bool> SharesProgrammeOfAsync(long ownerBrandId, CancellationToken ct)
    {
        if (sharedOwners.Contains(ownerBrandId)) return true;
        var brands = scope.BrandIds;
        if (!await Set<LoyaltyProgrammeBrand>().AnyAsync(p => p.OwnerBrandId == ownerBrandId && brands.Contains(p.BrandId), ct)) return false;
        sharedOwners.Add(ownerBrandId);
        return true;
    }
}

public sealed class SqliteMeridianDb(DbContextOptions<SqliteMeridianDb> options) : MeridianDb(options);

public sealed class PostgresMeridianDb(DbContextOptions<PostgresMeridianDb> options) : MeridianDb(options)
{
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        base.OnModelCreating(modelBuilder);
        // Name search takes a prefix as a range of the index, which needs code point order (SQLite's BINARY already is).
        modelBuilder.Entity<Profiles.Data.Profile>().Property(p => p.SearchName).UseCollation("C");
        // Every posting rewrites its member's row (balance, version). Packed full, a page has no room for the new
        // version, so each update also wrote all five of the table's indexes (17 buffers a row, 10-15 ms for 500
        // members); with room left on the page the update stays on it and skips them (1.5-2 ms).
        modelBuilder.Entity<Loyalty.Data.LoyaltyMember>().HasStorageParameter("fillfactor", 70);
    }
}
