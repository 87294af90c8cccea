using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Ingestion;

/// <summary>
/// The official Segment Node SDK (@segment/analytics-node, tests/sdk), unchanged and configured only with Meridian's
/// host and a write key, delivers every message type to a real Meridian server.
/// </summary>
public sealed class SegmentSdkTests
{
    private const string AdminKey = "mdn_sk_SdkTestAdmin0000000000000000000";

    [Fact]
    public async Task The_official_Segment_Node_SDK_delivers_every_message_type_unchanged()
    {
        var sdk = Path.Combine(RepositoryRoot(), "tests", "sdk");
        Assert.True(Directory.Exists(Path.Combine(sdk, "node_modules", "@segment", "analytics-node")),
            $"Run 'npm ci' in {sdk} (./test.sh does) to install the SDK.");

        await using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["Meridian:Database:ConnectionString"] = $"Data Source={Path.Combine(Path.GetTempPath(), "meridian-tests", Guid.NewGuid().ToString("N"), "m.db")}",
            ["Meridian:Bootstrap:AdminApiKey"] = AdminKey,
        });
        await server.WaitUntilReadyAsync();
        using var admin = new HttpClient { BaseAddress = server.BaseAddress };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        admin.DefaultRequestHeaders.Add("Meridian-Brand", "demo");
        var source = await admin.PostAsJsonAsync("/api/v1/sources", new { name = "node-backend", channel = "server" }).ReadAsync<JsonElement>();

        var run = new ProcessStartInfo("node", ["send.mjs"]) { WorkingDirectory = sdk, RedirectStandardOutput = true, RedirectStandardError = true };
        run.Environment["MERIDIAN_HOST"] = server.BaseAddress.ToString().TrimEnd('/');
        run.Environment["MERIDIAN_WRITE_KEY"] = source.GetProperty("writeKey").GetString();
        run.Environment["MERIDIAN_USER_ID"] = "sdk-user-1";
        using var node = Process.Start(run)!;
        var output = await node.StandardOutput.ReadToEndAsync() + await node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync();
        Assert.True(node.ExitCode == 0, output);

        var report = await admin.GetAsync("/api/v1/data-quality?days=1").ReadAsync<JsonElement>();
        var day = report.EnumerateArray().Single(s => s.GetProperty("name").GetString() == "node-backend").GetProperty("days").EnumerateArray().Single();
        Assert.Equal(6, day.GetProperty("accepted").GetInt64());
        Assert.Equal(0, day.GetProperty("rejected").GetInt64());
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Meridian.slnx"))) return dir.FullName;
        throw new InvalidOperationException("Meridian.slnx not found above " + AppContext.BaseDirectory);
    }
}
