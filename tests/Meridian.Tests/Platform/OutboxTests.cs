using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Ingestion.Sources;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>Events commit with the change that causes them, or not at all.</summary>
public abstract class OutboxTests(MeridianAppFixture app)
{
    [Fact]
    public async Task A_change_and_its_event_commit_together()
    {
        var brand = await app.NewBrandAsync();
        var created = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "atomic", channel = "web" }).ReadAsync<JsonElement>();
        var id = created.GetProperty("source").GetProperty("id").GetInt64();

        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var events = await db.Set<OutboxMessage>().Where(m => m.BrandId == brand.Id && m.Type == "source.created").ToListAsync();
        var message = Assert.Single(events);
        Assert.Equal(id, JsonDocument.Parse(message.Payload).RootElement.GetProperty("sourceId").GetInt64());
    }

    [Fact]
    public async Task A_change_that_fails_to_commit_publishes_no_event()
    {
        var brand = await app.NewBrandAsync();
        await using var scope = app.Services.CreateAsyncScope();
        var tenant = scope.ServiceProvider.GetRequiredService<TenantScope>();
        tenant.Restrict(1, [brand.Id], brand.Id);
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var publisher = scope.ServiceProvider.GetRequiredService<EventPublisher>();

        // Two sources with one name in one unit of work: the unique index fails the commit, after the event was queued.
        var first = NewSource(brand.Id, "twin");
        var second = NewSource(brand.Id, "twin");
        db.AddRange(first, second);
        publisher.Publish(1, brand.Id, () => new SourceCreated(first.Id, first.Name, first.Channel));
        await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());

        await using var check = app.Services.CreateAsyncScope();
        check.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var fresh = check.ServiceProvider.GetRequiredService<MeridianDb>();
        Assert.False(await fresh.Set<Source>().AnyAsync(s => s.TenantId == brand.Id && s.Name == "twin"));
        Assert.False(await fresh.Set<OutboxMessage>().AnyAsync(m => m.BrandId == brand.Id && m.Type == "source.created"));
    }

    [Fact]
    public async Task Writing_a_row_of_a_brand_outside_the_scope_is_refused()
    {
        var a = await app.NewBrandAsync();
        var b = await app.NewBrandAsync();
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().Restrict(1, [a.Id], a.Id);
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        db.Add(NewSource(b.Id, "smuggled"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => db.SaveChangesAsync());
    }

    private static Source NewSource(long brandId, string name) => new()
    {
        TenantId = brandId, Name = name, Channel = Channel.Web, WriteKeyPrefix = "mdn_wk_x…",
        WriteKeyHash = Guid.NewGuid().ToString("N"), CreatedAt = DateTime.UtcNow, UpdatedAt = DateTime.UtcNow,
    };
}

public sealed class OutboxTestsOnSqlite(SqliteApp app) : OutboxTests(app), IClassFixture<SqliteApp>;

public sealed class OutboxTestsOnPostgres(PostgresApp app) : OutboxTests(app), IClassFixture<PostgresApp>;
