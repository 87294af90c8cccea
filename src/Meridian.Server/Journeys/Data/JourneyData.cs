using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Journeys.Data;

public enum JourneyStatus
{
    Draft = 0,
    Active = 1,
    Paused = 2,
    Stopped = 3,
}

/// <summary>A journey as staff edit it: a draft graph, and the version new entries start on once published.</summary>
public sealed class Journey : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Name { get; set; }
    public JourneyStatus Status { get; set; }
    /// <summary>The graph being edited (JSON, see docs/journeys.md); validated on every save.</summary>
    public required string Draft { get; set; }
    /// <summary>The published version new entries start on; null until the first publish.</summary>
    public long? CurrentVersionId { get; set; }
    public int LatestVersion { get; set; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>A published, frozen graph. Instances keep the version they entered on until they finish.</summary>
public sealed class JourneyVersion : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long JourneyId { get; init; }
    public int Version { get; init; }
    public required string Graph { get; init; }
    public DateTime PublishedAt { get; init; }
}

public enum InstanceState
{
    /// <summary>Runs its current node when <c>due_at</c> comes (at once after entry or a move).</summary>
    Active = 0,
    /// <summary>Waits at a wait node for <c>due_at</c> (or for an event, which brings <c>due_at</c> forward).</summary>
    Waiting = 1,
    Completed = 2,
    /// <summary>Reached a goal node: counts as converted.</summary>
    Converted = 3,
    Failed = 4,
    Stopped = 5,
}

/// <summary>
/// One customer's way through one version of a journey. The row is the whole state: the node it is at, when it is due,
/// and which node holds it (<c>lease_owner</c> until <c>lease_until</c>), so a restart or another node resumes it.
/// </summary>
public sealed class JourneyInstance : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long JourneyId { get; init; }
    public long VersionId { get; init; }
    public long ProfileId { get; init; }
    /// <summary>What brought the customer in (<c>event:{id}</c>, <c>outbox:{id}</c>, <c>date:{day}</c>, <c>api:{key}</c>): an entry happens once per key.</summary>
    public required string EntryKey { get; init; }
    public InstanceState State { get; set; }
    public required string CurrentNode { get; set; }
    /// <summary>How many nodes the instance has left; part of every action's idempotency key and of the step log's key.</summary>
    public int Step { get; set; }
    public DateTime? DueAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    /// <summary>Failed tries of the current node's action.</summary>
    public int Attempts { get; set; }
    /// <summary>The event a wait-for-event node waits for; <see cref="EventArrived"/> once it came.</summary>
    public string? WaitEvent { get; set; }
    public bool EventArrived { get; set; }
    /// <summary>JSON: the triggering event's properties (<c>event</c>), split choices (<c>splits</c>), the last error (<c>error</c>).</summary>
    public required string Context { get; set; }
    public DateTime EnteredAt { get; init; }
    public DateTime? FinishedAt { get; set; }
}

/// <summary>One node an instance has left, and how; unique per (instance, step), so a step can never be recorded twice.</summary>
public sealed class JourneyStep : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long JourneyId { get; init; }
    public long InstanceId { get; init; }
    public int Step { get; init; }
    public required string Node { get; init; }
    /// <summary><c>passed</c>, <c>failed</c> (an action gave up; the failure edge was taken or the instance failed), <c>converted</c>, <c>exited</c>.</summary>
    public required string Outcome { get; init; }
    public string? Detail { get; init; }
    public required string By { get; init; }
    public DateTime At { get; init; }
}

/// <summary>A background job of the module: its lease, and where it is (event log position, last day run).</summary>
public sealed class JourneyJob
{
    public required string Name { get; init; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public long PositionTx { get; set; }
    public long PositionId { get; set; }
    public string? LastDay { get; set; }

    /// <summary>Claims the job for <paramref name="node"/> (or renews its claim) unless another node's lease is still running.</summary>
    internal static async Task<bool> TakeLeaseAsync(Meridian.Data.MeridianDb db, string name, string node, TimeSpan lease, DateTime now, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"INSERT INTO journey_jobs (name, position_tx, position_id) VALUES ({name}, 0, 0) ON CONFLICT (name) DO NOTHING", ct);
        return await db.Set<JourneyJob>().Where(j => j.Name == name && (j.LeaseOwner == node || j.LeaseUntil == null || j.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseOwner, node).SetProperty(j => j.LeaseUntil, now + lease), ct) == 1;
    }
}

internal sealed class JourneyMaps : IEntityTypeConfiguration<Journey>, IEntityTypeConfiguration<JourneyVersion>, IEntityTypeConfiguration<JourneyInstance>,
    IEntityTypeConfiguration<JourneyStep>, IEntityTypeConfiguration<JourneyJob>
{
    public void Configure(EntityTypeBuilder<Journey> b)
    {
        b.ToTable("journeys");
        b.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        b.Property(x => x.Name).HasMaxLength(200);
    }

    public void Configure(EntityTypeBuilder<JourneyVersion> b)
    {
        b.ToTable("journey_versions");
        b.HasIndex(x => new { x.JourneyId, x.Version }).IsUnique();
        b.HasOne<Journey>().WithMany().HasForeignKey(x => x.JourneyId);
    }

    public void Configure(EntityTypeBuilder<JourneyInstance> b)
    {
        b.ToTable("journey_instances");
        // The worker's claim: running instances by due time.
        b.HasIndex(x => x.DueAt).HasFilter("state IN (0, 1)");
        b.HasIndex(x => new { x.JourneyId, x.ProfileId, x.EntryKey }).IsUnique();
        b.HasIndex(x => new { x.ProfileId, x.WaitEvent }).HasFilter("wait_event IS NOT NULL");
        b.HasIndex(x => new { x.JourneyId, x.State, x.CurrentNode });
        b.HasOne<Journey>().WithMany().HasForeignKey(x => x.JourneyId);
        b.HasOne<JourneyVersion>().WithMany().HasForeignKey(x => x.VersionId);
        b.Property(x => x.EntryKey).HasMaxLength(200);
        b.Property(x => x.CurrentNode).HasMaxLength(64);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
        b.Property(x => x.WaitEvent).HasMaxLength(200);
    }

    public void Configure(EntityTypeBuilder<JourneyStep> b)
    {
        b.ToTable("journey_steps");
        b.HasIndex(x => new { x.InstanceId, x.Step }).IsUnique();
        b.HasIndex(x => new { x.JourneyId, x.Node });
        b.Property(x => x.Node).HasMaxLength(64);
        b.Property(x => x.Outcome).HasMaxLength(20);
        b.Property(x => x.Detail).HasMaxLength(1000);
        b.Property(x => x.By).HasMaxLength(100);
    }

    public void Configure(EntityTypeBuilder<JourneyJob> b)
    {
        b.ToTable("journey_jobs");
        b.HasKey(x => x.Name);
        b.Property(x => x.Name).HasMaxLength(100);
        b.Property(x => x.LeaseOwner).HasMaxLength(100);
        b.Property(x => x.LastDay).HasMaxLength(10);
    }
}
