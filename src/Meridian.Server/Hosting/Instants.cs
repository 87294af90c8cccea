namespace Meridian.Hosting;

/// <summary>Instants as both databases store them.</summary>
public static class Instants
{
    /// <summary>Now, to the microsecond: PostgreSQL keeps microseconds, so an answer built in memory shows what a later read shows.</summary>
    public static DateTime Now(TimeProvider time) => Micros(time.GetUtcNow().UtcDateTime);

    public static DateTime Micros(DateTime at) => new(at.Ticks - at.Ticks % 10, DateTimeKind.Utc);
}
