using System.Security.Cryptography;
using Meridian.Data;
using Meridian.Login.Data;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;
using OpenIddict.Validation;

namespace Meridian.Login.Keys;

/// <summary>
/// The provider's keys, kept in the database so that every node signs with the same key and a restart keeps them.
/// The newest live key of each use signs or encrypts; retired signing keys stay in the JWKS so tokens they signed
/// still verify until they expire. Each node reloads the ring periodically (<see cref="ProviderKeyRefresh"/>), so a
/// rotation on one node reaches the others within <see cref="LoginOptions.KeyRefreshInterval"/>.
/// </summary>
public sealed class ProviderKeyRing(IServiceScopeFactory scopes, TimeProvider time,
    IOptionsMonitorCache<OpenIddictServerOptions> serverOptions, IOptionsMonitorCache<OpenIddictValidationOptions> validationOptions)
{
    public const string Signing = "sig";
    public const string Encryption = "enc";
    /// <summary>Signing keys stay published this long after retirement: longer than any token they signed lives.</summary>
    public static readonly TimeSpan PublishRetiredFor = TimeSpan.FromDays(2);

    private volatile IReadOnlyList<ProviderKey> keys = [];

    public IReadOnlyList<ProviderKey> Keys => keys;

    /// <summary>Creates the first keys on an empty database, then loads the ring.</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        foreach (var use in new[] { Signing, Encryption })
        {
            if (await db.Set<ProviderKey>().AnyAsync(k => k.Use == use && k.RetiredAt == null, ct)) continue;
            db.Add(NewKey(use));
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException)
            {
                db.ChangeTracker.Clear(); // another node created it first; either key is fine, both are loaded
            }
        }
        var now = time.GetUtcNow().UtcDateTime;
        var cutoff = now - PublishRetiredFor;
        var loaded = await db.Set<ProviderKey>().AsNoTracking().Where(k => k.RetiredAt == null || k.RetiredAt > cutoff)
            .OrderByDescending(k => k.CreatedAt).ThenByDescending(k => k.Id).ToListAsync(ct);
        if (loaded.Select(k => k.KeyId).SequenceEqual(keys.Select(k => k.KeyId)) && loaded.Select(k => k.RetiredAt).SequenceEqual(keys.Select(k => k.RetiredAt))) return;
        keys = loaded;
        // OpenIddict reads its options (and so its keys) through IOptionsMonitor: dropping the cached copies rebuilds them.
        serverOptions.TryRemove(Options.DefaultName);
        validationOptions.TryRemove(Options.DefaultName);
    }

    /// <summary>A new signing key (and encryption key) takes over; the previous ones are retired.</summary>
    public async Task<IReadOnlyList<ProviderKey>> RotateAsync(CancellationToken ct)
    {
        await using (var scope = scopes.CreateAsyncScope())
        {
            scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
            var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var now = time.GetUtcNow().UtcDateTime;
            await db.Set<ProviderKey>().Where(k => k.RetiredAt == null).ExecuteUpdateAsync(s => s.SetProperty(k => k.RetiredAt, now), ct);
            db.Add(NewKey(Signing));
            db.Add(NewKey(Encryption));
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        await LoadAsync(ct);
        return keys;
    }

    private ProviderKey NewKey(string use)
    {
        using var rsa = RSA.Create(2048);
        return new ProviderKey
        {
            KeyId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), Use = use,
            PrivateKey = Convert.ToBase64String(rsa.ExportPkcs8PrivateKey()), CreatedAt = time.GetUtcNow().UtcDateTime,
        };
    }

    public static RsaSecurityKey ToSecurityKey(ProviderKey key)
    {
        var rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(Convert.FromBase64String(key.PrivateKey), out _);
        return new RsaSecurityKey(rsa) { KeyId = key.KeyId };
    }
}

/// <summary>Hands the ring's keys to OpenIddict each time its options are (re)built: live keys first, so they are the ones used.</summary>
internal sealed class ProviderKeyOptions(ProviderKeyRing ring) : IConfigureOptions<OpenIddictServerOptions>
{
    public void Configure(OpenIddictServerOptions options)
    {
        foreach (var key in ring.Keys.OrderBy(k => k.RetiredAt is null ? 0 : 1).ThenByDescending(k => k.CreatedAt))
        {
            var securityKey = ProviderKeyRing.ToSecurityKey(key);
            if (key.Use == ProviderKeyRing.Signing)
                options.SigningCredentials.Add(new SigningCredentials(securityKey, SecurityAlgorithms.RsaSha256));
            else // retired encryption keys still decrypt the codes and refresh tokens they protected
                options.EncryptionCredentials.Add(new EncryptingCredentials(securityKey, SecurityAlgorithms.RsaOAEP, SecurityAlgorithms.Aes256CbcHmacSha512));
        }
    }
}

/// <summary>Loads the ring before the server takes requests, then picks up rotations made by other nodes.</summary>
internal sealed class ProviderKeyRefresh(ProviderKeyRing ring, IOptions<LoginOptions> options, ILogger<ProviderKeyRefresh> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await ring.LoadAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.KeyRefreshInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await ring.LoadAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Reloading the provider keys failed; the keys loaded before stay in use.");
            }
        }
    }
}
