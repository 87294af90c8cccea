using System.Collections.Concurrent;
using System.Net;

namespace Meridian.Tests.Infrastructure;

/// <summary>A real HTTP endpoint that records every webhook call it receives (and can be told to fail the first ones).</summary>
public sealed class WebhookReceiver : IDisposable
{
    public sealed record Call(string Id, string Timestamp, string Signature, string Body);

    private readonly HttpListener listener = new();
    private int failuresLeft;

    public ConcurrentQueue<Call> Calls { get; } = new();
    public string Url { get; }

    public WebhookReceiver(int failFirst = 0)
    {
        failuresLeft = failFirst;
        Url = $"http://127.0.0.1:{PostgresServer.FreePort()}/hooks/";
        listener.Prefixes.Add(Url);
        listener.Start();
        _ = Task.Run(LoopAsync);
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
            using var reader = new StreamReader(context.Request.InputStream);
            var body = await reader.ReadToEndAsync();
            if (Interlocked.Decrement(ref failuresLeft) >= 0)
            {
                context.Response.StatusCode = 503;
            }
            else
            {
                Calls.Enqueue(new Call(context.Request.Headers["webhook-id"] ?? "", context.Request.Headers["webhook-timestamp"] ?? "",
                    context.Request.Headers["webhook-signature"] ?? "", body));
                context.Response.StatusCode = 204;
            }
            context.Response.Close();
        }
    }

    public async Task WaitForAsync(Func<IReadOnlyCollection<Call>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(Calls.ToArray()))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Webhook calls so far: {Calls.Count}");
            await Task.Delay(50);
        }
    }

    public void Dispose() => listener.Close();
}
