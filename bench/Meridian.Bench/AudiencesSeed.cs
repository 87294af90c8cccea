using System.Data.Common;
using System.Diagnostics;
using System.Globalization;

namespace Meridian.Bench;

/// <summary>
/// The audiences bench at full size: profiles and their events written straight into the tables with set-based SQL
/// (generate_series on PostgreSQL, a recursive CTE on SQLite), in the shapes identity resolution writes them, bypassing
/// ingestion (whose speed is issue 3's bench). Profile <c>i</c> (0-based) is <c>aud-i</c>: a <c>user_id</c> (and a phone
/// for every other one), a <c>city</c> trait, the VIP tag for one in ten; its events are <c>events / profiles</c> in a row:
/// an <c>identify</c> with the city, then tracks (about 10% <c>Order Completed</c> with a total, the rest product and page
/// views) spread pseudo-randomly over the last 365 days; each with its <c>profile_events</c> row, and the profile's counts
/// and first/last times and orders as resolution keeps them (<c>previous_order_at</c> left empty). One transaction per
/// chunk of profiles, which also moves every follower of the event log (identity resolution, order earning, journey
/// triggers, segment maintenance) past the chunk: the seeded history is there to be queried, not to be replayed.
/// </summary>
internal static class AudiencesSeed
{
    public sealed record Seeded(long FirstProfileId, long Profiles, long Events, TimeSpan Took);

    private static readonly string[] Followers =
        ["projector_state:profiles", "loyalty_jobs:order-earning", "journey_jobs:journey-events", "audience_jobs:segment-membership"];

