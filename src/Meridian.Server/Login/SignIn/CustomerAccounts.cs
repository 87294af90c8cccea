using System.Text.Json;
using System.Text.Json.Nodes;
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

    /// <summary>
    /// Sends an identifier to ID-Mapping beside one the account has proven (its phone, else its email) and waits until
    /// it is resolved. Returns the live profile that holds the identifier then: the account's own when the link took
    /// (possibly after merging another profile into it), another when the brand's rules kept it apart (a conflict staff
    /// see), null when ID-Mapping attached it nowhere.
    /// </summary>
    public async Task<long?> LinkIdentifierAsync(CustomerAccount account, string type, string value, CancellationToken ct)
    {
        var brand = await ContextAsync(account.TenantId, ct);
        var (types, _) = await rules.ForAsync(db, account.TenantId, ct);
        var (anchorType, anchor) = account.Phone is { } phone ? ("phone", phone) : ("email", account.Email!);
        var identifiers = new List<(IdentifierType, string)>();
        foreach (var (name, written) in new[] { (anchorType, anchor), (type, value) })
            if (types.FirstOrDefault(t => t.Name == name) is { } rule) identifiers.Add((rule, written));
        await IdentifyAsync(brand, identifiers, ct);
        return await profiles.FindByIdentifierAsync(account.TenantId, type, value, ct);
    }

    /// <summary>The brand's login context, by id.</summary>
    public async Task<LoginContext> ContextAsync(long brandId, CancellationToken ct)
    {
        var found = await (from b in db.Set<Brand>()
                           join s in db.Set<LoginBrand>() on b.Id equals s.TenantId
                           where b.Id == brandId
                           select new { b.Id, b.GroupId, b.Slug, Settings = s }).AsNoTracking().SingleAsync(ct);
        return new LoginContext(found.Id, found.GroupId, found.Slug, found.Settings);
    }

    private async Task<long> LinkProfileAsync(LoginContext brand, string type, string value, CancellationToken ct)
    {
        if (await profiles.FindByIdentifierAsync(brand.BrandId, type, value, ct) is { } known) return known;
        var (types, _) = await rules.ForAsync(db, brand.BrandId, ct);
        await IdentifyAsync(brand, [(types.First(t => t.Name == type), value)], ct);
        return await profiles.FindByIdentifierAsync(brand.BrandId, type, value, ct)
            ?? throw new InvalidOperationException($"ID-Mapping resolved the login's identify message without a {type}.");
    }

    /// <summary>
    /// Sends an <c>identify</c> message with the identifiers (each where the brand reads its type) through the brand's
    /// login source, and waits for ID-Mapping to resolve it (tens of milliseconds when it keeps up).
    /// </summary>
    private async Task IdentifyAsync(LoginContext brand, IReadOnlyList<(IdentifierType Type, string Value)> identifiers, CancellationToken ct)
    {
        var now = Now;
        var messageId = "login-" + Guid.NewGuid().ToString("N");
        // Segment requires userId or anonymousId; a fresh anonymous id says nothing about anyone.
        var message = new JsonObject { ["type"] = "identify", ["messageId"] = messageId, ["anonymousId"] = "login-" + Guid.NewGuid().ToString("N"),
            ["timestamp"] = now, ["context"] = new JsonObject { ["library"] = new JsonObject { ["name"] = "meridian-login" } } };
        foreach (var (type, value) in identifiers)
            if (type.Paths.FirstOrDefault(p => !p.Contains('?')) is { } path) Place(message, path, value);
        var text = message.ToJsonString();
        using var document = JsonDocument.Parse(text);
        var (accepted, rejected) = SegmentMessages.Read(document.RootElement, text, "identify", 0, now, null);
        if (accepted is null) throw new InvalidOperationException($"The login's identify message was refused: {rejected?.Detail}");
        await ingest.StoreAsync(new IngestBatch(new WriteKeySource(brand.Settings.SourceId, brand.BrandId, brand.GroupId, true), [accepted], [], now, null));

        var eventId = await db.Set<RawEvent>().AsNoTracking().Where(e => e.SourceId == brand.Settings.SourceId && e.MessageId == messageId).Select(e => e.Id).SingleAsync(ct);
        var deadline = DateTime.UtcNow + ProfileWait;
        for (var delay = 20; DateTime.UtcNow < deadline; delay = Math.Min(delay * 2, 250))
        {
            await Task.Delay(delay, ct);
            if (await profiles.ProfileOfEventAsync(eventId, ct) is not null) return;
        }
        throw new TimeoutException("ID-Mapping did not resolve the customer's identifiers in time; the request can be retried.");
    }

    /// <summary>Sets <paramref name="value"/> at a dotted path of the message (<c>traits.unionid</c>, <c>context.device.id</c>).</summary>
    private static void Place(JsonObject message, string path, string value)
    {
        var parts = path.Split('.');
        var node = message;
        foreach (var part in parts[..^1])
        {
            if (node[part] is not JsonObject next) node[part] = next = new JsonObject();
            node = next;
        }
        node[parts[^1]] = value;
    }

    private DateTime Now => time.GetUtcNow().UtcDateTime;
}
