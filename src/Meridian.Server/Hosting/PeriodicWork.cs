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
}
