using Microsoft.Extensions.Options;

namespace Meridian.Ingestion.Import;

/// <summary>Wakes this node's import worker when an upload is accepted here, so it does not wait for the next poll.</summary>
internal sealed class ImportSignal
{
    private TaskCompletionSource next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Notify() => Interlocked.Exchange(ref next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Completes at the next <see cref="Notify"/>; waiting does not consume anything, so an abandoned wait is harmless.</summary>
    public Task Next => Volatile.Read(ref next).Task;
}

/// <summary>
/// Runs the queued imports, one at a time on each node: every poll (or as soon as an upload arrives here) it claims
/// the oldest import no node holds, and runs it to the end. State is in the <c>imports</c> table, so a restart resumes
/// where the last committed chunk ended, on whichever node claims the job next.
/// </summary>
internal sealed class ImportWorker(ImportProcessor processor, ImportSignal signal, IOptions<ImportOptions> options, ILogger<ImportWorker> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var opts = options.Value;
        if (!opts.Enabled) return;
        try
        {
            await processor.SweepAsync(stoppingToken);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Could not sweep the import folder");
        }

        using var timer = new PeriodicTimer(opts.PollInterval);
        Task<bool>? tick = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var wake = signal.Next;
            try
            {
                while (await processor.RunNextAsync(stoppingToken))
                {
                    // one import after another until none is left to claim
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Import tick failed");
            }

            // The timer allows one pending wait: a tick not yet elapsed is kept for the next round rather than asked again.
            tick ??= timer.WaitForNextTickAsync(stoppingToken).AsTask();
            try
            {
                await Task.WhenAny(tick, wake).WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (tick.IsCompleted) tick = null;
        }
    }
}
