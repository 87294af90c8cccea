using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Meridian.Tests.Platform;

/// <summary>A host on PostgreSQL whose connection pool is three connections that time out after two seconds.</summary>
public sealed class TinyPoolPostgresApp : PostgresApp
{
    public const int PoolSize = 3;

    protected override async Task<string> CreateDatabaseAsync() =>
        new NpgsqlConnectionStringBuilder(await base.CreateDatabaseAsync()) { MaxPoolSize = PoolSize, Timeout = 2 }.ConnectionString;
}

/// <summary>
/// When the database cannot serve a request (here: every pooled connection is taken), the client gets a 503 problem
/// with <c>Retry-After</c> and nothing is changed, not a 500; once connections are free again the same request works.
/// PostgreSQL only: the pool is Npgsql's (SQLite's busy timeout, the same mapping, takes 30 s to reach).
/// </summary>
public sealed class DatabaseUnavailableTests(TinyPoolPostgresApp app) : IClassFixture<TinyPoolPostgresApp>
{
    [Fact]
    public async Task A_request_that_gets_no_connection_in_time_is_a_503_to_retry_and_changes_nothing()
    {
        using var client = app.ClientWithKey(MeridianAppFixture.AdminKey, "demo");
        await client.GetAsync("/api/v1/sources").ReadAsync<object>(); // the key is cached: only the endpoint needs the database

        var held = new List<AsyncServiceScope>();
        try
        {
            for (var i = 0; i < TinyPoolPostgresApp.PoolSize; i++)
            {
                var scope = app.Services.CreateAsyncScope();
                held.Add(scope);
                scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
                await scope.ServiceProvider.GetRequiredService<MeridianDb>().Database.OpenConnectionAsync();
            }

            using var refused = await client.PostAsJsonAsync("/api/v1/sources", new { name = "while-busy", channel = "pos" });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("1", refused.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(ProblemTypes.Unavailable, problem.GetProperty("type").GetString());
        }
        finally
        {
            foreach (var scope in held) await scope.DisposeAsync();
        }

        var sources = await client.GetAsync("/api/v1/sources").ReadAsync<JsonElement>();
        Assert.DoesNotContain("while-busy", sources.GetRawText());
        await client.PostAsJsonAsync("/api/v1/sources", new { name = "after-busy", channel = "pos" }).ReadAsync<object>();
    }
}
