using System.Text.Json;
using Meridian.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Platform.Outbox;

/// <summary>A domain event's payload. <see cref="EventType"/> is its stable, dotted name (e.g. <c>source.created</c>).</summary>
public interface IDomainEvent
{
    string EventType { get; }
}

/// <summary>
/// Publishes domain events through the transactional outbox: the event row is added to the current unit of work
/// and commits with the change that caused it. Delivery happens afterwards, at least once, by the dispatcher.
/// </summary>
public sealed class EventPublisher(MeridianDb db, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = Hosting.MeridianJson.Options;

    /// <summary><see cref="Publish"/> for a brand, its group looked up (<see cref="Tenancy.BrandGroups"/>).</summary>
    public async Task PublishAsync(long brandId, Func<IDomainEvent> describe, CancellationToken ct) =>
        Publish(await db.GroupOfAsync(brandId, ct), brandId, describe);

    /// <summary>Publish an event; <paramref name="describe"/> runs once ids are assigned, so it may name new rows.</summary>
    public void Publish(long groupId, long? brandId, Func<IDomainEvent> describe)
    {
        var at = time.GetUtcNow().UtcDateTime;
        db.AfterKeysAssigned(() =>
        {
            var e = describe();
            db.Add(new OutboxMessage
            {
                GroupId = groupId,
                BrandId = brandId,
                Type = e.EventType,
                Payload = JsonSerializer.Serialize(e, e.GetType(), Json),
                OccurredAt = at,
            });
        });
    }

    /// <summary>
    /// Writes events at once on the open transaction with one set-based insert, for a write path that adds many rows
    /// without change tracking (the group commit of coupon claims): an entity per event cost more there than the rows.
    /// They commit with the transaction, which then wakes the dispatcher as <see cref="Publish"/> does.
    /// </summary>
    public async Task PublishManyAsync(System.Data.Common.DbTransaction tx, long groupId, long? brandId, IEnumerable<IDomainEvent> events, CancellationToken ct)
    {
        var at = time.GetUtcNow().UtcDateTime;
        var written = await Hosting.BulkInsert.InsertAsync(tx, "outbox_messages", ["group_id", "brand_id", "type", "payload", "occurred_at"],
            events.Select(e => new object?[] { groupId, brandId, e.EventType, JsonSerializer.Serialize(e, e.GetType(), Json), at }), "", ct);
        if (written > 0) db.OutboxPending = true;
    }
}

/// <summary>
/// An in-process consumer of domain events. Delivery is at least once, so handling must be idempotent
/// (the message id is stable across retries and nodes).
/// </summary>
public interface IEventSubscriber
{
    /// <summary>Stable name, stored with each delivery; renaming a subscriber orphans its pending deliveries.</summary>
    string Name { get; }

    /// <summary>Where this event goes: nothing, one delivery (<c>[""]</c>) or one per target (e.g. per webhook endpoint).</summary>
    ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct);

    Task HandleAsync(OutboxMessage message, string target, CancellationToken ct);
}

/// <summary>
/// A subscriber that handles many deliveries at once (e.g. one insert for a batch of events). It runs as the system
/// (the events may be of several brands), so it must scope what it writes by each event's brand itself. If it throws,
/// the dispatcher delivers the batch again one by one through <see cref="IEventSubscriber.HandleAsync"/>.
/// </summary>
public interface IBatchEventSubscriber : IEventSubscriber
{
    Task HandleManyAsync(IReadOnlyList<(OutboxMessage Message, string Target)> deliveries, CancellationToken ct);
}
