using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Loyalty.Batches;

/// <summary>
/// A posting of a bulk earn that was rejected, kept with its reason, so that what a till's end-of-day file or a
/// migration failed to credit can be found and fixed later, not only read once from the response.
/// </summary>
public sealed class RejectedPosting : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public DateTime ReceivedAt { get; init; }
    /// <summary>The item's place in its batch (<c>index</c> in the API; a reserved word as a column).</summary>
    public int Position { get; init; }
    public long? MemberId { get; init; }
    public long? Points { get; init; }
    public string? SourceKey { get; init; }
    public string? Reference { get; init; }
    /// <summary>The stable problem type, as in the response (<c>/problems/not-found</c>, <c>/problems/validation</c>...).</summary>
    public required string ProblemType { get; init; }
    public required string Detail { get; init; }
}

public sealed record RejectedPostingDto(long Id, DateTime ReceivedAt, int Index, long? MemberId, long? Points, string? SourceKey, string? Reference,
    BatchProblem Problem);

public static class RejectedPostings
{
    /// <summary><c>GET /api/v1/loyalty/postings/rejected</c>: the brand's rejected bulk postings, oldest first, cursor paged.</summary>
    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Ok<Page<RejectedPostingDto>>> List([AsParameters] PageRequest page, MeridianDb db, CancellationToken ct)
    {
        var rows = await db.Set<RejectedPosting>().AsNoTracking().Where(r => r.Id > page.After).OrderBy(r => r.Id).Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows.Select(r => new RejectedPostingDto(r.Id, r.ReceivedAt, r.Position, r.MemberId, r.Points, r.SourceKey, r.Reference,
            new BatchProblem(r.ProblemType, r.Detail))).ToList(), r => r.Id));
    }
}

internal sealed class RejectedPostingMap : IEntityTypeConfiguration<RejectedPosting>
{
    public void Configure(EntityTypeBuilder<RejectedPosting> b)
    {
        b.ToTable("loyalty_rejected_postings");
        b.HasIndex(x => x.TenantId);
        b.Property(x => x.SourceKey).HasMaxLength(250);
        b.Property(x => x.Reference).HasMaxLength(200);
        b.Property(x => x.ProblemType).HasMaxLength(100);
        b.Property(x => x.Detail).HasMaxLength(1000);
    }
}
