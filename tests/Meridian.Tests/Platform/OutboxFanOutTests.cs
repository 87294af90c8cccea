using System.Collections.Concurrent;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Meridian.Tests.Platform;

/// <summary>
/// The dispatcher fans out from a position in the outbox: a message that commits after one with a larger id is not
/// skipped, and two nodes moving the position at once neither skip a message nor move it back. The host's own dispatcher
/// is off: the tests run the rounds, on dispatchers of their own.
/// </summary>
public abstract class OutboxFanOutTests(MeridianAppFixture app)
{
    [Fact]
    public async Task A_message_that_commits_after_one_with_a_larger_id_is_still_fanned_out_once()
    {
        var group = NewGroup();
        var dispatcher = Dispatcher(app.Services, "node-a");
        await using var early = app.Services.CreateAsyncScope();
        var db = SystemDb(early);
        await using (var tx = await db.Database.BeginTransactionAsync())
        {
            var first = Message(group);
            db.Add(first);
            await db.SaveChangesAsync();
            // On SQLite the second transaction waits for the first's write lock (on a thread of its own: SQLite's driver
            // waits synchronously), so ids become visible in order there.
            var second = Task.Run(() => PublishAsync(group, 1));
            if (db.Database.IsNpgsql())
            {
                Assert.True((await second)[0] > first.Id);
                await dispatcher.RunOnceAsync(default);
                Assert.Equal(0, await DeliveriesAsync(group)); // the second waits behind the first, still running
            }
            await tx.CommitAsync();
            await second;
        }

        await FanOutAsync([dispatcher], group, 2);
        Assert.Equal(2, await DeliveriesAsync(group));
    }

    [Fact]
    public async Task A_write_left_open_in_another_database_on_the_server_does_not_hold_the_fan_out_back()
    {
        var group = NewGroup();
        var dispatcher = Dispatcher(app.Services, "node-a");
        await using var elsewhere = await OpenWriteElsewhere.BeginAsync(app.Provider);
        await PublishAsync(group, 2);

        await FanOutAsync([dispatcher], group, 2);
        Assert.Equal(2, await DeliveriesAsync(group));
    }

