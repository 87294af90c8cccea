using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Hosting;

/// <summary>The real server process: first run on an empty database, configured keys, clear one-line start-up errors.</summary>
public sealed class StartupTests
{
    private static string NewSqliteFile() => Path.Combine(Path.GetTempPath(), "meridian-tests", Guid.NewGuid().ToString("N"), "meridian.db");

    [Fact]
    public async Task A_first_run_creates_the_demo_group_prints_the_keys_once_and_uses_configured_keys()
    {
        const string admin = "mdn_sk_ConfiguredAdmin000000000000000000";
        const string write = "mdn_wk_ConfiguredWrite000000000000000000";
        var settings = new Dictionary<string, string>
        {
            ["Meridian:Database:ConnectionString"] = $"Data Source={NewSqliteFile()}",
            ["Meridian:Bootstrap:AdminApiKey"] = admin,
            ["Meridian:Bootstrap:WriteKey"] = write,
        };
        await using (var first = ServerProcess.Start(settings))
        {
            await first.WaitUntilReadyAsync();
            Assert.Contains(admin, first.Output);
            Assert.Contains(write, first.Output);

            using var http = new HttpClient { BaseAddress = first.BaseAddress };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            var group = JsonDocument.Parse(await http.GetStringAsync("/api/v1/group")).RootElement;
            Assert.Equal("Demo Group", group.GetProperty("name").GetString());
            var brands = group.GetProperty("brands").EnumerateArray().ToList();
            Assert.Equal(["demo", "demo-outlet"], brands.Select(b => b.GetProperty("slug").GetString()!).ToArray());
            Assert.All(brands, b =>
            {
                Assert.Equal("CN", b.GetProperty("defaultPhoneRegion").GetString());
                Assert.Equal("Asia/Shanghai", b.GetProperty("timeZone").GetString());
                Assert.Equal("CNY", b.GetProperty("currency").GetString());
            });
            http.DefaultRequestHeaders.Add("Meridian-Brand", "demo");
            var sources = JsonDocument.Parse(await http.GetStringAsync("/api/v1/sources")).RootElement.GetProperty("items");
            Assert.Equal("default", sources[0].GetProperty("name").GetString());
        }

        await using var second = ServerProcess.Start(settings);
        await second.WaitUntilReadyAsync();
        Assert.DoesNotContain(admin, second.Output);
    }

    [Fact]
    public async Task An_unknown_provider_stops_the_server_with_one_clear_line()
    {
        await using var server = ServerProcess.Start(new Dictionary<string, string> { ["Meridian:Database:Provider"] = "Oracle" });
        Assert.Equal(2, await server.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var lines = server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.Contains("Meridian:Database:Provider is 'Oracle'; use 'Sqlite' or 'Postgres'", line);
    }

    [Fact]
    public async Task An_unreachable_database_stops_the_server_with_one_clear_line_without_the_password()
    {
        var port = PostgresServer.FreePort(); // nothing listens there
        await using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["Meridian:Database:Provider"] = "Postgres",
            ["Meridian:Database:ConnectionString"] = $"Host=127.0.0.1;Port={port};Database=meridian;Username=meridian;Password=hunter2;Timeout=3",
        });
        Assert.Equal(2, await server.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"meridian: cannot use the PostgreSQL at 127.0.0.1:{port}/meridian:", line);
        Assert.DoesNotContain("hunter2", server.Output);
    }

    [Fact]
    public async Task The_cli_creates_lists_and_revokes_keys()
    {
        var settings = new Dictionary<string, string> { ["Meridian:Database:ConnectionString"] = $"Data Source={NewSqliteFile()}" };
        await using (var migrate = ServerProcess.Start(settings, ["migrate"]))
            Assert.Equal(0, await migrate.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        string key;
        await using (var create = ServerProcess.Start(settings, ["keys", "create", "--name", "nightly export", "--role", "analyst", "--brand", "demo"]))
        {
            Assert.Equal(0, await create.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            key = create.Output.Split('\n').Single(l => l.StartsWith("mdn_sk_", StringComparison.Ordinal)).Trim();
        }

        await using (var server = ServerProcess.Start(settings))
        {
            await server.WaitUntilReadyAsync();
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var ok = await http.GetAsync("/api/v1/sources");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        await using (var list = ServerProcess.Start(settings, ["keys", "list"]))
        {
            Assert.Equal(0, await list.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            var row = list.Output.Split('\n').Single(l => l.Contains("nightly export"));
            Assert.Contains(key[..12], row);
            Assert.DoesNotContain(key, list.Output);
            var id = row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];

            await using var revoke = ServerProcess.Start(settings, ["keys", "revoke", id]);
            Assert.Equal(0, await revoke.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        await using var after = ServerProcess.Start(settings, ["keys", "list"]);
        Assert.Equal(0, await after.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("revoked", after.Output.Split('\n').Single(l => l.Contains("nightly export")));
    }
}