    public static async Task<Seeded> SeedAsync(DbConnection db, Provider provider, long brand, long source, long vipTag, int profiles, long events,
        CancellationToken ct)
    {
        var pg = provider == Provider.Postgres;
        var perProfile = Math.Max(1, events / profiles);
        var now = DateTime.UtcNow;
        now = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
        var p0 = await Sql.ScalarAsync<long>(db, "SELECT COALESCE(MAX(id), 0) FROM profiles", ct);
        var e0 = await Sql.ScalarAsync<long>(db, "SELECT COALESCE(MAX(id), 0) FROM events", ct);
        if (!pg) await Sql.ExecuteAsync(db, "PRAGMA cache_size = -262144", ct, timeoutSeconds: 0); // 256 MB for this connection's big inserts
        var chunk = (int)Math.Max(1, Math.Min(profiles, 1_000_000 / perProfile));
        var started = Stopwatch.GetTimestamp();
        for (long a = 0; a < profiles; a += chunk)
        {
            var b = Math.Min(profiles, a + chunk);
            await using var tx = await db.BeginTransactionAsync(ct);
            object?[] args = ["brand", brand, "source", source, "tag", vipTag, "p0", p0, "e0", e0, "k", perProfile, "a", a, "b", b,
                "from", a * perProfile, "to", b * perProfile, "now", pg ? now : now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)];
            foreach (var sql in pg ? Postgres : Sqlite) await Sql.ExecuteAsync(db, sql, ct, tx, args, timeoutSeconds: 0);
            foreach (var follower in Followers)
            {
                var (table, name) = (follower.Split(':')[0], follower.Split(':')[1]);
                await Sql.ExecuteAsync(db, $"""
                    INSERT INTO {table} (name, position_tx, position_id) VALUES (@name, {(pg ? "pg_current_xact_id()::text::bigint" : "0")}, @e0 + @to)
                    ON CONFLICT (name) DO UPDATE SET position_tx = excluded.position_tx, position_id = excluded.position_id
                    """, ct, tx, [.. args, "name", name], timeoutSeconds: 0);
            }
            await tx.CommitAsync(ct);
            Console.WriteLine($"{provider.Title()}: audiences: seeded {b:N0} of {profiles:N0} profiles, {b * perProfile:N0} events, {Stopwatch.GetElapsedTime(started).TotalSeconds:0} s");
        }
        if (pg)
        {
            foreach (var table in new[] { "profiles", "events" })
                await Sql.ExecuteAsync(db, $"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))", ct, timeoutSeconds: 0);
            // What autovacuum would do shortly after a load this size (left to it, it ran during the measures): the
            // statistics the planner needs, and the visibility map that lets an index answer without the table.
            await Sql.ExecuteAsync(db, "VACUUM ANALYZE profiles, events, profile_events, profile_identifiers, profile_tags", ct, timeoutSeconds: 0);
        }
        return new Seeded(p0 + 1, profiles, profiles * perProfile, Stopwatch.GetElapsedTime(started));
    }

    // Per chunk: profiles a..b-1 get ids p0+a+1..p0+b; events from..to-1 ids e0+from+1..e0+to. Event n belongs to profile n / k.
    // A pseudo-random spread from the event's number: (n * 2654435761) mod 365 days back from now, and its hundredth for the name.

    private const string Cities = "CASE (({0} * 2654435761) / 65536) % 5 WHEN 0 THEN 'Hangzhou' WHEN 1 THEN 'Shanghai' WHEN 2 THEN 'Beijing' WHEN 3 THEN 'Shenzhen' ELSE 'Chengdu' END";
    private const string EventName = "CASE WHEN n % @k = 0 THEN NULL WHEN (n * 2654435761 / 1000) % 100 < 10 THEN 'Order Completed' WHEN (n * 2654435761 / 1000) % 100 < 50 THEN 'Product Viewed' ELSE 'Page Viewed' END";
    /// <summary>The message as the tracking API stores it, from the event's number <c>n</c>, <c>name</c> (null: the identify) and <c>iso</c> time.</summary>
    private static readonly string Payload = $"""
        CASE WHEN name IS NULL
             THEN '{"{"}"type":"identify","userId":"aud-' || (n / @k) || '","messageId":"seed-' || n || '","timestamp":"' || iso || '","traits":{"{"}"city":"' || {string.Format(CultureInfo.InvariantCulture, Cities, "(n / @k)")} || '"{"}"}{"}"}'
             ELSE '{"{"}"type":"track","event":"' || name || '","userId":"aud-' || (n / @k) || '","messageId":"seed-' || n || '","timestamp":"' || iso || '","properties":{"{"}'
                  || CASE WHEN name = 'Order Completed' THEN '"order_id":"seed-' || n || '","total":' || (10 + (n * 7919) % 990) || ',"currency":"CNY"' ELSE '"path":"/p/' || (n % 5000) || '"' END || '{"}"}{"}"}'
        END
        """;

    private const string OrderTotal = "(10 + ((e.id - @e0 - 1) * 7919) % 990)";

    private const string ProfileStats = $"""
        UPDATE profiles AS p SET event_count = s.c, first_seen_at = s.f, last_seen_at = s.l, order_count = s.oc, total_spend_minor = s.spend,
               first_order_at = s.fo, last_order_at = s.lo
          FROM (SELECT pe.profile_id, COUNT(*) AS c, MIN(pe.timestamp) AS f, MAX(pe.timestamp) AS l,
                       SUM(CASE WHEN e.name = 'Order Completed' THEN 1 ELSE 0 END) AS oc,
                       SUM(CASE WHEN e.name = 'Order Completed' THEN {OrderTotal} * 100 ELSE 0 END) AS spend,
                       MIN(CASE WHEN e.name = 'Order Completed' THEN pe.timestamp END) AS fo, MAX(CASE WHEN e.name = 'Order Completed' THEN pe.timestamp END) AS lo
                  FROM profile_events pe JOIN events e ON e.id = pe.event_id
                 WHERE pe.profile_id > @p0 + @a AND pe.profile_id <= @p0 + @b GROUP BY pe.profile_id) AS s
         WHERE p.id = s.profile_id
        """;

    private const string ProfileEvents = """
        INSERT INTO profile_events (event_id, tenant_id, profile_id, attributed_profile_id, timestamp, name)
        SELECT id, tenant_id, @p0 + 1 + (id - @e0 - 1) / @k, @p0 + 1 + (id - @e0 - 1) / @k, timestamp, name FROM events WHERE id > @e0 + @from AND id <= @e0 + @to
        """;

    private const string Tags = """
        INSERT INTO profile_tags (tag_id, profile_id, tenant_id, set_at, set_by)
        SELECT @tag, id, @brand, @now, 'bench-seed' FROM profiles WHERE id > @p0 + @a AND id <= @p0 + @b AND (id - @p0 - 1) % 10 = 0
        """;

    private const string TagChanges = """
        INSERT INTO tag_changes (tenant_id, profile_id, tag_id, added, "by", at)
        SELECT @brand, profile_id, @tag, TRUE, 'bench-seed', @now FROM profile_tags WHERE tag_id = @tag AND profile_id > @p0 + @a AND profile_id <= @p0 + @b
        """;

    private static readonly string[] Postgres =
    [
        $"""
        INSERT INTO profiles (id, tenant_id, traits, created_at, updated_at, event_count, order_count, total_spend_minor, version)
        SELECT @p0 + i + 1, @brand,
               '{"{"}"city":{"{"}"v":"' || {string.Format(CultureInfo.InvariantCulture, Cities, "i")} || '","t":"'
               || to_char((@now - make_interval(secs => (i * @k * 2654435761) % 31536000)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '","s":' || @source || '{"}"}{"}"}',
               @now, @now, 0, 0, 0, 1
          FROM generate_series(@a::bigint, @b::bigint - 1) AS i
        """,
        """
        INSERT INTO profile_identifiers (tenant_id, profile_id, type, value, source_id, first_seen_at, last_seen_at)
        SELECT @brand, @p0 + i + 1, 'user_id', 'aud-' || i, @source, @now, @now FROM generate_series(@a::bigint, @b::bigint - 1) AS i
        UNION ALL
        SELECT @brand, @p0 + i + 1, 'phone', '+86138' || lpad(i::text, 8, '0'), @source, @now, @now FROM generate_series(@a::bigint, @b::bigint - 1) AS i WHERE i % 2 = 0
        """,
        $"""
        INSERT INTO events (id, tenant_id, source_id, message_id, type, name, user_id, timestamp, received_at, payload)
        SELECT @e0 + n + 1, @brand, @source, 'seed-' || lpad(n::text, 10, '0'), CASE WHEN name IS NULL THEN 'identify' ELSE 'track' END, name, 'aud-' || (n / @k), ts, @now,
               {Payload}
          FROM (SELECT n, ts, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS iso, {EventName} AS name
                  FROM (SELECT n, @now - make_interval(secs => (n * 2654435761) % 31536000) AS ts FROM generate_series(@from::bigint, @to::bigint - 1) AS n) AS g) AS x
        """,
        ProfileEvents,
        ProfileStats,
        Tags,
        TagChanges,
    ];

    private const string Numbers = "WITH RECURSIVE s(n) AS (SELECT @{0} UNION ALL SELECT n + 1 FROM s WHERE n + 1 < @{1})";

    private static readonly string[] Sqlite =
    [
        $"""
        INSERT INTO profiles (id, tenant_id, traits, created_at, updated_at, event_count, order_count, total_spend_minor, version)
        {string.Format(CultureInfo.InvariantCulture, Numbers, "a", "b")}
        SELECT @p0 + n + 1, @brand,
               '{"{"}"city":{"{"}"v":"' || {string.Format(CultureInfo.InvariantCulture, Cities, "n")} || '","t":"'
               || strftime('%Y-%m-%dT%H:%M:%SZ', @now, '-' || ((n * @k * 2654435761) % 31536000) || ' seconds') || '","s":' || @source || '{"}"}{"}"}',
               @now, @now, 0, 0, 0, 1
          FROM s
        """,
        $"""
        INSERT INTO profile_identifiers (tenant_id, profile_id, type, value, source_id, first_seen_at, last_seen_at)
        {string.Format(CultureInfo.InvariantCulture, Numbers, "a", "b")}
        SELECT @brand, @p0 + n + 1, 'user_id', 'aud-' || n, @source, @now, @now FROM s
        UNION ALL
        SELECT @brand, @p0 + n + 1, 'phone', '+86138' || printf('%08d', n), @source, @now, @now FROM s WHERE n % 2 = 0
        """,
        $"""
        INSERT INTO events (id, tenant_id, source_id, message_id, type, name, user_id, timestamp, received_at, payload)
        {string.Format(CultureInfo.InvariantCulture, Numbers, "from", "to")},
             g AS (SELECT n, strftime('%Y-%m-%d %H:%M:%S', @now, '-' || ((n * 2654435761) % 31536000) || ' seconds') AS ts FROM s),
             x AS (SELECT n, ts, replace(ts, ' ', 'T') || 'Z' AS iso, {EventName} AS name FROM g)
        SELECT @e0 + n + 1, @brand, @source, 'seed-' || printf('%010d', n), CASE WHEN name IS NULL THEN 'identify' ELSE 'track' END, name, 'aud-' || (n / @k), ts, @now,
               {Payload}
          FROM x
        """,
        ProfileEvents,
        ProfileStats,
        Tags,
        TagChanges,
    ];
}
