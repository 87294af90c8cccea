using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Audiences.Segments;
using Meridian.Data;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Audiences;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>
/// The dispatcher hands a subscriber that takes batches (<see cref="IBatchEventSubscriber"/>, here the segment inputs)
/// all of a round's deliveries at once; when the batch fails it delivers them one by one, so the good events still
/// arrive and the failure is kept with the event that caused it.
/// </summary>
public abstract class OutboxBatchTests(AudiencesApp app)
{
    [Fact]
    public async Task A_batch_that_fails_on_one_event_is_delivered_one_by_one_and_only_that_event_waits_for_a_retry()
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        await b.Test.Client.PostAsJsonAsync("/api/v1/segments", new { name = "VIP", rule = new { trait = "vip", op = "eq", value = true } }).ReadAsync<JsonElement>();
        var profiles = new List<long>();
        foreach (var user in new[] { "ann", "bo", "cy" })
        {
            await b.SendAsync(new { type = "identify", userId = user, traits = new { vip = user != "bo" } });
            profiles.Add((await ProfileTestBrand.LookupAsync(b.Test.Client, "user_id", user)).GetProperty("id").GetInt64());
        }
        await AudiencesApp.CaughtUpAsync(b.Test.Client);

        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var group = await db.Set<Brand>().Where(x => x.Id == b.Test.Id).Select(x => x.GroupId).SingleAsync();
        OutboxMessage Changed(string payload) => new() { GroupId = group, BrandId = b.Test.Id, Type = "profile.changed", Payload = payload, OccurredAt = DateTime.UtcNow };
        var messages = new[] { Changed($"{{\"profileId\":{profiles[0]}}}"), Changed($"{{\"profileId\":{profiles[1]}}}"), Changed("{not json"),
            Changed($"{{\"profileId\":{profiles[2]}}}") };
        db.AddRange(messages);
        db.OutboxPending = true;
        await db.SaveChangesAsync();
        var ids = messages.Select(m => m.Id).ToList();

        List<OutboxDelivery> deliveries = [];
        for (var attempt = 0; attempt < 300; attempt++)
        {
            deliveries = await db.Set<OutboxDelivery>().AsNoTracking()
                .Where(d => ids.Contains(d.MessageId) && d.Subscriber == SegmentInputs.SubscriberName).OrderBy(d => d.MessageId).ToListAsync();
            if (deliveries.Count == 4 && deliveries.All(d => d.Status == DeliveryStatus.Delivered || d.LastError != null)) break;
            await Task.Delay(100);
        }
        Assert.Equal(4, deliveries.Count);
        Assert.Equal([DeliveryStatus.Delivered, DeliveryStatus.Delivered, DeliveryStatus.Pending, DeliveryStatus.Delivered], deliveries.Select(d => d.Status));
        Assert.All(deliveries.Where(d => d.Status == DeliveryStatus.Delivered), d => Assert.Equal((1, (string?)null), (d.Attempts, d.LastError)));
        Assert.StartsWith("JsonReaderException", deliveries[2].LastError);
    }
}

public sealed class OutboxBatchTestsOnSqlite(AudiencesSqliteApp app) : OutboxBatchTests(app), IClassFixture<AudiencesSqliteApp>;

public sealed class OutboxBatchTestsOnPostgres(AudiencesPostgresApp app) : OutboxBatchTests(app), IClassFixture<AudiencesPostgresApp>;
