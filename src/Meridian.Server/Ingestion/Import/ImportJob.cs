using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Ingestion.Import;

/// <summary>What the rows of a file are: each becomes a Segment message of the matching type.</summary>
internal enum ImportKind
{
    /// <summary>A member export: one <c>identify</c> per row.</summary>
    Customers,
    /// <summary>Receipts: one <c>track</c> (<c>Order Completed</c> or <c>Order Refunded</c>) per row.</summary>
    Orders,
    /// <summary>Segment-shaped messages, one per line, stored as they are.</summary>
    Events,
}

internal enum ImportFormat
{
    Csv,
    Jsonl,
}

internal enum ImportStatus
{
    Queued,
    Running,
    Completed,
    Failed,
}

/// <summary><c>Meridian:Import</c>: where uploads are kept and how the worker goes through them.</summary>
internal sealed class ImportOptions
{
    /// <summary>Uploaded files wait here until imported; relative to the working directory, like the SQLite file.</summary>
    public string Directory { get; set; } = "data/imports";
    public long MaxFileBytes { get; set; } = 2L * 1024 * 1024 * 1024;
    /// <summary>Rows stored per transaction; progress is committed with each chunk.</summary>
    public int ChunkSize { get; set; } = 500;
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);
    /// <summary>How long a node keeps a claimed import without committing a chunk before another node may take it over.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(60);
    public int MaxAttempts { get; set; } = 5;
    public string? NodeName { get; set; }
    public bool Enabled { get; set; } = true;
}

/// <summary>
/// One bulk import of a file into a source. The row is the import's whole state: where in the file the last committed
/// chunk ended (<see cref="NextOffset"/>, <see cref="NextLine"/>) and what it counted, updated in the same transaction
/// as the chunk's events, so a node that dies mid-file leaves a job that the next claimant resumes exactly there.
/// </summary>
internal sealed class ImportJob : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public long SourceId { get; init; }
    public ImportKind Kind { get; init; }
    public ImportFormat Format { get; init; }
    /// <summary>The effective CSV mapping, header to field, as JSON (fixed when the import is created); null for JSONL.</summary>
    public string? Mapping { get; init; }
    /// <summary>The name the client gave the file, for people; never used as a path.</summary>
    public string? FileName { get; init; }
    public required string FilePath { get; init; }
    /// <summary>An upload is Meridian's to delete once imported; a file the CLI imported in place is the user's.</summary>
    public bool OwnsFile { get; init; }
    public long FileBytes { get; init; }
    public required string FileSha256 { get; init; }
    /// <summary>
    /// Messages built from rows get the id <c>{prefix}{line}</c>, the prefix a hash of the file's content and the mapping:
    /// re-reading a row (after a crash, or the same file uploaded twice) yields the same id, which the events' unique key drops.
    /// </summary>
    public required string MessageIdPrefix { get; init; }
    public ImportStatus Status { get; set; }
    public long RowsRead { get; set; }
    public long Accepted { get; set; }
    public long Duplicates { get; set; }
    public long Rejected { get; set; }
    /// <summary>Rows of another brand (by their brand column), left for that brand's import.</summary>
    public long Skipped { get; set; }
    /// <summary>Byte offset in the file where the next uncommitted row starts.</summary>
    public long NextOffset { get; set; }
    /// <summary>Line number (1-based) at <see cref="NextOffset"/>.</summary>
    public long NextLine { get; set; }
    /// <summary>Claims since the last committed chunk: one while all goes well; past <see cref="ImportOptions.MaxAttempts"/> the import fails.</summary>
    public int Attempts { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public string? Error { get; set; }
    public required string CreatedBy { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
}

internal sealed class ImportJobMap : IEntityTypeConfiguration<ImportJob>
{
    public void Configure(EntityTypeBuilder<ImportJob> b)
    {
        b.ToTable("imports");
        b.HasIndex(x => new { x.TenantId, x.Id });
        b.HasIndex(x => new { x.Status, x.LeaseUntil });
        b.HasOne<Brand>().WithMany().HasForeignKey(x => x.TenantId);
        b.Property(x => x.Kind).HasConversion<string>().HasMaxLength(20);
        b.Property(x => x.Format).HasConversion<string>().HasMaxLength(10);
        b.Property(x => x.Status).HasConversion<string>().HasMaxLength(20);
        b.Property(x => x.FileName).HasMaxLength(255);
        b.Property(x => x.FilePath).HasMaxLength(1000);
        b.Property(x => x.FileSha256).HasMaxLength(64);
        b.Property(x => x.MessageIdPrefix).HasMaxLength(64);
        b.Property(x => x.LeaseOwner).HasMaxLength(200);
        b.Property(x => x.Error).HasMaxLength(1000);
        b.Property(x => x.CreatedBy).HasMaxLength(200);
    }
}
