using System.Text.Json;
using Meridian.Audiences.Data;
using Meridian.Data;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Audiences.Segments;

/// <summary>
/// Loyalty and Offers change what loyalty and coupon conditions see outside the event log (points posted after an order,
/// a tier review, a coupon issued or redeemed): their outbox events, each naming the profile, queue that profile to be
/// evaluated against its brand's segments. Delivery is at least once; evaluating a profile twice changes nothing.
/// </summary>
internal sealed class SegmentInputs(MeridianDb db, SegmentSignal signal) : IEventSubscriber
{
    private static readonly HashSet<string> Types =
    [
        "member.enrolled", "points.earned", "points.spent", "points.expired", "tier.changed",
        "coupon.issued", "coupon.redeemed", "coupon.reversed", "coupon.expired",
    ];

    public string Name => "segment-inputs";

    public async ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct) =>
        message.BrandId is { } brand && Types.Contains(message.Type) && await db.Set<Segment>().AnyAsync(s => s.TenantId == brand, ct) ? [""] : [];

    public async Task HandleAsync(OutboxMessage message, string target, CancellationToken ct)
    {
        using var payload = JsonDocument.Parse(message.Payload);
        if (!payload.RootElement.TryGetProperty("profileId", out var id) || id.ValueKind != JsonValueKind.Number) return;
        db.Add(new SegmentDirtyProfile { TenantId = message.BrandId!.Value, ProfileId = id.GetInt64() });
        await db.SaveChangesAsync(ct);
        signal.Notify();
    }
}
