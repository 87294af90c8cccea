using System.Net.Http.Headers;

namespace Meridian.Tests.Infrastructure;

/// <summary>Two real server processes (<c>node-a</c>, <c>node-b</c>) on one fresh PostgreSQL database; disposing stops both.</summary>
public sealed class TwoNodes : IAsyncDisposable
{
    public const string AdminKey = "mdn_sk_TwoNodeAdmin00000000000000000000";

    private TwoNodes(string database, ServerProcess a, ServerProcess b) => (Database, A, B) = (database, a, b);

    public string Database { get; }
    public ServerProcess A { get; }
    public ServerProcess B { get; }

    /// <summary>Starts both nodes, one after the other; <paramref name="settings"/> adds each node's own settings by its name.</summary>
    public static async Task<TwoNodes> StartAsync(string databasePrefix, Func<string, IEnumerable<KeyValuePair<string, string>>> settings)
    {
        var database = await PostgresServer.CreateDatabaseAsync(databasePrefix);
        Dictionary<string, string> Settings(string node)
        {
            var all = new Dictionary<string, string>
            {
                ["Meridian:Database:Provider"] = "Postgres",
                ["Meridian:Database:ConnectionString"] = database,
                ["Meridian:Bootstrap:AdminApiKey"] = AdminKey,
                ["Meridian:RateLimit:PermitsPerSecond"] = "100000",
                ["Meridian:RateLimit:Burst"] = "100000",
            };
            foreach (var (key, value) in settings(node)) all[key] = value;
            return all;
        }
        var a = ServerProcess.Start(Settings("node-a"));
        await a.WaitUntilReadyAsync();
        var b = ServerProcess.Start(Settings("node-b"));
        await b.WaitUntilReadyAsync();
        return new TwoNodes(database, a, b);
    }

    /// <summary>What both nodes logged (warnings and errors), for a failure message: a 500 on a node says why only there.</summary>
    public string Output => $"--- node-a ---\n{A.Output}\n--- node-b ---\n{B.Output}";

    /// <summary>A client of one node with the admin key, acting on the demo brand.</summary>
    public static HttpClient Client(ServerProcess node)
    {
        var client = new HttpClient { BaseAddress = node.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        client.DefaultRequestHeaders.Add("Meridian-Brand", "demo");
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await B.DisposeAsync();
        await A.DisposeAsync();
    }
}
