using System.Collections.Concurrent;
using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Journeys.Data;
using Meridian.Journeys.Graph;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Meridian.Journeys.Engine;

/// <summary><c>Meridian:Journeys</c>: how the engine claims and runs instances, and how failed actions are retried.</summary>
public sealed class JourneyOptions
{
    public bool Enabled { get; set; } = true;
    /// <summary>How often to look for due instances when nothing in this process has signalled any.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>How often date triggers (birthdays) look whether their day has come.</summary>
    public TimeSpan DatePollInterval { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>How long a claimed instance stays with its node before another may take it over.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);
    public int BatchSize { get; set; } = 500;
    /// <summary>Tries of an action before it takes the node's failure edge; the n-th retry waits <see cref="RetryBase"/> × 2^(n-1).</summary>
    public int MaxAttempts { get; set; } = 4;
    public TimeSpan RetryBase { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>Nodes one instance may pass in one claim before it is put back (a bound, not a rule: cycles without waits are refused on save).</summary>
    public int MaxStepsPerClaim { get; set; } = 50;
    public string? NodeName { get; set; }
    public string Node => NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";
}

/// <summary>Wakes the worker when this process lets a customer in, so the first node runs without waiting for a poll.</summary>
public sealed class JourneySignal : WorkSignal;

/// <summary>Published graphs by version id: a version never changes, so each is parsed once per process.</summary>
public sealed class JourneyGraphs
{
    private readonly ConcurrentDictionary<long, JourneyGraph> versions = new();

    public async Task<JourneyGraph> GetAsync(MeridianDb db, long versionId, CancellationToken ct)
    {
        if (versions.TryGetValue(versionId, out var graph)) return graph;
        var stored = await db.Set<JourneyVersion>().AsNoTracking().Where(v => v.Id == versionId).Select(v => v.Graph).SingleAsync(ct);
        return versions.GetOrAdd(versionId, JourneyGraphParser.Load(stored));
    }
}

/// <summary>
/// Runs journey instances. Each round claims a batch of due instances with a lease (<c>FOR UPDATE SKIP LOCKED</c> on
/// PostgreSQL, so nodes polling one database take disjoint batches), runs each as far as it goes now (to a wait, or to its
/// end), and writes the whole batch back in one transaction: each instance only if this node still holds it at the step
/// it claimed, with one step-log row per node left (unique per instance and step). Actions have their effects in their
/// own modules under a key made of instance, node and step, so a batch lost to a crash and run again repeats no effect.
/// </summary>
public sealed class JourneyWorker(IServiceScopeFactory scopes, IOptions<JourneyOptions> options, JourneySignal signal, JourneyGraphs graphs,
    TimeProvider time, ILogger<JourneyWorker> logger) : BackgroundService
{
    private readonly JourneyOptions opts = options.Value;
    private readonly string node = options.Value.Node;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!opts.Enabled) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            var busy = false;
            try
            {
                busy = await RunOnceAsync(stoppingToken) > 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Journey worker round failed");
            }
            if (busy) continue;
            try
            {
                await signal.WaitAsync(await UntilNextDueAsync(stoppingToken), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// How long to sleep: until the next timer of this database falls due, at most a poll interval (another node may add an
    /// earlier one; an in-process entry signals). A timer is then picked up when it falls due, not up to a poll later.
    /// </summary>
    private async Task<TimeSpan> UntilNextDueAsync(CancellationToken ct)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var next = await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<JourneyInstance>()
                .Where(i => i.State == InstanceState.Active || i.State == InstanceState.Waiting).MinAsync(i => i.DueAt, ct);
            var wait = next is { } due ? due - time.GetUtcNow().UtcDateTime : opts.PollInterval;
            // Overdue yet not claimed (held by another node's lease, or its journey paused): nothing to gain by looking sooner.
            return wait > TimeSpan.Zero && wait < opts.PollInterval ? wait : opts.PollInterval;
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            logger.LogWarning("Journey worker could not read the next due time: {Error}", ex.GetType().Name);
            return opts.PollInterval;
        }
    }

    /// <summary>One round: claims due instances, runs them and writes them back; returns how many it claimed.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var claimed = await ClaimAsync(db, ct);
        if (claimed.Count == 0) return 0;