    [Fact]
    public async Task Two_dispatchers_running_at_once_fan_out_every_message_exactly_once()
    {
        var group = NewGroup();
        OutboxDispatcher[] nodes = [Dispatcher(app.Services, "node-a", fanOutBatch: 7), Dispatcher(app.Services, "node-b", fanOutBatch: 7)];
        using var stop = new CancellationTokenSource();
        var running = nodes.Select(node => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
                if (!await node.RunOnceAsync(default)) await Task.Delay(5);
        })).ToList();

        const int transactions = 40, each = 5;
        await Parallel.ForAsync(0, transactions, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (_, _) => await PublishAsync(group, each));
        await FanOutAsync([], group, transactions * each);
        await stop.CancelAsync();
        await Task.WhenAll(running);

        await using var scope = app.Services.CreateAsyncScope();
        var db = SystemDb(scope);
        var perMessage = await Deliveries(db, group).GroupBy(d => d.MessageId).Select(g => g.Count()).ToListAsync();
        Assert.Equal(transactions * each, perMessage.Count);
        Assert.All(perMessage, count => Assert.Equal(1, count));
        Assert.Equal(0, await OutboxDispatcher.NotFannedOut(db).CountAsync());
    }

    [Fact]
    public async Task A_dispatcher_whose_batch_another_fanned_out_meanwhile_gives_its_round_up_and_leaves_the_position_where_the_other_put_it()
    {
        var group = NewGroup();
        var (slow, fast) = (Dispatcher(app.Services, "node-a"), Dispatcher(app.Services, "node-b"));
        await PublishAsync(group, 3);
        var gate = FanOutProbe.Pause(group);
        var slowRound = Task.Run(() => slow.RunOnceAsync(default));
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the slow node has read the batch and is working out its deliveries

        await FanOutAsync([fast], group, 3);
        var later = await PublishAsync(group, 1);
        await FanOutAsync([fast], group, 4);
        gate.Release.SetResult();
        await slowRound;

        await using var scope = app.Services.CreateAsyncScope();
        var db = SystemDb(scope);
        Assert.Equal(later[0], (await db.Set<OutboxPosition>().AsNoTracking().SingleAsync(p => p.Name == OutboxPosition.FanOut)).PositionId);
        Assert.Equal(0, await OutboxDispatcher.NotFannedOut(db).CountAsync());
    }

    /// <summary>Runs rounds on the given dispatchers (or waits for those running) until the group's messages have their deliveries.</summary>
    private async Task FanOutAsync(OutboxDispatcher[] dispatchers, long group, int messages)
    {
        // On PostgreSQL a transaction still running in this database (the host's own jobs) holds the fan-out back a moment.
        for (var attempt = 0; await DeliveriesAsync(group) < messages; attempt++)
        {
            Assert.True(attempt < 600, $"{await DeliveriesAsync(group)} of {messages} messages fanned out after a minute");
            foreach (var dispatcher in dispatchers) await dispatcher.RunOnceAsync(default);
            await Task.Delay(100);
        }
    }

    /// <summary>Commits messages of the group in one transaction; returns their ids.</summary>
    private async Task<List<long>> PublishAsync(long group, int count)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = SystemDb(scope);
        var messages = Enumerable.Range(0, count).Select(_ => Message(group)).ToList();
        db.AddRange(messages);
        await db.SaveChangesAsync();
        return [.. messages.Select(m => m.Id)];
    }

    private async Task<int> DeliveriesAsync(long group)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await Deliveries(SystemDb(scope), group).CountAsync();
    }

    private static IQueryable<OutboxDelivery> Deliveries(MeridianDb db, long group) =>
        db.Set<OutboxDelivery>().Where(d => d.Subscriber == FanOutProbe.SubscriberName && db.Set<OutboxMessage>().Any(m => m.Id == d.MessageId && m.GroupId == group));

    /// <summary>Each test's messages in a group of their own (the outbox keeps no key to a group).</summary>
    private static long NewGroup() => Random.Shared.NextInt64(1L << 40, long.MaxValue);

    private static OutboxMessage Message(long group) =>
        new() { GroupId = group, Type = FanOutProbe.Type, Payload = "{}", OccurredAt = DateTime.UtcNow };

    private static MeridianDb SystemDb(AsyncServiceScope scope)
    {
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return scope.ServiceProvider.GetRequiredService<MeridianDb>();
    }

    internal static OutboxDispatcher Dispatcher(IServiceProvider services, string node, int fanOutBatch = 500) =>
        new(services.GetRequiredService<IServiceScopeFactory>(), Options.Create(new OutboxOptions { NodeName = node, FanOutBatchSize = fanOutBatch }),
            services.GetRequiredService<OutboxSignal>(), TimeProvider.System, NullLogger<OutboxDispatcher>.Instance);
}

/// <summary>
/// A subscriber that takes each message of its type (one delivery, no target) and does nothing with it. A test may have
/// it hold up the first fan-out round that meets a message of a group, between reading the batch and writing it.
/// </summary>
public sealed class FanOutProbe : IEventSubscriber
{
    public const string SubscriberName = "test-fan-out-probe";
    public const string Type = "test.fan-out";

    public sealed record Gate(TaskCompletionSource Entered, TaskCompletionSource Release);

    private static readonly ConcurrentDictionary<long, Gate> Gates = new();

    public static Gate Pause(long group) => Gates[group] = new Gate(new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously));

    public string Name => SubscriberName;

    public async ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct)
    {
        if (message.Type != Type) return [];
        if (Gates.TryRemove(message.GroupId, out var gate))
        {
            gate.Entered.SetResult();
            await gate.Release.Task;
        }
        return [""];
    }

    public Task HandleAsync(OutboxMessage message, string target, CancellationToken ct) => Task.CompletedTask;
}

public sealed class OutboxFanOutSqliteApp : SqliteApp
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        ProbeHost.Configure(builder);
    }
}

public sealed class OutboxFanOutPostgresApp : PostgresApp
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        ProbeHost.Configure(builder);
    }
}

/// <summary>A host with the probe subscribed and its own dispatcher off.</summary>
file static class ProbeHost
{
    public static void Configure(IWebHostBuilder builder)
    {
        builder.UseSetting("Meridian:Outbox:Enabled", "false");
        builder.ConfigureTestServices(s => s.AddScoped<IEventSubscriber, FanOutProbe>());
    }
}

public sealed class OutboxFanOutTestsOnSqlite(OutboxFanOutSqliteApp app) : OutboxFanOutTests(app), IClassFixture<OutboxFanOutSqliteApp>;

public sealed class OutboxFanOutTestsOnPostgres(OutboxFanOutPostgresApp app) : OutboxFanOutTests(app), IClassFixture<OutboxFanOutPostgresApp>;
