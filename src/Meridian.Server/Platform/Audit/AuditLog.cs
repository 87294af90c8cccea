using System.Text.Json;
using Meridian.Data;
using Meridian.Platform.Access;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Platform.Audit;

/// <summary>
/// One staff change: who (key and staff user), what (action, entity, before/after), when and from where.
/// Append-only: the API has no way to change it and the database rejects UPDATE and DELETE on the table.
/// </summary>
public sealed class AuditEntry
{
    public long Id { get; private set; }
    public long GroupId { get; init; }
    /// <summary>The brand the change belongs to; null for group-level changes (roles, group keys).</summary>
    public long? BrandId { get; init; }
    public DateTime OccurredAt { get; init; }
    public long? ActorKeyId { get; init; }
    public long? ActorStaffUserId { get; init; }
    public required string Actor { get; init; }
    public required string Action { get; init; }
    public required string EntityType { get; init; }
    public required string EntityId { get; init; }
    public string? Before { get; init; }
    public string? After { get; init; }
    public string? RemoteIp { get; init; }
}

internal sealed class AuditEntryMap : IEntityTypeConfiguration<AuditEntry>
{
    public void Configure(EntityTypeBuilder<AuditEntry> b)
    {
        b.ToTable("audit_entries");
        b.HasIndex(x => new { x.GroupId, x.Id });
        b.Property(x => x.Actor).HasMaxLength(200);
        b.Property(x => x.Action).HasMaxLength(100);
        b.Property(x => x.EntityType).HasMaxLength(100);
        b.Property(x => x.EntityId).HasMaxLength(100);
        b.Property(x => x.RemoteIp).HasMaxLength(64);
    }
}

/// <summary>A change to record: the entity's snapshot before and after (null when created or deleted).</summary>
public sealed record AuditChange(string Action, string EntityType, object EntityId, object? Before, object? After);

/// <summary>
/// Records staff changes in the same unit of work as the change itself: call <see cref="Record"/> before
/// <c>SaveChangesAsync</c>, so the entry and the change commit or fail together. The change is described lazily,
/// so it can name the id the database assigns to a new row.
/// </summary>
public sealed class AuditLog(MeridianDb db, IHttpContextAccessor http, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = Hosting.MeridianJson.Options;

    public void Record(long? brandId, Func<AuditChange> describe)
    {
        var context = http.HttpContext;
        var caller = context?.Features.Get<ApiKeyIdentity>();
        var at = time.GetUtcNow().UtcDateTime;
        var ip = context?.Connection.RemoteIpAddress?.ToString();
        var groupId = caller?.GroupId ?? db.Scope.GroupId;
        db.AfterKeysAssigned(() =>
        {
            var change = describe();
            db.Add(new AuditEntry
            {
                GroupId = groupId,
                BrandId = brandId,
                OccurredAt = at,
                ActorKeyId = caller?.KeyId,
                ActorStaffUserId = caller?.StaffUserId,
                Actor = caller is null ? "system" : $"key:{caller.KeyName}",
                Action = change.Action,
                EntityType = change.EntityType,
                EntityId = change.EntityId.ToString() ?? "",
                Before = change.Before is null ? null : JsonSerializer.Serialize(change.Before, Json),
                After = change.After is null ? null : JsonSerializer.Serialize(change.After, Json),
                RemoteIp = ip,
            });
        });
    }
}
