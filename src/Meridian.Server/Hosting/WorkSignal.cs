namespace Meridian.Hosting;

/// <summary>
/// Wakes a background worker of this process as soon as there is work for it, so in-process hand-offs do not wait
/// for a poll. Workers still poll on a timer: work may come from another node.
/// </summary>
public class WorkSignal
{
    private readonly SemaphoreSlim signal = new(0, 1);

    public void Notify()
    {
        try
        {
            signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // already signalled
        }
    }

    /// <summary>Returns when signalled or after <paramref name="timeout"/>, whichever comes first.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) => signal.WaitAsync(timeout, ct);
}

/// <summary>
/// Wakes every worker that follows another worker's output when that one committed some; each follower waits on its
/// own <see cref="WorkSignal"/> (one signal wakes one waiter).
/// </summary>
public class FanOutSignal
{
    private System.Collections.Immutable.ImmutableArray<WorkSignal> followers = [];

    public void Follow(WorkSignal follower) => System.Collections.Immutable.ImmutableInterlocked.Update(ref followers, f => f.Add(follower));

    public void Notify()
    {
        foreach (var follower in followers) follower.Notify();
    }
}
