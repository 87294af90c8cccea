namespace Meridian.Hosting;

/// <summary>The loop of a periodic background job: a tick at once, then one per interval, each failure logged and survived.</summary>
public static class PeriodicWork
{
    public static async Task RunAsync(string job, TimeSpan interval, TimeProvider time, ILogger logger, Func<CancellationToken, Task> tick, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            do
            {
                try
                {
                    await tick(stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogError(ex, "{Job} tick failed", job);
                }
            } while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// The loop of a worker woken by a <see cref="WorkSignal"/>: <paramref name="once"/> again at once while it finds work
    /// (returns true), otherwise after the signal or <paramref name="poll"/>; each failure logged and survived.
    /// </summary>
    public static async Task RunSignalledAsync(string job, WorkSignal signal, TimeSpan poll, ILogger logger, Func<CancellationToken, Task<bool>> once, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var busy = false;
            try
            {
                busy = await once(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "{Job} tick failed", job);
            }
            if (busy) continue;
            try
            {
                await signal.WaitAsync(poll, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
