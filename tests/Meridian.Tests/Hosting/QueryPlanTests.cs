using System.Data.Common;
using Meridian.Audiences.Segments;
using Meridian.Data;
using Meridian.Platform.Tenancy;
using Meridian.Profiles.Identity;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Hosting;

/// <summary>
/// Queries whose speed at a million profiles rests on SQLite's planner taking an index: the plan is asserted, so that
/// a harmless-looking rewrite (a dropped column, a "simplified" planner hint) fails here rather than in the bench.
/// SQLite only: SQLite plans by the query's shape, so an empty table shows the plan of a full one. PostgreSQL plans by
/// its statistics (on an empty table it seeks the brand and filters the rest even with sequential scans off); there
/// the bench's figures show it.
/// </summary>
public sealed class QueryPlanTestsOnSqlite(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Identity_resolution_looks_identifiers_up_by_all_three_columns_of_the_unique_index()
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = await OpenAsync(scope);
        await using var command = IdentityResolver.Holders(db, [(1, "user_id", "u1"), (1, "email", "a@example.com"), (2, "phone", "+8613800000000")]).CreateDbCommand();

        Assert.Contains(await PlanAsync(command), line => line.Contains("USING INDEX ix_profile_identifiers_tenant_id_type_value (tenant_id=? AND type=? AND value=?)"));
    }

    /// <summary>
    /// SQLite's count over a brand takes a tag condition as the set of tagged profiles plus the customers whose merged
    /// profiles carry the tag; those merged few are found through the merged_into_id index (the <c>&gt; 0</c> and unary
    /// <c>+</c> in <see cref="SegmentSql"/>), not by walking the brand's index over every profile. PostgreSQL's form
    /// differs (a row-IN) and its planner needs no hint.
    /// </summary>
    [Fact]
    public async Task A_brand_wide_tag_count_finds_merged_profiles_through_their_index()
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = await OpenAsync(scope);
        var (condition, parameters) = SegmentSql.Compile(new TagCondition("VIP"), postgres: false, DateTime.UtcNow, new LifecycleThresholds(), wholeBrand: 1);
        await using var command = db.Database.GetDbConnection().CreateCommand();
        command.CommandText = $"SELECT count(*) FROM profiles p WHERE p.tenant_id = @brand AND p.merged_into_id IS NULL AND p.erased_at IS NULL AND {condition}";
        SegmentSql.Bind(command, [("@brand", 1L), .. parameters]);

        var plan = await PlanAsync(command);

        Assert.Contains(plan, line => line.Contains("SEARCH m USING INDEX ix_profiles_merged_into_id (merged_into_id>?)"));
    }

    /// <summary>The scope's context, as the system, on its opened connection (closed with the scope).</summary>
    private static async Task<MeridianDb> OpenAsync(AsyncServiceScope scope)
    {
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        await db.Database.OpenConnectionAsync();
        return db;
    }

    /// <summary>SQLite's EXPLAIN QUERY PLAN: one line per step.</summary>
    private static async Task<List<string>> PlanAsync(DbCommand command)
    {
        command.CommandText = "EXPLAIN QUERY PLAN " + command.CommandText;
        var lines = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) lines.Add(reader.GetString(3));
        return lines;
    }
}
