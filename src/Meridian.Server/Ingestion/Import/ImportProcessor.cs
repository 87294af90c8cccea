using System.Data.Common;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Ingestion.Sources;
using Meridian.Ingestion.Tracking;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Ingestion.Import;

internal sealed record ImportProgress(long Id, ImportStatus Status, long RowsRead, long Accepted, long Duplicates, long Rejected, long Skipped,
    long NextOffset, long NextLine, long FileBytes, string? Error)
{
    public double Percent => Status == ImportStatus.Completed ? 100 : FileBytes == 0 ? 0 : Math.Round(100.0 * NextOffset / FileBytes, 1);

    public static ImportProgress Of(ImportJob job) => new(job.Id, job.Status, job.RowsRead, job.Accepted, job.Duplicates, job.Rejected,
        job.Skipped, job.NextOffset, job.NextLine, job.FileBytes, job.Error);
}

internal enum ImportRunOutcome
{
    Completed,
    Failed,
    /// <summary>Cancelled, after a failed attempt, or stopped on request: the job stays to be resumed.</summary>
    Stopped,
    /// <summary>Another node took the job over (this one was too slow to renew its lease); this node's last chunk was rolled back.</summary>
    LeaseLost,
    NotClaimed,
}

/// <summary>This node's lease on the import lapsed and another node holds it now: nothing of this chunk may commit.</summary>
internal sealed class LeaseLostException() : Exception("The import's lease was taken over by another node.");

/// <summary>
/// Runs imports, chunk by chunk: each chunk's events, rejects and the job's progress commit in one transaction through
/// <see cref="EventStore"/>, and only while this node still holds the job's lease (the progress update is conditional on
/// it). A node that dies mid-file leaves the job at its last committed chunk; once the lease lapses any node claims it
/// and resumes from that byte offset. Rows read twice (never, unless a commit's reply was lost) keep their message ids,
/// so the events' unique key drops them: each row is stored once.
/// </summary>
internal sealed class ImportProcessor(IServiceScopeFactory scopes, TimeProvider time, IOptions<ImportOptions> options, ILogger<ImportProcessor> logger)
{
    private readonly ImportOptions opts = options.Value;

