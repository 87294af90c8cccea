using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Meridian.Bench;

/// <summary>
/// Messaging, per database: M SMS messages queued through <c>POST /api/v1/messaging/messages</c> (16 clients) with the
/// delivery worker off, then the server restarted with it on and timed until an SMS gateway listener (in this process,
/// answering at once) has received all M: messages sent per second by one node, each one leased, checked (profile,
/// consent, policy), rendered with the customer's traits and handed over HTTP. Also checks each was sent exactly once.
/// </summary>
internal static class MessagingBench
{
    private const string Queue = "messaging: messages queued over HTTP /s (16 clients)";
    private const string Send = "messaging: queued → sent through the SMS gateway /s (one node)";
    private const string Exact = "messaging: each message reached the gateway exactly once";

    public static async Task SqliteAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("meridian-bench-messaging-").FullName;
        try
        {
            var database = $"Data Source={Path.Combine(dir, "messaging.db")}";
            await RunAsync(serverDll, Provider.Sqlite, database, dir, options, report, async () =>
            {
                var connection = new SqliteConnection(database + ";Pooling=False");
                await connection.OpenAsync(ct);
                return (DbConnection)connection;
            }, ct);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    public static async Task PostgresAsync(string serverDll, BenchOptions options, Report report, CancellationToken ct)
    {
        await using var cluster = await PostgresCluster.StartAsync(ct);
        if (cluster is null)
        {
            report.Note("PostgreSQL: messaging skipped: no server (see PostgreSQL above).");
            return;
        }
        var database = await cluster.CreateDatabaseAsync("bench_messaging", ct);
        await RunAsync(serverDll, Provider.Postgres, database, Path.GetTempPath(), options, report, async () =>
        {
            var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(ct);
            return (DbConnection)connection;
        }, ct);
    }

    private static async Task RunAsync(string serverDll, Provider provider, string database, string dir, BenchOptions options, Report report,
        Func<Task<DbConnection>> open, CancellationToken ct)
    {
        using var gateway = new Gateway();
        var messages = options.Quick ? 2_000 : 20_000;
        long[] profiles;
        await using (var server = await ServerProcess.StartAsync(serverDll, provider, database, dir, ct,
                         new Dictionary<string, string> { ["Meridian__Messaging__Delivery__Enabled"] = "false" }))
        {
            using var http = server.AdminClient("demo", 16);
            Console.WriteLine($"{provider.Title()}: messaging: 1,000 customers with phones through POST /v1/batch");
            profiles = await OffersBench.CustomersAsync(server, http, 1_000, _ => open(), ct, i => new { phone = $"+86139{i:D8}", name = $"Customer {i}" });
            (await http.PutAsJsonAsync("/api/v1/messaging/channels/sms", new { settings = new { gatewayUrl = gateway.Url, token = "bench-gateway-token" } }, ct)).EnsureSuccessStatusCode();
            using var created = await http.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "bench", channel = "sms", body = "Hi {{ name }}, your order {{ event.order }} has shipped." }, ct);
            var template = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id").GetInt64();

            Console.WriteLine($"{provider.Title()}: messaging: queueing {messages:N0} messages");
            var started = Stopwatch.GetTimestamp();
            await Parallel.ForAsync(0, messages, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct }, async (i, token) =>
            {
                var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messaging/messages")
                {
                    Content = JsonContent.Create(new { profileId = profiles[i % profiles.Length], channel = "sms", templateId = template, purpose = "service", @event = new { order = $"A-{i}" } }),
                };
                request.Headers.Add("Idempotency-Key", $"bench-{i}");
                using var response = await http.SendAsync(request, token);
                if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"queueing answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(token)}");
            });
            report.Set(Queue, provider, Report.Rate(messages / Stopwatch.GetElapsedTime(started).TotalSeconds));
        }

        Console.WriteLine($"{provider.Title()}: messaging: sending {messages:N0} messages");
        await using (var server = await ServerProcess.StartAsync(serverDll, provider, database, dir, ct))
        {
            var started = Stopwatch.GetTimestamp();
            while (gateway.Received.Count < messages)
            {
                if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromMinutes(15)) throw new TimeoutException($"only {gateway.Received.Count:N0} sent in 15 minutes");
                await Task.Delay(20, ct);
            }
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            report.Set(Send, provider, $"{Report.Rate(messages / seconds)} ({messages:N0} in {seconds:0.0} s)");
            await Task.Delay(1000, ct); // a duplicate, if any, would arrive now
            var references = gateway.Received.ToArray();
            report.Set(Exact, provider, references.Length == messages && references.Distinct().Count() == messages ? "yes" : $"NO: {references.Length:N0} calls, {references.Distinct().Count():N0} distinct");
        }
    }

    /// <summary>An SMS gateway that accepts every message at once and keeps its reference.</summary>
    private sealed class Gateway : IDisposable
    {
        private readonly HttpListener listener = new();
        public ConcurrentQueue<string> Received { get; } = new();
        public string Url { get; }

        public Gateway()
        {
            Url = $"http://127.0.0.1:{PostgresCluster.FreePort()}/sms/";
            listener.Prefixes.Add(Url);
            listener.Start();
            for (var i = 0; i < 8; i++) _ = Task.Run(LoopAsync);
        }

        private async Task LoopAsync()
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception) when (!listener.IsListening)
                {
                    return;
                }
                using var body = await System.Text.Json.JsonDocument.ParseAsync(context.Request.InputStream);
                Received.Enqueue(body.RootElement.GetProperty("reference").GetString()!);
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/json";
                await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes("{}"));
                context.Response.Close();
            }
        }

        public void Dispose() => listener.Close();
    }
}
