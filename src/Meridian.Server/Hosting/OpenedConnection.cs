using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Meridian.Hosting;

/// <summary>
/// A context's connection opened for raw commands, closed again when disposed. Contexts are pooled and keep their
/// connection across rentals, so a connection opened and never closed stays out of the driver's pool for good: on
/// PostgreSQL a flash sale then exhausted the pool and hung. Whoever opens, closes: <c>await using var open = await
/// db.Database.OpenedAsync(ct);</c>. Nested opens are counted by EF, so only the outermost close closes.
/// </summary>
public readonly struct OpenedConnection(DatabaseFacade database) : IAsyncDisposable
{
    public DbConnection Connection => database.GetDbConnection();

    public ValueTask DisposeAsync() => new(database.CloseConnectionAsync());
}

public static class OpenedConnections
{
    public static async Task<OpenedConnection> OpenedAsync(this DatabaseFacade database, CancellationToken ct)
    {
        await database.OpenConnectionAsync(ct);
        return new OpenedConnection(database);
    }
}