        var runner = ActivatorUtilities.CreateInstance<StepRunner>(scope.ServiceProvider, opts);
        foreach (var instance in claimed)
        {
            try
            {
                await runner.RunAsync(instance, await graphs.GetAsync(db, instance.VersionId, ct), ct);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                // A bug or an outage mid-node: the instance stays where it was and is tried again after a back-off.
                logger.LogError(ex, "Journey instance {Instance} failed at node {Node}", instance.Id, instance.CurrentNode);
                instance.Reset(time.GetUtcNow().UtcDateTime + opts.RetryBase);
            }
            db.ChangeTracker.Clear();
        }
        await WriteBackAsync(db, claimed, ct);
        return claimed.Count;
    }

    private async Task<List<RunningInstance>> ClaimAsync(MeridianDb db, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var postgres = db.Database.IsNpgsql();
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.CommandText = $"""
            UPDATE journey_instances
               SET lease_owner = @owner, lease_until = @until
             WHERE id IN (SELECT i.id FROM journey_instances i
                           WHERE i.state IN (0, 1) AND i.due_at <= @now AND (i.lease_until IS NULL OR i.lease_until < @now)
                             AND EXISTS (SELECT 1 FROM journeys j WHERE j.id = i.journey_id AND j.status = 1)
                           ORDER BY i.due_at LIMIT @limit {(postgres ? "FOR UPDATE OF i SKIP LOCKED" : "")})
               AND state IN (0, 1) AND (lease_until IS NULL OR lease_until < @now)
            RETURNING id, tenant_id, journey_id, version_id, profile_id, state, current_node, step, due_at, attempts, wait_event, event_arrived, context
            """;
        command.AddParameter("@owner", node);
        command.AddParameter("@until", now + opts.Lease);
        command.AddParameter("@now", now);
        command.AddParameter("@limit", opts.BatchSize);
        var claimed = new List<RunningInstance>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            claimed.Add(new RunningInstance(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                (InstanceState)reader.GetInt32(5), reader.GetString(6), reader.GetInt32(7), DateTime.SpecifyKind(reader.GetDateTime(8), DateTimeKind.Utc),
                reader.GetInt32(9), reader.IsDBNull(10) ? null : reader.GetString(10), reader.GetBoolean(11), reader.GetString(12)));
        return claimed;
    }

    /// <summary>Writes the batch in one transaction; an instance this node no longer holds (its lease lapsed and another took it) is left alone.</summary>
    private async Task WriteBackAsync(MeridianDb db, List<RunningInstance> batch, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var tx = transaction.GetDbTransaction();
        var written = tx is Npgsql.NpgsqlTransaction postgres ? await UpdateAllAsync(postgres, batch, ct) : await UpdateEachAsync(tx, batch, ct);
        foreach (var lost in batch.Where(i => !written.Contains(i.Id)))
            logger.LogWarning("Journey instance {Instance} was taken over by another node; its round here is dropped", lost.Id);
        var steps = batch.Where(i => written.Contains(i.Id))
            .SelectMany(i => i.Log.Select(s => new object?[] { i.TenantId, i.JourneyId, i.Id, s.Step, s.Node, s.Outcome, s.Detail, node, s.At })).ToList();
        if (steps.Count > 0)
            await BulkInsert.InsertAsync(tx, "journey_steps", ["tenant_id", "journey_id", "instance_id", "step", "node", "outcome", "detail", "by", "at"], steps, "", ct);
        await transaction.CommitAsync(ct);
    }

    private const string Assignments = """
        state = @state, current_node = @node, step = @step, due_at = @due, attempts = @attempts, wait_event = @wait,
        event_arrived = @arrived, context = @context, finished_at = @finished, lease_owner = NULL, lease_until = NULL
        """;

    /// <summary>SQLite: one prepared statement rebound per instance (an embedded database has no round trip to save).</summary>
    private async Task<HashSet<long>> UpdateEachAsync(DbTransaction tx, List<RunningInstance> batch, CancellationToken ct)
    {
        await using var update = tx.Connection!.CreateCommand();
        update.Transaction = tx;
        update.CommandText = $"UPDATE journey_instances SET {Assignments} WHERE id = @id AND lease_owner = @owner AND step = @claimed_step";
        string[] names = ["state", "node", "step", "due", "attempts", "wait", "arrived", "context", "finished", "id", "owner", "claimed_step"];
        foreach (var name in names) update.AddParameter(name, DBNull.Value);
        var written = new HashSet<long>();
        foreach (var i in batch)
        {
            object?[] values = [(int)i.State, i.CurrentNode, i.Step, i.DueAt, i.Attempts, i.WaitEvent, i.EventArrived, i.Context, i.FinishedAt, i.Id, node, i.ClaimedStep];
            for (var k = 0; k < values.Length; k++) update.Parameters[k].Value = values[k] ?? DBNull.Value;
            if (await update.ExecuteNonQueryAsync(ct) == 1) written.Add(i.Id);
        }
        return written;
    }

    /// <summary>PostgreSQL: the whole batch in one statement over arrays (one round trip instead of one per instance).</summary>
    private async Task<HashSet<long>> UpdateAllAsync(Npgsql.NpgsqlTransaction tx, List<RunningInstance> batch, CancellationToken ct)
    {
        await using var update = new Npgsql.NpgsqlCommand($"""
            UPDATE journey_instances AS i SET {Assignments.Replace("@", "v.", StringComparison.Ordinal)}
              FROM unnest(@ids, @states, @nodes, @steps, @dues, @attempts, @waits, @arriveds, @contexts, @finisheds, @claimed)
                   AS v(id, state, node, step, due, attempts, wait, arrived, context, finished, claimed_step)
             WHERE i.id = v.id AND i.lease_owner = @owner AND i.step = v.claimed_step
            RETURNING i.id
            """, tx.Connection, tx);
        update.Parameters.AddWithValue("ids", batch.Select(i => i.Id).ToArray());
        update.Parameters.AddWithValue("states", batch.Select(i => (int)i.State).ToArray());
        update.Parameters.AddWithValue("nodes", batch.Select(i => i.CurrentNode).ToArray());
        update.Parameters.AddWithValue("steps", batch.Select(i => i.Step).ToArray());
        update.Parameters.AddWithValue("dues", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.TimestampTz, batch.Select(i => i.DueAt).ToArray());
        update.Parameters.AddWithValue("attempts", batch.Select(i => i.Attempts).ToArray());
        update.Parameters.AddWithValue("waits", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text, batch.Select(i => i.WaitEvent).ToArray());
        update.Parameters.AddWithValue("arriveds", batch.Select(i => i.EventArrived).ToArray());
        update.Parameters.AddWithValue("contexts", batch.Select(i => i.Context).ToArray());
        update.Parameters.AddWithValue("finisheds", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.TimestampTz, batch.Select(i => i.FinishedAt).ToArray());
        update.Parameters.AddWithValue("claimed", batch.Select(i => i.ClaimedStep).ToArray());
        update.Parameters.AddWithValue("owner", node);
        var written = new HashSet<long>();
        await using var reader = await update.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) written.Add(reader.GetInt64(0));
        return written;
    }
}

