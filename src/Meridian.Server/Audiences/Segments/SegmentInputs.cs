using System.Linq.Expressions;
using System.Text.Json;
using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

/// <summary>
/// Loyalty and Offers change what loyalty and coupon conditions see outside the event log (points posted after an order,
/// a tier review, a coupon issued or redeemed), and Profiles changes profiles by hand (traits, merge, split, erasure,
/// <c>profile.changed</c>): their outbox events, each naming the profile, queue that profile to be
/// evaluated against its brand's segments. Delivery is at least once; evaluating a profile twice changes nothing.
/// </summary>
internal sealed class SegmentInputs(MeridianDb db, SegmentSignal signal) : IBatchEventSubscriber
{
    private static readonly HashSet<string> Types =
    [
        "member.enrolled", "points.earned", "points.spent", "points.expired", "tier.changed",
        "coupon.issued", "coupon.redeemed", "coupon.reversed", "coupon.expired", "profile.changed",
    ];

    public const string SubscriberName = "segment-inputs";

    public string Name => SubscriberName;

    /// <summary>
    /// Input events of the caller's brands not handed to this subscriber yet (not fanned out, or their delivery still
    /// pending): profiles about to be queued, so that "caught up" waits for them too.
    /// </summary>
    public static async Task<long> PendingAsync(MeridianDb db, CancellationToken ct)
    {
        var (all, brands) = (db.Scope.Unrestricted, db.Scope.ReadableBrandIds);
        Expression<Func<OutboxMessage, bool>> input = m => Types.Contains(m.Type) && (all || (m.BrandId != null && brands.Contains(m.BrandId.Value)));
        var inputs = db.Set<OutboxMessage>().Where(input);
        return await OutboxDispatcher.NotFannedOut(db).LongCountAsync(input, ct)
            + await db.Set<OutboxDelivery>().LongCountAsync(d => d.Subscriber == SubscriberName && d.Status == DeliveryStatus.Pending && inputs.Any(m => m.Id == d.MessageId), ct);
    }

    /// <summary>Whether a brand has segments, read once per scope (the dispatcher's scope is one batch of messages).</summary>
    private readonly Dictionary<long, bool> segmented = [];

    public async ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct) =>
        message.BrandId is { } brand && Types.Contains(message.Type) && await SegmentedAsync(brand, ct) ? [""] : [];

    private async ValueTask<bool> SegmentedAsync(long brand, CancellationToken ct) =>
        segmented.TryGetValue(brand, out var known) ? known : segmented[brand] = await db.Set<Segment>().AnyAsync(s => s.TenantId == brand, ct);

    public Task HandleAsync(OutboxMessage message, string target, CancellationToken ct) => HandleManyAsync([(message, target)], ct);

    /// <summary>Queues the events' profiles, each for the event's brand, with one insert.</summary>
    public async Task HandleManyAsync(IReadOnlyList<(OutboxMessage Message, string Target)> deliveries, CancellationToken ct)
    {
        var dirty = new List<SegmentDirtyProfile>();
        foreach (var (message, _) in deliveries)
        {
            using var payload = JsonDocument.Parse(message.Payload);
            if (payload.RootElement.TryGetProperty("profileId", out var id) && id.ValueKind == JsonValueKind.Number && message.BrandId is { } brand)
                dirty.Add(new SegmentDirtyProfile { TenantId = brand, ProfileId = id.GetInt64() });
        }
        if (dirty.Count == 0) return;
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await EntityRows.InsertAsync(db, dirty, returnKeys: false, ct);
            await tx.CommitAsync(ct);
        }
        signal.Notify();
    }
}
