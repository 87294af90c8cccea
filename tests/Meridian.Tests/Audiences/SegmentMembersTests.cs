using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Audiences;
using Meridian.Audiences.Data;
using Meridian.Audiences.Segments;
using Meridian.Data;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Audiences;

/// <summary><see cref="SegmentMembers"/>, the read surface Offers' and Loyalty's segment conditions use.</summary>
public abstract class SegmentMembersTests(AudiencesApp app)
{
    private async Task<T> WithMembersAsync<T>(Func<SegmentMembers, MeridianDb, Task<T>> read)
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return await read(scope.ServiceProvider.GetRequiredService<SegmentMembers>(), scope.ServiceProvider.GetRequiredService<MeridianDb>());
    }

    private static async Task<long> IdentifyAsync(ProfileTestBrand b, string userId, object traits)
    {
        await b.SendAsync(new { type = "identify", userId, traits });
        return (await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", userId)).GetProperty("id").GetInt64();
    }

    private static async Task<long> SaveAsync(ProfileTestBrand b, string name) =>
        (await b.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name, rule = new { trait = "vip", op = "eq", value = true } }).ReadAsync<JsonElement>())
        .GetProperty("id").GetInt64();

    [Fact]
    public async Task A_ready_segment_answers_from_the_table_a_merged_id_for_its_survivor_and_nothing_for_a_brand_not_named()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var other = await ProfileTestBrand.CreateAsync(app);
        // dee has no vip trait of its own, so that merging it into ann leaves ann's traits as they are.
        var (ann, cy, dee) = (await IdentifyAsync(b, "ann", new { vip = true }), await IdentifyAsync(b, "cy", new { vip = false }), await IdentifyAsync(b, "dee", new { city = "Hangzhou" }));
        var vip = await SaveAsync(b, "VIP");
        await b.Test.Client.PostAsJsonAsync($"/api/v1/profiles/{ann}/merge", new { profileId = dee }).ReadAsync<JsonElement>();
        await AudiencesApp.CaughtUpAsync(b.Test.Client);

        var found = await WithMembersAsync((m, _) => m.OfAsync([b.Test.Id], [vip, 999_999_999L], [ann, cy, dee], default));
        Assert.Equal([(vip, ann), (vip, dee)], found.Pairs.Order());
        Assert.Equal("VIP", found.NameOf(vip));
        Assert.Equal("segment 999999999", found.NameOf(999_999_999L));
        Assert.Equal([ann, dee], (await WithMembersAsync((m, _) => m.InAnyAsync(b.Test.Id, [vip], [ann, cy, dee], default))).Order());
        Assert.Empty((await WithMembersAsync((m, _) => m.OfAsync([other.Test.Id], [vip], [ann], default))).Pairs);
        Assert.Equal([vip], (await WithMembersAsync((m, _) => m.ExistAsync([b.Test.Id], [vip, 999_999_999L], default))).Keys);
        Assert.Empty(await WithMembersAsync((m, _) => m.ExistAsync([other.Test.Id], [vip], default)));
    }

    [Fact]
    public async Task A_segment_still_evaluating_answers_by_its_rule_for_the_asked_profiles()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var (ann, bo) = (await IdentifyAsync(b, "ann", new { vip = true }), await IdentifyAsync(b, "bo", new { vip = false }));
        await AudiencesApp.CaughtUpAsync(b.Test.Client);
        // Another node holds maintenance's lease: the new segment stays unevaluated, its table empty. Maintenance writes its
        // job row with its first segment, so on a fresh database (this test first) the row is written here, at the
        // position maintenance would start from.
        await using (var scope = app.Services.CreateAsyncScope())
        {
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var resolved = await scope.ServiceProvider.GetRequiredService<ProfileDirectory>().ResolvedUpToAsync(default);
            var until = new DateTime(2100, 1, 1, 0, 0, 0, DateTimeKind.Utc);
            await scope.ServiceProvider.GetRequiredService<MeridianDb>().Database.ExecuteSqlAsync($"""
                INSERT INTO audience_jobs (name, position_tx, position_id, lease_owner, lease_until)
                VALUES ({SegmentMaintenance.Name}, {resolved.TxId}, {resolved.Id}, 'another-node', {until})
                ON CONFLICT (name) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
                """);
        }
        try
        {
            var vip = await SaveAsync(b, "VIP now");
            // A cycle of this node's maintenance that was already running when the lease changed hands may have
            // evaluated it: put it back as not evaluated yet, its table empty, as a new or changed rule is.
            await WithMembersAsync(async (_, db) =>
            {
                await db.Set<Segment>().IgnoreQueryFilters().Where(s => s.Id == vip).ExecuteUpdateAsync(s => s.SetProperty(x => x.Status, SegmentStatus.Evaluating));
                return await db.Set<SegmentMember>().IgnoreQueryFilters().Where(m => m.SegmentId == vip).ExecuteDeleteAsync();
            });
            Assert.Equal("evaluating", (await b.Test.Client.GetAsync($"/api/v1/segments/{vip}").ReadAsync<JsonElement>()).GetProperty("status").GetString());

            var found = await WithMembersAsync((m, _) => m.OfAsync([b.Test.Id], [vip], [ann, bo], default));
            Assert.Equal([(vip, ann)], found.Pairs);
            Assert.Equal("VIP now", found.NameOf(vip));
        }
        finally
        {
            await WithMembersAsync((_, db) => db.Set<AudienceJob>().Where(j => j.Name == SegmentMaintenance.Name)
                .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseOwner, (string?)null).SetProperty(j => j.LeaseUntil, (DateTime?)null)));
        }
        await AudiencesApp.CaughtUpAsync(b.Test.Client);
    }
}

public sealed class SegmentMembersTestsOnSqlite(AudiencesSqliteApp app) : SegmentMembersTests(app), IClassFixture<AudiencesSqliteApp>;

public sealed class SegmentMembersTestsOnPostgres(AudiencesPostgresApp app) : SegmentMembersTests(app), IClassFixture<AudiencesPostgresApp>;
