using System.Threading.Channels;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Offers.Cart;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.Extensions.Options;

namespace Meridian.Offers.Claims;

/// <summary><c>Meridian:Offers:Claims</c>: how many claims one group commit may carry.</summary>
public sealed class ClaimOptions
{
    public int MaxClaimsPerCommit { get; set; } = 500;
}

/// <summary>
/// Group commit for claims (the flash-sale path), like the ingest writer: claims that arrive while a commit runs wait
/// in a queue, and the next transaction takes all of them. Each claim is still judged by its own conditional
/// statements in order (stock, customer, day; see <see cref="CouponIssuer"/>), so grouping changes the number of
/// commits, not the rules: a group holds the template's stock row once instead of every claim queueing for it, and
/// pays one commit. Each request gets its answer only once its group is durable.
/// </summary>
public sealed class ClaimWriter(IServiceScopeFactory scopes, IOptions<ClaimOptions> options, TimeProvider time, ILogger<ClaimWriter> logger) : BackgroundService
{
    private sealed record Pending(IssueOrder Order, TaskCompletionSource<IssueResult> Done);

    private readonly Channel<Pending> queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });

    public Task<IssueResult> ClaimAsync(IssueOrder order)
    {
        var pending = new Pending(order, new TaskCompletionSource<IssueResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!queue.Writer.TryWrite(pending))
            throw new InvalidOperationException("The claim writer has stopped: the server is shutting down.");
        return pending.Done.Task;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var group = new List<Pending>();
        while (await queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < options.Value.MaxClaimsPerCommit && queue.Reader.TryRead(out var next)) group.Add(next);
            await CommitAsync(group);
            group.Clear();
        }
    }

    private async Task CommitAsync(List<Pending> group)
    {
        try
        {
            var results = await WriteAsync(group.Select(p => p.Order).ToList());
            for (var i = 0; i < group.Count; i++) group[i].Done.TrySetResult(results[i]);
        }
        catch (Exception ex) when (group.Count > 1 && Hosting.ProblemExceptionHandler.IsDatabaseUnavailable(ex) && !IsConflictBetweenNodes(ex))
        {
            // The database cannot serve the group (no connection came free, it is unreachable): one by one would only
            // wait as long again for each claim. Every claim of the group gets the failure (a 503 to retry): none committed.
            logger.LogWarning("A group commit of {Claims} claims failed: the database is unavailable ({Reason})", group.Count, ex.GetBaseException().Message);
            foreach (var pending in group) pending.Done.TrySetException(ex);
        }
        catch (Exception ex) when (group.Count > 1)
        {
            // One claim must not fail the others (e.g. two retries with one key, or a deadlock between nodes): one by one.
            logger.LogWarning(ex, "A group commit of {Claims} claims failed; committing them one by one", group.Count);
            foreach (var pending in group) await CommitAsync([pending]);
        }
        catch (Exception ex)
        {
            group[0].Done.TrySetException(ex);
        }
    }

    /// <summary>A deadlock or serialization failure between two nodes' groups: one claim at a time gets through it.</summary>
    private static bool IsConflictBetweenNodes(Exception ex) =>
        ex.GetBaseException() is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.DeadlockDetected or Npgsql.PostgresErrorCodes.SerializationFailure };

    private async Task<IssueResult[]> WriteAsync(List<IssueOrder> orders)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var issuer = scope.ServiceProvider.GetRequiredService<CouponIssuer>();
        var plans = await issuer.PlanAsync(orders.Select(o => o.TemplateId), CancellationToken.None);
        // The customers are looked up here, in one query, not in each request: thousands of claims waiting at once would
        // otherwise queue for the connection pool ahead of the writer that serves them.
        var live = await scope.ServiceProvider.GetRequiredService<ProfileDirectory>().FindLiveManyAsync(orders.Select(o => o.ProfileId).Distinct().ToList(), CancellationToken.None);
        // Segment conditions: the group's customers' memberships in one read, before the transaction (none without a condition).
        var parsed = scope.ServiceProvider.GetRequiredService<ParsedTemplates>();
        var conditions = plans.ToDictionary(p => p.Key, p => parsed.Rules(p.Value.Template).Conditions);
        var memberships = await scope.ServiceProvider.GetRequiredService<SegmentConditions>().ReadAsync(
            plans.Select(p => (p.Value.Template.TenantId, conditions[p.Key])), live.Values.Select(p => p.ProfileId), CancellationToken.None);
        var results = new IssueResult[orders.Count];
        await using var transaction = await db.Database.BeginTransactionAsync(CancellationToken.None);
        var now = Instants.Now(time);
        // Template by template (ascending), so that two nodes' groups lock the stock rows in the same order.
        foreach (var template in Enumerable.Range(0, orders.Count).GroupBy(i => orders[i].TemplateId).OrderBy(g => g.Key))
        {
            var claims = new List<int>();
            foreach (var i in template)
            {
                if (!live.TryGetValue(orders[i].ProfileId, out var p) || p.BrandId != orders[i].TenantId) results[i] = new IssueResult(IssueOutcome.ProfileNotFound);
                else if (conditions.TryGetValue(template.Key, out var c) && c.SegmentIds.Count > 0 && !memberships.InAny(c.SegmentIds, p.ProfileId))
                    results[i] = new IssueResult(IssueOutcome.NotInSegment, Detail: CartEngine.SegmentNotMet(c, memberships).Message);
                else claims.Add(i);
            }
            if (claims.Count == 0) continue;
            var issued = await issuer.IssueManyAsync(claims.Select(i => orders[i] with { ProfileId = live[orders[i].ProfileId].ProfileId }).ToList(),
                plans.GetValueOrDefault(template.Key), now, CancellationToken.None);
            for (var k = 0; k < claims.Count; k++) results[claims[k]] = issued[k];
        }
        await db.SaveChangesAsync(CancellationToken.None);
        await transaction.CommitAsync(CancellationToken.None);
        return results;
    }
}
