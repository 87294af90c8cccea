using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>Every staff change is appended to the audit log (who, what, when, before/after, which key); nobody can rewrite it.</summary>
public abstract class AuditTests(MeridianAppFixture app)
{
    [Fact]
    public async Task Updating_a_source_records_who_changed_what_with_before_and_after()
    {
        var brand = await app.NewBrandAsync();
        var created = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "kiosk", channel = "pos" }).ReadAsync<JsonElement>();
        var id = created.GetProperty("source").GetProperty("id").GetInt64();
        await brand.Client.PatchAsJsonAsync($"/api/v1/sources/{id}", new { enabled = false }).ReadAsync<JsonElement>();

        var page = await brand.Client.GetAsync($"/api/v1/audit?entityType=source&entityId={id}").ReadAsync<JsonElement>();
        var entries = page.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["source.updated", "source.created"], entries.Select(e => e.GetProperty("action").GetString()!).ToArray());
        var update = entries[0];
        Assert.True(update.GetProperty("before").GetProperty("enabled").GetBoolean());
        Assert.False(update.GetProperty("after").GetProperty("enabled").GetBoolean());
        Assert.Equal("pos", update.GetProperty("after").GetProperty("channel").GetString());
        Assert.Equal(brand.Id, update.GetProperty("brandId").GetInt64());
        Assert.Equal(JsonValueKind.Number, update.GetProperty("actorKeyId").ValueKind);
        Assert.True(update.GetProperty("occurredAt").GetDateTime() > DateTime.UtcNow.AddMinutes(-1));
        Assert.DoesNotContain("mdn_wk_", entries[1].GetProperty("after").GetRawText().Replace(created.GetProperty("source").GetProperty("writeKeyPrefix").GetString()!, ""));
    }

    [Fact]
    public async Task A_brand_key_reads_only_its_brands_audit_entries()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        await b.Client.PostAsJsonAsync("/api/v1/sources", new { name = "secret-b", channel = "web" }).ReadAsync<JsonElement>();

        var page = await a.Client.GetAsync("/api/v1/audit?limit=200").ReadAsync<JsonElement>();
        Assert.All(page.GetProperty("items").EnumerateArray(), e => Assert.Equal(a.Id, e.GetProperty("brandId").GetInt64()));
    }

    [Fact]
    public async Task A_key_without_audit_read_gets_403()
    {
        var marketer = await app.NewBrandAsync("marketer");
        await marketer.Client.GetAsync("/api/v1/audit").ProblemAsync(403, Meridian.Hosting.ProblemTypes.Forbidden);
    }

    [Fact]
    public async Task The_database_refuses_to_update_or_delete_audit_entries()
    {
        var brand = await app.NewBrandAsync();
        await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "x", channel = "web" }).ReadAsync<JsonElement>();

        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var before = await db.Set<AuditEntry>().CountAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => db.Database.ExecuteSqlRawAsync("UPDATE audit_entries SET actor = 'forged'"));
        await Assert.ThrowsAnyAsync<Exception>(() => db.Database.ExecuteSqlRawAsync("DELETE FROM audit_entries"));
        Assert.Equal(before, await db.Set<AuditEntry>().CountAsync());
        Assert.False(await db.Set<AuditEntry>().AnyAsync(e => e.Actor == "forged"));
    }

    [Fact]
    public async Task The_audit_log_pages_newest_first_with_a_cursor()
    {
        var brand = await app.NewBrandAsync();
        for (var i = 0; i < 5; i++)
            await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = $"s{i}", channel = "web" }).ReadAsync<JsonElement>();

        var ids = new List<long>();
        string? cursor = null;
        do
        {
            var page = await brand.Client.GetAsync($"/api/v1/audit?action=source.created&limit=2{(cursor is null ? "" : "&cursor=" + cursor)}").ReadAsync<JsonElement>();
            ids.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()));
            cursor = page.GetProperty("nextCursor").GetString();
        } while (cursor is not null);
        Assert.Equal(5, ids.Count);
        Assert.Equal(ids.OrderDescending(), ids);
    }
}

public sealed class AuditTestsOnSqlite(SqliteApp app) : AuditTests(app), IClassFixture<SqliteApp>;

public sealed class AuditTestsOnPostgres(PostgresApp app) : AuditTests(app), IClassFixture<PostgresApp>;
