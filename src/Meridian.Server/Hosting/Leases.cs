namespace Meridian.Hosting;

/// <summary>The rule by which a job that runs on one node at a time, under a lease in its database row, writes that lease.</summary>
public static class Leases
{
    /// <summary>
    /// Whether the job must take or renew its lease before this poll's work: false only while <paramref name="node"/>
    /// holds it with more than half of it left. Such a job's commits renew the lease (or check its owner in the same
    /// statement), so an idle poll need not write the row: on SQLite each write takes the one write lock.
    /// </summary>
    public static bool NeedsWrite(string? owner, DateTime? until, string node, DateTime now, TimeSpan lease) =>
        owner != node || until is not { } held || held <= now + lease / 2;
}
