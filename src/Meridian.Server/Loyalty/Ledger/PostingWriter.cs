using System.Text.Json;
using System.Threading.Channels;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Loyalty.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Loyalty.Ledger;

/// <summary><c>Meridian:Loyalty:Postings</c>: how many HTTP postings one group commit may carry.</summary>
public sealed class PostingOptions
{
    public int MaxPostingsPerCommit { get; set; } = 200;
}

public enum PostingKind { Earn, Spend }

/// <summary>An earn or spend through the API, with its <c>Idempotency-Key</c> and the caller's brands (it is posted outside the request).</summary>
public sealed record PostingOrder(PostingKind Kind, long MemberId, long Points, string? Reference, int HoldDays,
    string Key, string RequestHash, long GroupId, long[] BrandIds, long ActingBrandId);

/// <summary>What became of a posting: its stored response, no such member (null), or another request with its key committed first.</summary>
public sealed record PostingResult(IdempotentRequest? Stored, bool Raced = false);

/// <summary>
/// Group commit for earn and spend requests, as <c>Offers/Claims/ClaimWriter</c> does for claims: postings that arrive
/// while a commit runs wait in a queue, and the next transaction carries all of them (one WAL sync on SQLite, one
/// commit on PostgreSQL, instead of one per posting). Each posting is still judged by its own statements in order,
/// under its member's row lock (the balance guard of a spend, a source key), in the caller's brands, and its
/// <c>Idempotency-Key</c> row is written in the same transaction; a posting refused by a rule (409, 422) or naming
/// no member is answered so and leaves the others be. A group that fails (two requests with one key, a deadlock
/// between nodes) is rolled back and posted again one by one. Each request is answered only once its group is durable.
/// </summary>
public sealed class PostingWriter(IServiceScopeFactory scopes, IOptions<PostingOptions> options, TimeProvider time, ILogger<PostingWriter> logger)
    : BackgroundService
{
    private sealed record Pending(PostingOrder Order, TaskCompletionSource<PostingResult> Done);

    private readonly Channel<Pending> queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });

    public Task<PostingResult> PostAsync(PostingOrder order)
    {
        var pending = new Pending(order, new TaskCompletionSource<PostingResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!queue.Writer.TryWrite(pending))
            throw new InvalidOperationException("The posting writer has stopped: the server is shutting down.");
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
            while (group.Count < options.Value.MaxPostingsPerCommit && queue.Reader.TryRead(out var next)) group.Add(next);
            await CommitAsync(group);
            group.Clear();
        }
    }

    private async Task CommitAsync(List<Pending> group)
    {
        try
        {
            var outcomes = await WriteAsync(group.Select(p => p.Order).ToList());
            for (var i = 0; i < group.Count; i++)
            {
                if (outcomes[i].Refused is { } refused) group[i].Done.TrySetException(refused);
                else group[i].Done.TrySetResult(new PostingResult(outcomes[i].Stored));
            }
        }
        catch (Exception ex) when (group.Count > 1)
        {
            logger.LogWarning(ex, "A group commit of {Postings} postings failed; committing them one by one", group.Count);
            foreach (var pending in group) await CommitAsync([pending]);
        }
        catch (DbUpdateException)
        {
            // Most likely a request with the same key committed first: the caller answers as it did.
            group[0].Done.TrySetResult(new PostingResult(null, Raced: true));
        }
        catch (Exception ex)
        {
            group[0].Done.TrySetException(ex);
        }
    }

    private readonly record struct Outcome(IdempotentRequest? Stored, BusinessRuleException? Refused);

    private async Task<Outcome[]> WriteAsync(List<PostingOrder> orders)
    {
        var ct = CancellationToken.None;
        await using var scope = scopes.CreateAsyncScope();
        var tenant = scope.ServiceProvider.GetRequiredService<TenantScope>();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var ledger = scope.ServiceProvider.GetRequiredService<PointsLedger>();
        var outcomes = new Outcome[orders.Count];
        using var noSavepoints = PointsLedger.NoSavepoints(db);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        // Member by member (ascending, each member's postings in arrival order), so that two nodes' groups lock members in the same order.
        foreach (var i in Enumerable.Range(0, orders.Count).OrderBy(i => orders[i].MemberId))
        {
            var order = orders[i];
            // The filters and the write guard read the scope at each statement: the posting runs in its caller's brands.
            tenant.Restrict(order.GroupId, order.BrandIds, order.ActingBrandId);
            await transaction.CreateSavepointAsync("posting", ct);
            try
            {
                var entry = order.Kind == PostingKind.Earn
                    ? await ledger.EarnAsync(order.MemberId, order.Points, order.Reference, ct, holdDays: order.HoldDays)
                    : await ledger.SpendAsync(order.MemberId, order.Points, order.Reference, ct);
                if (entry is null)
                {
                    await transaction.ReleaseSavepointAsync("posting", ct);
                    continue;
                }
                var stored = new IdempotentRequest
                {
                    TenantId = order.ActingBrandId, Key = order.Key, RequestHash = order.RequestHash, StatusCode = StatusCodes.Status200OK,
                    Body = JsonSerializer.Serialize(LoyaltyEndpoints.ToDto(entry), MeridianJson.Options), CreatedAt = time.GetUtcNow().UtcDateTime,
                };
                db.Add(stored);
                await db.SaveChangesAsync(ct);
                await transaction.ReleaseSavepointAsync("posting", ct);
                outcomes[i] = new Outcome(stored, null);
            }
            catch (BusinessRuleException refused)
            {
                // Refused by a rule (a short balance, nothing to credit): undone to its savepoint, the others carry on.
                await transaction.RollbackToSavepointAsync("posting", ct);
                outcomes[i] = new Outcome(null, refused);
            }
            finally
            {
                db.ChangeTracker.Clear();
            }
        }
        await transaction.CommitAsync(ct);
        return outcomes;
    }
}
