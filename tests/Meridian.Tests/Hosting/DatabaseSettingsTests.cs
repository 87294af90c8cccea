using Meridian.Hosting;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace Meridian.Tests.Hosting;

/// <summary>What <c>Meridian:Database</c> becomes: the PostgreSQL defaults Meridian adds, and what a given connection string keeps.</summary>
public sealed class DatabaseSettingsTests
{
    private static DatabaseSettings Load(string provider, string connectionString) => DatabaseSettings.Load(new ConfigurationBuilder()
        .AddInMemoryCollection(new Dictionary<string, string?> { ["Meridian:Database:Provider"] = provider, ["Meridian:Database:ConnectionString"] = connectionString })
        .Build());

    [Fact]
    public void A_PostgreSQL_connection_string_gets_prepared_statements_and_no_reset_on_close_unless_it_says_otherwise()
    {
        var added = new NpgsqlConnectionStringBuilder(Load("Postgres", "Host=db;Database=meridian;Username=m").ConnectionString);
        Assert.Equal(200, added.MaxAutoPrepare);
        Assert.True(added.NoResetOnClose);
        Assert.Equal("db", added.Host);

        var given = new NpgsqlConnectionStringBuilder(Load("Postgres", "Host=db;Database=meridian;Username=m;Max Auto Prepare=0;No Reset On Close=false").ConnectionString);
        Assert.Equal(0, given.MaxAutoPrepare);
        Assert.False(given.NoResetOnClose);
    }

    [Fact]
    public void A_SQLite_connection_string_is_kept_as_given()
    {
        Assert.Equal("Data Source=x.db", Load("Sqlite", "Data Source=x.db").ConnectionString);
    }
}
