using System.Text.Json;
using Meridian.Data;
using Meridian.Ingestion.Tracking;
using Meridian.Login.Data;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Meridian.Profiles.Identity;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Login.SignIn;

/// <summary>The brand a sign-in happens in: from the client that started it.</summary>
public sealed record LoginContext(long BrandId, long GroupId, string BrandSlug, LoginBrand Settings);

/// <summary>
/// Customer accounts and the unified profile behind each: an account is created on first sign-in (SMS) or sign-up
/// (email and password), and linked to the profile ID-Mapping holds for its phone or email. A customer the brand
/// already knows (say by phone, from store purchases) gets that very profile; otherwise an <c>identify</c> message
/// goes through the brand's login source and the account waits for ID-Mapping to create the profile.
/// </summary>
public sealed class CustomerAccounts(MeridianDb db, ProfileDirectory profiles, IdentifierRules rules, IngestWriter ingest, TimeProvider time)
{
    public static readonly TimeSpan ProfileWait = TimeSpan.FromSeconds(20);

    /// <summary>The brand's normalised form of a phone or an email (null: not a valid one).</summary>
    public async Task<string?> NormalizeAsync(long brandId, string type, string raw, CancellationToken ct)
    {
        var (_, region) = await rules.ForAsync(db, brandId, ct);
        return Normalizers.Normalize(type == "phone" ? Normalizers.Phone : Normalizers.Email, raw, region);
    }

    public Task<CustomerAccount?> FindAsync(long brandId, string type, string normalized, CancellationToken ct) =>
        type == "phone"
            ? db.Set<CustomerAccount>().SingleOrDefaultAsync(a => a.TenantId == brandId && a.Phone == normalized, ct)
            : db.Set<CustomerAccount>().SingleOrDefaultAsync(a => a.TenantId == brandId && a.Email == normalized, ct);

    /// <summary>The account of a phone proven by SMS, created (and linked to its profile) the first time.</summary>
    public async Task<CustomerAccount> FindOrCreateByPhoneAsync(LoginContext brand, string phone, CancellationToken ct)
    {
        if (await FindAsync(brand.BrandId, "phone", phone, ct) is { } existing) return existing;
        var profileId = await LinkProfileAsync(brand, "phone", phone, ct);
        return await CreateAsync(new CustomerAccount { TenantId = brand.BrandId, ProfileId = profileId, Phone = phone, CreatedAt = Now }, "phone", phone, ct);
    }

    /// <summary>A new email-and-password account (null: the email already has one).</summary>
    public async Task<CustomerAccount?> SignUpAsync(LoginContext brand, string email, string passwordHash, CancellationToken ct)
    {
        if (await FindAsync(brand.BrandId, "email", email, ct) is not null) return null;
        var profileId = await LinkProfileAsync(brand, "email", email, ct);
        var account = await CreateAsync(new CustomerAccount { TenantId = brand.BrandId, ProfileId = profileId, Email = email, PasswordHash = passwordHash, CreatedAt = Now }, "email", email, ct);
        return account.PasswordHash == passwordHash ? account : null;
    }

    /// <summary>The account's profile now: ID-Mapping may since have merged it into another, whose id is then the customer's.</summary>
    public async Task<long?> LiveProfileAsync(CustomerAccount account, CancellationToken ct)
    {
        var live = await profiles.FindLiveAsync(account.ProfileId, ct);
        if (live is null) return null;
        if (live.Value.ProfileId != account.ProfileId)
        {
            account.ProfileId = live.Value.ProfileId;
            await db.SaveChangesAsync(ct);
        }
        return live.Value.ProfileId;
    }

    private async Task<CustomerAccount> CreateAsync(CustomerAccount account, string type, string value, CancellationToken ct)
    {
        db.Add(account);
        try
        {
            await db.SaveChangesAsync(ct);
            return account;
        }
        catch (DbUpdateException)
        {
            // The same customer signed up twice at once: the unique index kept one account; use it.
            db.ChangeTracker.Clear();
            return await FindAsync(account.TenantId, type, value, ct) ?? throw new InvalidOperationException("The account vanished after a unique violation.");
        }
    }

    private async Task<long> LinkProfileAsync(LoginContext brand, string type, string value, CancellationToken ct)
    {
        if (await profiles.FindByIdentifierAsync(brand.BrandId, type, value, ct) is { } known) return known;

        var now = Now;
        var message = JsonSerializer.Serialize(new
        {
            // Segment requires userId or anonymousId; a fresh anonymous id says nothing about anyone and links nothing.
            type = "identify", messageId = "login-" + Guid.NewGuid().ToString("N"), anonymousId = "login-" + Guid.NewGuid().ToString("N"), timestamp = now,
            traits = new Dictionary<string, string> { [type] = value },
            context = new { library = new { name = "meridian-login" } },
        });
        using var document = JsonDocument.Parse(message);
        var (accepted, rejected) = SegmentMessages.Read(document.RootElement, message, "identify", 0, now, null);
        if (accepted is null) throw new InvalidOperationException($"The login's identify message was refused: {rejected?.Detail}");
        await ingest.StoreAsync(new IngestBatch(new WriteKeySource(brand.Settings.SourceId, brand.BrandId, brand.GroupId, true), [accepted], [], now, null));

        // ID-Mapping resolves the log behind ingestion (tens of milliseconds when it keeps up): wait for the profile.
        var deadline = DateTime.UtcNow + ProfileWait;
        for (var delay = 20; DateTime.UtcNow < deadline; delay = Math.Min(delay * 2, 250))
        {
            await Task.Delay(delay, ct);
            if (await profiles.FindByIdentifierAsync(brand.BrandId, type, value, ct) is { } created) return created;
        }
        throw new TimeoutException("ID-Mapping did not create the customer's profile in time; the sign-up can be retried.");
    }

    private DateTime Now => time.GetUtcNow().UtcDateTime;
}
