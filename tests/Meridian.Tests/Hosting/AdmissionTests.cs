using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Hosting;

/// <summary>
/// Admission control on a host that works on one API request at a time and lets others wait 5 s: a request is held
/// in the middle of its body (the endpoint is reading it), so the host is busy for as long as the test wants.
/// The held request is written on a socket by hand, so the server has its headers while its body is still to come.
/// </summary>
public abstract class AdmissionTests(MeridianAppFixture app)
{
    [Fact]
    public async Task A_request_that_waits_past_the_queue_timeout_gets_503_with_Retry_After_and_changes_nothing()
    {
        var (held, release) = await HoldTheOnlyTurnAsync();

        var slug = "b-" + Guid.NewGuid().ToString("N")[..12];
        using var turnedAway = await app.Admin.PostAsJsonAsync("/api/v1/brands", new { slug, name = "Turned away" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, turnedAway.StatusCode);
        Assert.Equal("1", turnedAway.Headers.GetValues("Retry-After").Single());
        await Task.FromResult(turnedAway).ProblemAsync(503, ProblemTypes.Unavailable);

        release.SetResult();
        Assert.Equal(HttpStatusCode.Created, await held);
        var brands = await app.Admin.GetFromJsonAsync<JsonElement>("/api/v1/brands", MeridianAppFixture.Json);
        Assert.DoesNotContain(brands.EnumerateArray(), b => b.GetProperty("slug").GetString() == slug);
        Assert.Equal(0, Admission.Running);
    }

    [Fact]
    public async Task A_waiting_request_is_served_when_the_running_one_finishes_within_the_timeout()
    {
        var (held, release) = await HoldTheOnlyTurnAsync();

        var waiting = app.Admin.GetAsync("/api/v1/brands");
        await WaitUntilAsync(() => Admission.Waiting == 1);
        Assert.False(waiting.IsCompleted);
        release.SetResult();

        using (var served = await waiting) Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HttpStatusCode.Created, await held);
    }

    [Fact]
    public async Task The_tracking_API_and_health_checks_are_not_held_back_by_busy_API_requests()
    {
        var (held, release) = await HoldTheOnlyTurnAsync();
        try
        {
            using var tracking = app.WriteKeyClient(MeridianAppFixture.WriteKey);
            using var tracked = await tracking.PostAsJsonAsync("/v1/track", new { userId = "admission-" + Guid.NewGuid().ToString("N"), @event = "Checked In" });
            Assert.Equal(HttpStatusCode.OK, tracked.StatusCode);
            using var live = await app.CreateClient().GetAsync("/health/live");
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.Equal(1, Admission.Running);
        }
        finally
        {
            release.SetResult();
            Assert.Equal(HttpStatusCode.Created, await held);
        }
    }

    private Admission Admission => app.Services.GetRequiredService<Admission>();

    /// <summary>
    /// Starts creating a brand over a socket of its own, its body stopped after the first byte until released, and
    /// returns once that request holds the only turn; the task gives the response's status code.
    /// </summary>
    private async Task<(Task<HttpStatusCode> Held, TaskCompletionSource Release)> HoldTheOnlyTurnAsync()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = SendHeldAsync(release.Task);
        await WaitUntilAsync(() => Admission.Running == 1 || held.IsCompleted);
        Assert.False(held.IsCompleted, "the held request finished before it was released");
        return (held, release);
    }

    private async Task<HttpStatusCode> SendHeldAsync(Task release)
    {
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(uri.Host, uri.Port);
        var stream = socket.GetStream();
        var body = JsonSerializer.SerializeToUtf8Bytes(new { slug = "b-" + Guid.NewGuid().ToString("N")[..12], name = "Held" });
        var head = $"POST /api/v1/brands HTTP/1.1\r\nHost: {uri.Authority}\r\nAuthorization: Bearer {MeridianAppFixture.AdminKey}\r\n" +
                   $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head).Concat(body.Take(1)).ToArray());
        await release;
        await stream.WriteAsync(body.AsMemory(1));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var status = await reader.ReadLineAsync() ?? "";
        return (HttpStatusCode)int.Parse(status.Split(' ')[1]);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the admission state");
            await Task.Delay(10);
        }
    }
}

/// <summary>Hosts that work on one API request at a time and let others wait 5 s, on a real port.</summary>
public sealed class OneAtATimeSqliteApp : SqliteApp
{
    public OneAtATimeSqliteApp() => UseKestrel(PostgresServer.FreePort());

    protected override IEnumerable<KeyValuePair<string, string>> Settings => OneAtATime.Settings;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        OneAtATime.LetBodiesStall(builder);
    }
}

public sealed class OneAtATimePostgresApp : PostgresApp
{
    public OneAtATimePostgresApp() => UseKestrel(PostgresServer.FreePort());

    protected override IEnumerable<KeyValuePair<string, string>> Settings => OneAtATime.Settings;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        OneAtATime.LetBodiesStall(builder);
    }
}

internal static class OneAtATime
{
    public static readonly KeyValuePair<string, string>[] Settings =
        [new("Meridian:Admission:MaxConcurrentRequests", "1"), new("Meridian:Admission:QueueTimeout", "00:00:05")];

    /// <summary>
    /// Kestrel answers 408 to a body slower than 240 bytes/s once 5 s have passed; the held request's body stops for as
    /// long as another request waits out the 5 s queue timeout, so on a loaded machine it crossed that line (seen in CI).
    /// </summary>
    public static void LetBodiesStall(IWebHostBuilder builder) =>
        builder.ConfigureServices(s => s.Configure<KestrelServerOptions>(o => o.Limits.MinRequestBodyDataRate = null));
}

public sealed class AdmissionTestsOnSqlite(OneAtATimeSqliteApp app) : AdmissionTests(app), IClassFixture<OneAtATimeSqliteApp>;

public sealed class AdmissionTestsOnPostgres(OneAtATimePostgresApp app) : AdmissionTests(app), IClassFixture<OneAtATimePostgresApp>;
