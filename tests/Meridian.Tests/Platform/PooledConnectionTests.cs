using System.Data;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>
/// Contexts are pooled and keep their connection across rentals. A connection a unit of work opened and left open once
/// stayed out of the driver's pool for good: the PostgreSQL flash sale exhausted the pool (30) and hung.
/// </summary>
public abstract class PooledConnectionTests(MeridianAppFixture app)
{
    /// <summary>Three times the test pool's size (30 connections on PostgreSQL).</summary>
    private const int UnitsOfWork = 90;

    [Fact]
    public async Task A_connection_left_open_by_a_unit_of_work_is_closed_with_its_scope_and_no_later_rental_inherits_it()
    {
        for (var i = 0; i < UnitsOfWork; i++)
        {
            await using var scope = app.Services.CreateAsyncScope();
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
            var connection = db.Database.GetDbConnection();

            // A query opens the connection and closes it again, unless an earlier rental of this pooled context left
            // EF's open count above zero: then the connection would stay open after every query of this unit of work.
            Assert.Equal(1, await db.Database.SqlQueryRaw<int>("SELECT 1 AS \"Value\"").SingleAsync());
            Assert.Equal(ConnectionState.Closed, connection.State);

            await db.Database.OpenConnectionAsync(); // and never closed: the bug the backstop is for
            await db.Database.OpenConnectionAsync();
            Assert.Equal(1, await db.Database.SqlQueryRaw<int>("SELECT 1 AS \"Value\"").SingleAsync());
            Assert.Equal(ConnectionState.Open, connection.State);
            await scope.DisposeAsync();
            Assert.Equal(ConnectionState.Closed, connection.State);
        }
    }

    [Fact]
    public async Task An_opened_connection_is_closed_by_the_outermost_of_nested_opens()
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        await using (var outer = await db.Database.OpenedAsync(default))
        {
            await using (var inner = await db.Database.OpenedAsync(default))
                Assert.Equal(ConnectionState.Open, inner.Connection.State);
            Assert.Equal(ConnectionState.Open, outer.Connection.State);
        }
        Assert.Equal(ConnectionState.Closed, db.Database.GetDbConnection().State);
    }
}

public sealed class PooledConnectionTestsOnSqlite(SqliteApp app) : PooledConnectionTests(app), IClassFixture<SqliteApp>;

public sealed class PooledConnectionTestsOnPostgres(PostgresApp app) : PooledConnectionTests(app), IClassFixture<PostgresApp>;