    /// <summary>Identifies this process in leases; defaults to host name and process id.</summary>
    public string Node { get; } = options.Value.NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}";

    private sealed record Claim(long Id, int Attempts, string? LastError);

    /// <summary>Claims the oldest import that no node holds and runs it to the end. False when there was none.</summary>
    public async Task<bool> RunNextAsync(CancellationToken ct)
    {
        var claim = await ClaimAsync(Node, null, ct);
        if (claim is null) return false;
        await RunClaimedAsync(claim, Node, null, null, ct);
        return true;
    }

    /// <summary>
    /// Claims one import (if no node holds it) and runs it. <paramref name="stopAfterChunks"/> stops early as a crash
    /// would, keeping the lease until it lapses: for the tests that prove a resume.
    /// </summary>
    public async Task<ImportRunOutcome> RunAsync(long id, string owner, int? stopAfterChunks, IProgress<ImportProgress>? progress, CancellationToken ct)
    {
        var claim = await ClaimAsync(owner, id, ct);
        return claim is null ? ImportRunOutcome.NotClaimed : await RunClaimedAsync(claim, owner, stopAfterChunks, progress, ct);
    }

    private async Task<ImportRunOutcome> RunClaimedAsync(Claim claim, string owner, int? stopAfterChunks, IProgress<ImportProgress>? progress, CancellationToken ct)
    {
        if (claim.Attempts > opts.MaxAttempts)
        {
            await FailAsync(claim.Id, owner, $"Gave up after {opts.MaxAttempts} attempts. Last error: {claim.LastError}", progress);
            return ImportRunOutcome.Failed;
        }
        try
        {
            return await ProcessAsync(claim.Id, owner, stopAfterChunks, progress, ct);
        }
        catch (ImportFailedException ex)
        {
            await FailAsync(claim.Id, owner, ex.Message, progress);
            return ImportRunOutcome.Failed;
        }
        catch (LeaseLostException)
        {
            logger.LogWarning("Import {ImportId}: another node took it over; this node stops", claim.Id);
            return ImportRunOutcome.LeaseLost;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await ReleaseAsync(claim.Id, owner);
            throw;
        }
        catch (Exception ex)
        {
            // Anything else may pass (the database restarting, a full disk): retried after a backoff, up to MaxAttempts.
            logger.LogWarning(ex, "Import {ImportId} attempt {Attempt} failed", claim.Id, claim.Attempts);
            await BackOffAsync(claim.Id, owner, claim.Attempts, $"{ex.GetType().Name}: {ex.Message}");
            return ImportRunOutcome.Stopped;
        }
    }

    private async Task<ImportRunOutcome> ProcessAsync(long id, string owner, int? stopAfterChunks, IProgress<ImportProgress>? progress, CancellationToken ct)
    {
        ImportJob job;
        WriteKeySource? source;
        string? brandSlug;
        await using (var scope = SystemScope(out var db))
        {
            job = await db.Set<ImportJob>().AsNoTracking().SingleAsync(j => j.Id == id, ct);
            var found = await (from s in db.Set<Source>()
                               join b in db.Set<Brand>() on s.TenantId equals b.Id
                               where s.Id == job.SourceId && s.TenantId == job.TenantId
                               select new { s.Id, s.TenantId, b.GroupId, s.Enabled, b.Slug }).SingleOrDefaultAsync(ct);
            source = found is null ? null : new WriteKeySource(found.Id, found.TenantId, found.GroupId, found.Enabled);
            brandSlug = found?.Slug;
        }
        if (job.LeaseOwner != owner) throw new LeaseLostException();
        if (source is null) throw new ImportFailedException($"Source {job.SourceId} was deleted before the import finished.");
        if (!source.Enabled) throw new ImportFailedException($"Source {job.SourceId} is disabled: enable it and import the file again.");

        FileStream stream;
        try
        {
            stream = new FileStream(job.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            // Retried like any passing failure: with several nodes, another one may hold the upload (unless they share the folder).
            throw new IOException($"The file to import is not on node {Node}: it was removed, or the upload went to another node.");
        }
        await using var _ = stream;
        if (stream.Length != job.FileBytes)
            throw new ImportFailedException($"The file changed since the import was created ({job.FileBytes} bytes then, {stream.Length} now).");
        var reader = ImportReader.Open(job, stream, brandSlug!);
        var state = ImportProgress.Of(job) with { Status = ImportStatus.Running };
        progress?.Report(state);

        for (var chunks = 1; ; chunks++)
        {
            if (ct.IsCancellationRequested)
            {
                await ReleaseAsync(id, owner);
                return ImportRunOutcome.Stopped;
            }
            var receivedAt = time.GetUtcNow().UtcDateTime;
            var accepted = new List<AcceptedMessage>();
            var rejected = new List<RejectedMessage>();
            long rows = 0, skipped = 0, end = state.NextOffset, nextLine = state.NextLine;
            while (rows < opts.ChunkSize && reader.Next(receivedAt) is { } item)
            {
                end = item.End;
                nextLine = item.NextLine;
                if (!item.Counts) continue;
                rows++;
                if (item.Accepted is { } a) accepted.Add(a);
                else if (item.Rejected is { } r) rejected.Add(r);
                else skipped++;
            }
            var done = reader.AtEnd;
            var chunk = new Chunk(rows, skipped, end, nextLine, done ? ImportStatus.Completed : ImportStatus.Running, receivedAt);

            StoreResult stored;
            await using (var scope = SystemScope(out var db))
            {
                if (accepted.Count + rejected.Count > 0)
                {
                    stored = (await scope.ServiceProvider.GetRequiredService<EventStore>().StoreAsync([new IngestBatch(source, accepted, rejected, receivedAt, null)],
                        (tx, results, c) => RecordAsync(tx.Connection!, tx, id, owner, chunk, results[0], c), ct))[0];
                }
                else
                {
                    stored = new StoreResult(0, 0, 0);
                    await using var open = await db.Database.OpenedAsync(ct);
                    await RecordAsync(db.Database.GetDbConnection(), null, id, owner, chunk, stored, ct);
                }
            }

            state = state with
            {
                Status = chunk.Status, RowsRead = state.RowsRead + rows, Accepted = state.Accepted + stored.Accepted,
                Duplicates = state.Duplicates + stored.Duplicates, Rejected = state.Rejected + stored.Rejected,
                Skipped = state.Skipped + skipped, NextOffset = end, NextLine = nextLine,
            };
            progress?.Report(state);
            if (done)
            {
                DeleteUpload(job);
                return ImportRunOutcome.Completed;
            }
            if (chunks == stopAfterChunks) return ImportRunOutcome.Stopped;
        }
    }

    private sealed record Chunk(long Rows, long Skipped, long End, long NextLine, ImportStatus Status, DateTime At);

    /// <summary>
    /// Adds the chunk's counts and moves the job's position, if this node still holds its lease; renews the lease. Progress
    /// resets the attempts: they count claims that got nowhere, so a long import survives any number of restarts.
    /// </summary>
    private async Task RecordAsync(DbConnection connection, DbTransaction? tx, long id, string owner, Chunk chunk, StoreResult stored, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = """
            UPDATE imports
               SET rows_read = rows_read + @rows, accepted = accepted + @accepted, duplicates = duplicates + @duplicates,
                   rejected = rejected + @rejected, skipped = skipped + @skipped, next_offset = @offset, next_line = @line,
                   status = @status, lease_until = @until, finished_at = @finished, error = NULL, attempts = 1
             WHERE id = @id AND lease_owner = @owner AND status = @running
            """;
        var completed = chunk.Status == ImportStatus.Completed;
        command.AddParameter("@rows", chunk.Rows);
        command.AddParameter("@accepted", (long)stored.Accepted);
        command.AddParameter("@duplicates", (long)stored.Duplicates);
        command.AddParameter("@rejected", (long)stored.Rejected);
        command.AddParameter("@skipped", chunk.Skipped);
        command.AddParameter("@offset", chunk.End);
        command.AddParameter("@line", chunk.NextLine);
        command.AddParameter("@status", chunk.Status.ToString());
        command.AddParameter("@until", completed ? null : chunk.At + opts.Lease);
        command.AddParameter("@finished", completed ? chunk.At : null);
        command.AddParameter("@id", id);
        command.AddParameter("@owner", owner);
        command.AddParameter("@running", nameof(ImportStatus.Running));
        if (await command.ExecuteNonQueryAsync(ct) == 0) throw new LeaseLostException();
    }

    /// <summary>
    /// Takes a queued import, or a running one whose lease lapsed (its node died), for <paramref name="owner"/>: a
    /// conditional update, with <c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL, so that two nodes never both get it.
    /// </summary>
    private async Task<Claim?> ClaimAsync(string owner, long? id, CancellationToken ct)
    {
        await using var scope = SystemScope(out var db);
        var now = time.GetUtcNow().UtcDateTime;
        var skipLocked = db.Database.IsNpgsql() ? "FOR UPDATE SKIP LOCKED" : "";
        // By id (the CLI), a job may also be claimed by the owner of its lease: the CLI creates its job already leased, so
        // that no server takes it between the insert and the claim.
        var free = id is null ? "(lease_until IS NULL OR lease_until < @now)" : "(lease_until IS NULL OR lease_until < @now OR lease_owner = @owner) AND id = @id";
        await using var open = await db.Database.OpenedAsync(ct);
        await using var command = open.Connection.CreateCommand();
        command.CommandText = $"""
            UPDATE imports
               SET status = @running, lease_owner = @owner, lease_until = @until, attempts = attempts + 1, started_at = COALESCE(started_at, @now)
             WHERE id IN (SELECT id FROM imports
                           WHERE status IN (@queued, @running) AND {free}
                           ORDER BY id LIMIT 1 {skipLocked})
               AND status IN (@queued, @running) AND {free}
            RETURNING id, attempts, error
            """;
        command.AddParameter("@running", nameof(ImportStatus.Running));
        command.AddParameter("@queued", nameof(ImportStatus.Queued));
        command.AddParameter("@owner", owner);
        command.AddParameter("@until", now + opts.Lease);
        command.AddParameter("@now", now);
        if (id is not null) command.AddParameter("@id", id.Value);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? new Claim(reader.GetInt64(0), reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetString(2)) : null;
    }

    /// <summary>Gives the job up at once (shutting down): another node, or this one restarted, resumes it without waiting for the lease.</summary>
    private async Task ReleaseAsync(long id, string owner)
    {
        await using var scope = SystemScope(out var db);
        await Mine(db, id, owner).ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseUntil, (DateTime?)null), CancellationToken.None);
    }

    /// <summary>Keeps the lease past a backoff, so that no node retries at once; the error shows in the job meanwhile.</summary>
    private async Task BackOffAsync(long id, string owner, int attempts, string error)
    {
        await using var scope = SystemScope(out var db);
        var until = time.GetUtcNow().UtcDateTime + TimeSpan.FromSeconds(Math.Min(600, 5 * Math.Pow(2, attempts)));
        var text = error.Length > 1000 ? error[..1000] : error;
        await Mine(db, id, owner).ExecuteUpdateAsync(s => s.SetProperty(j => j.LeaseUntil, until).SetProperty(j => j.Error, text), CancellationToken.None);
    }

    private async Task FailAsync(long id, string owner, string error, IProgress<ImportProgress>? progress)
    {
        await using var scope = SystemScope(out var db);
        var now = time.GetUtcNow().UtcDateTime;
        var text = error.Length > 1000 ? error[..1000] : error;
        await Mine(db, id, owner).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.Status, ImportStatus.Failed)
            .SetProperty(j => j.Error, text)
            .SetProperty(j => j.FinishedAt, now)
            .SetProperty(j => j.LeaseUntil, (DateTime?)null), CancellationToken.None);
        var job = await db.Set<ImportJob>().AsNoTracking().SingleAsync(j => j.Id == id, CancellationToken.None);
        logger.LogWarning("Import {ImportId} failed: {Error}", id, text);
        progress?.Report(ImportProgress.Of(job));
        if (job.Status == ImportStatus.Failed) DeleteUpload(job);
    }

    private static IQueryable<ImportJob> Mine(MeridianDb db, long id, string owner) =>
        db.Set<ImportJob>().Where(j => j.Id == id && j.LeaseOwner == owner && j.Status == ImportStatus.Running);

    /// <summary>An upload is only kept to be imported; the CLI's file, imported in place, is the user's and stays.</summary>
    private void DeleteUpload(ImportJob job)
    {
        if (!job.OwnsFile) return;
        try
        {
            File.Delete(job.FilePath);
        }
        catch (IOException ex)
        {
            logger.LogWarning("Import {ImportId}: could not delete its upload: {Error}", job.Id, ex.Message);
        }
    }

    /// <summary>
    /// Removes what a crash left in the upload folder: partial uploads, and uploads whose import finished but whose file
    /// was not deleted. Only files a day old, so that no upload in progress (on this or another node) is touched.
    /// </summary>
    public async Task SweepAsync(CancellationToken ct)
    {
        var folder = Path.GetFullPath(opts.Directory);
        if (!Directory.Exists(folder)) return;
        var cutoff = time.GetUtcNow().UtcDateTime.AddDays(-1);
        await using var scope = SystemScope(out var db);
        var pending = (await db.Set<ImportJob>().Where(j => j.OwnsFile && (j.Status == ImportStatus.Queued || j.Status == ImportStatus.Running))
            .Select(j => j.FilePath).ToListAsync(ct)).ToHashSet();
        foreach (var file in Directory.EnumerateFiles(folder))
        {
            if (pending.Contains(file) || File.GetLastWriteTimeUtc(file) > cutoff) continue;
            try
            {
                File.Delete(file);
            }
            catch (IOException ex)
            {
                logger.LogWarning("Could not remove the stale upload {File}: {Error}", Path.GetFileName(file), ex.Message);
            }
        }
    }

    private AsyncServiceScope SystemScope(out MeridianDb db)
    {
        var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        return scope;
    }
}