/// <summary>A claimed instance as the runner moves it, with the step-log rows it produced.</summary>
public sealed class RunningInstance(long id, long tenantId, long journeyId, long versionId, long profileId, InstanceState state, string currentNode,
    int step, DateTime dueAt, int attempts, string? waitEvent, bool eventArrived, string context)
{
    public long Id { get; } = id;
    public long TenantId { get; } = tenantId;
    public long JourneyId { get; } = journeyId;
    public long VersionId { get; } = versionId;
    public long ProfileId { get; } = profileId;
    public int ClaimedStep { get; } = step;
    public InstanceState State { get; set; } = state;
    public string CurrentNode { get; set; } = currentNode;
    public int Step { get; set; } = step;
    public DateTime? DueAt { get; set; } = dueAt;
    public int Attempts { get; set; } = attempts;
    public string? WaitEvent { get; set; } = waitEvent;
    public bool EventArrived { get; set; } = eventArrived;
    public string Context { get; set; } = context;
    public DateTime? FinishedAt { get; set; }
    public List<(int Step, string Node, string Outcome, string? Detail, DateTime At)> Log { get; } = [];

    private readonly (InstanceState State, string Node, int Step, DateTime? Due, int Attempts, string? Wait, bool Arrived, string Context) claimed =
        (state, currentNode, step, dueAt, attempts, waitEvent, eventArrived, context);

    /// <summary>Back to how it was claimed, due again at <paramref name="due"/>: nothing of a failed round is kept.</summary>
    public void Reset(DateTime due)
    {
        (State, CurrentNode, Step, _, Attempts, WaitEvent, EventArrived, Context) = claimed;
        DueAt = due;
        FinishedAt = null;
        Log.Clear();
    }

    /// <summary>The idempotency key of the current node's action: the same for every retry of this step, on any node.</summary>
    public string ActionKey => $"journey:{JourneyId}:i{Id}:{CurrentNode}:s{Step}";
}
