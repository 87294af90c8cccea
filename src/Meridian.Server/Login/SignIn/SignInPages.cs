using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Meridian.Data;
using Meridian.Login.Data;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Meridian.Login.SignIn;

/// <summary>
/// The hosted sign-in: server-rendered pages in the brand's name and colours, sized for a phone. A customer signs in
/// with a one-time SMS code or with email and password, or signs up with email and password; then goes back to the
/// authorization request that sent them here. Every failure reads the same, whatever went wrong.
/// </summary>
public static class SignInPages
{
    public const string AccountIdClaim = "account_id";
    public const string Failed = "We could not sign you in with those details. Check them, or wait a moment and try again.";

    public static IEndpointRouteBuilder MapSignIn(this IEndpointRouteBuilder app)
    {
        var login = app.MapGroup("/login").ExcludeFromDescription().DisableAntiforgery().AddEndpointFilter(async (context, next) =>
            HttpMethods.IsPost(context.HttpContext.Request.Method)
            && CrossSite(context.HttpContext.Request, context.HttpContext.RequestServices.GetRequiredService<IOptions<LoginOptions>>().Value.Issuer)
                ? Results.Content("<!doctype html><meta charset=utf-8><title>Refused</title><p>This form can only be sent from the sign-in page itself.</p>",
                    "text/html; charset=utf-8", Encoding.UTF8, StatusCodes.Status403Forbidden)
                : await next(context));
        login.MapGet("/sign-in", SignInForm);
        login.MapGet("/sign-up", SignUpForm);
        login.MapPost("/password", Password);
        login.MapPost("/sms/send", SendCode);
        login.MapPost("/sms/verify", VerifyCode);
        login.MapPost("/sign-up", SignUp);
        login.MapGet("/signed-out", () => Results.Content(
            "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\"><title>Signed out</title><p>You are signed out.</p>",
            "text/html; charset=utf-8"));
        return app;
    }

    /// <summary>
    /// Whether a form was posted from another site (login CSRF: a page elsewhere signing the visitor in to an account of
    /// the attacker's, or sending SMS codes in their name). Browsers say so in <c>Sec-Fetch-Site</c>, and in <c>Origin</c>
    /// (our pages send no referrer, so our own posts carry <c>Origin: null</c> or none). A client sending neither is no
    /// browser a forged page can drive, and is let through.
    /// </summary>
    internal static bool CrossSite(HttpRequest request, Uri? issuer)
    {
        if (request.Headers["Sec-Fetch-Site"].ToString() is "cross-site" or "same-site") return true;
        var origin = request.Headers.Origin.ToString();
        return origin.Length > 0 && origin != "null"
            && !(Uri.TryCreate(origin, UriKind.Absolute, out var from)
                 && (string.Equals(from.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
                     || string.Equals(from.Authority, issuer?.Authority, StringComparison.OrdinalIgnoreCase)));
    }

    public static async Task<IResult> SignInForm(HttpContext http, MeridianDb db, TenantScope tenant, string? returnUrl, CancellationToken ct)
    {
        var brand = await BrandOfAsync(db, tenant, returnUrl, ct);
        return brand is null ? NoRequest() : Page(brand, SignInBody(returnUrl!, null), 200);
    }

    public static async Task<IResult> SignUpForm(HttpContext http, MeridianDb db, TenantScope tenant, string? returnUrl, CancellationToken ct)
    {
        var brand = await BrandOfAsync(db, tenant, returnUrl, ct);
        return brand is null ? NoRequest() : Page(brand, SignUpBody(returnUrl!, null), 200);
    }

    public static async Task<IResult> Password(HttpContext http, MeridianDb db, TenantScope tenant, CustomerAccounts accounts, PasswordHasher hasher,
        Throttle throttle, IOptions<LoginOptions> options, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        string? returnUrl = form["returnUrl"], email = form["email"], password = form["password"];
        var brand = await BrandOfAsync(db, tenant, returnUrl, ct);
        if (brand is null) return NoRequest();
        var fail = Page(brand, SignInBody(returnUrl!, Failed), 401);
        if (string.IsNullOrWhiteSpace(email) || string.IsNullOrEmpty(password) || password.Length > PasswordHasher.MaxLength) return fail;

        var normalized = await accounts.NormalizeAsync(brand.BrandId, "email", email, ct) ?? email.Trim().ToLowerInvariant();
        string[] keys = [Throttle.AccountKey(brand.BrandId, normalized), Throttle.AddressKey(ClientAddress(http, options.Value))];
        if (await throttle.IsBlockedAsync(keys, ct))
        {
            await throttle.FailedAsync(keys, ct);
            return fail;
        }
        var account = await accounts.FindAsync(brand.BrandId, "email", normalized, ct);
        if (!hasher.Verify(password, account?.PasswordHash))
        {
            await throttle.FailedAsync(keys, ct);
            return fail;
        }
        await throttle.SucceededAsync(keys[0], ct);
        return await SignInAsync(http, db, accounts, brand, account!, returnUrl!, ct);
    }

    public static async Task<IResult> SendCode(HttpContext http, MeridianDb db, TenantScope tenant, CustomerAccounts accounts, SmsSender sms,
        Throttle throttle, IOptions<LoginOptions> options, TimeProvider time, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        string? returnUrl = form["returnUrl"], phoneText = form["phone"];
        var brand = await BrandOfAsync(db, tenant, returnUrl, ct);
        if (brand is null) return NoRequest();
        var phone = string.IsNullOrWhiteSpace(phoneText) ? null : await accounts.NormalizeAsync(brand.BrandId, "phone", phoneText, ct);
        if (phone is null || !sms.Enabled) return Page(brand, SignInBody(returnUrl!, "Enter a mobile number that can receive SMS."), 400);

        var now = time.GetUtcNow().UtcDateTime;
        var settings = options.Value.Sms;
        var address = Throttle.AddressKey(ClientAddress(http, options.Value));
        var lastSent = await db.Set<SmsChallenge>().Where(c => c.TenantId == brand.BrandId && c.Phone == phone)
            .OrderByDescending(c => c.SentAt).Select(c => (DateTime?)c.SentAt).FirstOrDefaultAsync(ct);
        // A blocked address gets the same page but no SMS; a customer asking again too soon keeps the code already sent.
        if ((lastSent is null || lastSent <= now - settings.ResendAfter) && !await throttle.IsBlockedAsync([address], ct))
        {
            var code = RandomNumberGenerator.GetInt32(0, 1_000_000).ToString("D6");
            await db.Set<SmsChallenge>().Where(c => c.TenantId == brand.BrandId && c.Phone == phone && c.UsedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.UsedAt, now), ct); // a new code replaces the old ones
            db.Add(new SmsChallenge
            {
                TenantId = brand.BrandId, Phone = phone, CodeHash = CodeHash(brand.BrandId, phone, code), SentAt = now, ExpiresAt = now + settings.CodeLifetime,
            });
            await db.SaveChangesAsync(ct);
            await sms.SendAsync(phone, $"{brand.Settings.DisplayName}: your sign-in code is {code}. It expires in {(int)settings.CodeLifetime.TotalMinutes} minutes.", brand.BrandSlug, ct);
        }
        return Page(brand, CodeBody(returnUrl!, phone, null), 200);
    }

    public static async Task<IResult> VerifyCode(HttpContext http, MeridianDb db, TenantScope tenant, CustomerAccounts accounts, Throttle throttle,
        IOptions<LoginOptions> options, TimeProvider time, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        string? returnUrl = form["returnUrl"], phone = form["phone"], code = form["code"];
        var brand = await BrandOfAsync(db, tenant, returnUrl, ct);
        if (brand is null) return NoRequest();
        var fail = Page(brand, CodeBody(returnUrl!, phone ?? "", Failed), 401);
        if (string.IsNullOrEmpty(phone) || string.IsNullOrEmpty(code) || code.Length > 12) return fail;

        // Only the source address is throttled here: failing codes on purpose must not lock the phone's owner out.
        string[] keys = [Throttle.AddressKey(ClientAddress(http, options.Value))];
        if (await throttle.IsBlockedAsync(keys, ct))
        {
            await throttle.FailedAsync(keys, ct);
            return fail;
        }
        var now = time.GetUtcNow().UtcDateTime;
        var challenge = await db.Set<SmsChallenge>().Where(c => c.TenantId == brand.BrandId && c.Phone == phone && c.UsedAt == null && c.ExpiresAt > now)
            .OrderByDescending(c => c.SentAt).FirstOrDefaultAsync(ct);
        if (challenge is null || challenge.Attempts >= options.Value.Sms.MaxAttempts
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(challenge.CodeHash), Encoding.ASCII.GetBytes(CodeHash(brand.BrandId, phone, code.Trim()))))
        {
            if (challenge is not null)
            {
                challenge.Attempts++;
                await db.SaveChangesAsync(ct);
            }
            await throttle.FailedAsync(keys, ct);
            return fail;
        }
        // Used once: the conditional update decides between two requests racing with the same code.
        if (await db.Set<SmsChallenge>().Where(c => c.Id == challenge.Id && c.UsedAt == null).ExecuteUpdateAsync(s => s.SetProperty(c => c.UsedAt, now), ct) != 1)
            return fail;
        var account = await accounts.FindOrCreateByPhoneAsync(brand, phone, ct);
        // The phone is proven: whatever an attacker did to the password side, this customer is in, and its delay is lifted.
        if (account.Email is { } email) await throttle.SucceededAsync(Throttle.AccountKey(brand.BrandId, email), ct);
        return await SignInAsync(http, db, accounts, brand, account, returnUrl!, ct);
    }

    public static async Task<IResult> SignUp(HttpContext http, MeridianDb db, TenantScope tenant, CustomerAccounts accounts, PasswordHasher hasher, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        string? returnUrl = form["returnUrl"], emailText = form["email"], password = form["password"];
        var brand = await BrandOfAsync(db, tenant, returnUrl, ct);
        if (brand is null) return NoRequest();
        var email = string.IsNullOrWhiteSpace(emailText) ? null : await accounts.NormalizeAsync(brand.BrandId, "email", emailText, ct);
        if (email is null) return Page(brand, SignUpBody(returnUrl!, "Enter a valid email address."), 400);
        if (PasswordHasher.Weakness(password ?? "") is { } weakness) return Page(brand, SignUpBody(returnUrl!, weakness), 400);

        var account = await accounts.SignUpAsync(brand, email, hasher.Hash(password!), ct);
        if (account is null) return Page(brand, SignUpBody(returnUrl!, "That email already has an account: sign in instead."), 409);
        return await SignInAsync(http, db, accounts, brand, account, returnUrl!, ct);
    }

    /// <summary>The brand of the authorization request a sign-in page serves (null: not a request of a registered client).</summary>
    public static async Task<LoginContext?> BrandOfAsync(MeridianDb db, TenantScope tenant, string? returnUrl, CancellationToken ct)
    {
        if (returnUrl is null || !returnUrl.StartsWith("/connect/authorize?", StringComparison.Ordinal) || returnUrl.Length > 4000) return null;
        var clientId = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(returnUrl[returnUrl.IndexOf('?')..])["client_id"].ToString();
        return string.IsNullOrEmpty(clientId) ? null : await BrandOfClientAsync(db, tenant, clientId, ct);
    }

    /// <summary>The brand a client belongs to; narrows the request's tenant scope to that brand.</summary>
    public static async Task<LoginContext?> BrandOfClientAsync(MeridianDb db, TenantScope tenant, string clientId, CancellationToken ct)
    {
        var found = await (from c in db.Set<LoginClient>().IgnoreQueryFilters()
                           join b in db.Set<Brand>() on c.TenantId equals b.Id
                           join s in db.Set<LoginBrand>().IgnoreQueryFilters() on c.TenantId equals s.TenantId
                           where c.ClientId == clientId
                           select new { b.Id, b.GroupId, b.Slug, Settings = s }).AsNoTracking().SingleOrDefaultAsync(ct);
        if (found is null) return null;
        tenant.Restrict(found.GroupId, [found.Id], found.Id);
        return new LoginContext(found.Id, found.GroupId, found.Slug, found.Settings);
    }

    public static string ClientAddress(HttpContext http, LoginOptions options)
    {
        if (options.TrustForwardedFor && http.Request.Headers["X-Forwarded-For"].ToString() is { Length: > 0 } forwarded)
            return forwarded.Split(',')[0].Trim();
        return http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
    }

    private static async Task<IResult> SignInAsync(HttpContext http, MeridianDb db, CustomerAccounts accounts, LoginContext brand, CustomerAccount account,
        string returnUrl, CancellationToken ct)
    {
        account.LastSignInAt = DateTime.UtcNow;
        await db.SaveChangesAsync(ct);
        var identity = new ClaimsIdentity([new Claim(AccountIdClaim, account.Id.ToString()), new Claim(LoginClaims.BrandId, brand.BrandId.ToString())], LoginModule.SessionScheme);
        await http.SignInAsync(LoginModule.SessionScheme, new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = true });
        return Results.Redirect(returnUrl);
    }

    private static string CodeHash(long brandId, string phone, string code) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{brandId}:{phone}:{code}")));

    private static IResult NoRequest() => Results.Content(
        "<!doctype html><meta charset=utf-8><title>Sign in</title><p>Open the sign-in from the app or site you want to use.</p>", "text/html; charset=utf-8", statusCode: 400);

    private static string E(string? s) => WebUtility.HtmlEncode(s ?? "");

    private static string Error(string? error) => error is null ? "" : $"<p class=error role=alert>{E(error)}</p>";

    private static string SignInBody(string returnUrl, string? error) => $"""
        {Error(error)}
        <form method=post action="/login/sms/send">
          <input type=hidden name=returnUrl value="{E(returnUrl)}">
          <label>Mobile number<input name=phone type=tel autocomplete=tel inputmode=tel required></label>
          <button>Send me a code</button>
        </form>
        <p class=or>or</p>
        <form method=post action="/login/password">
          <input type=hidden name=returnUrl value="{E(returnUrl)}">
          <label>Email<input name=email type=email autocomplete=username required></label>
          <label>Password<input name=password type=password autocomplete=current-password required></label>
          <button>Sign in</button>
        </form>
        <p class=alt>New here? <a href="/login/sign-up?returnUrl={Uri.EscapeDataString(returnUrl)}">Create an account</a></p>
        """;

    private static string CodeBody(string returnUrl, string phone, string? error) => $"""
        {Error(error)}
        <p>If this number can receive SMS, we have sent it a code.</p>
        <form method=post action="/login/sms/verify">
          <input type=hidden name=returnUrl value="{E(returnUrl)}">
          <input type=hidden name=phone value="{E(phone)}">
          <label>Code<input name=code inputmode=numeric autocomplete=one-time-code pattern="[0-9]*" maxlength=6 required></label>
          <button>Sign in</button>
        </form>
        <p class=alt><a href="/login/sign-in?returnUrl={Uri.EscapeDataString(returnUrl)}">Use another way</a></p>
        """;

    private static string SignUpBody(string returnUrl, string? error) => $"""
        {Error(error)}
        <form method=post action="/login/sign-up">
          <input type=hidden name=returnUrl value="{E(returnUrl)}">
          <label>Email<input name=email type=email autocomplete=username required></label>
          <label>Password (at least {PasswordHasher.MinLength} characters)<input name=password type=password autocomplete=new-password minlength={PasswordHasher.MinLength} required></label>
          <button>Create account</button>
        </form>
        <p class=alt>Have an account? <a href="/login/sign-in?returnUrl={Uri.EscapeDataString(returnUrl)}">Sign in</a></p>
        """;

    private static IResult Page(LoginContext brand, string body, int status)
    {
        var s = brand.Settings;
        var logo = s.LogoUrl is { } url ? $"<img src=\"{E(url)}\" alt=\"\" class=logo>" : "";
        var html = $$"""
            <!doctype html>
            <html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width,initial-scale=1">
            <meta name=referrer content=no-referrer>
            <title>Sign in · {{E(s.DisplayName)}}</title>
            <style>
            *{box-sizing:border-box}body{margin:0;font:16px/1.4 system-ui,sans-serif;background:{{E(s.BackgroundColour)}};color:#1b1f24}
            main{max-width:400px;margin:0 auto;padding:24px 16px}h1{font-size:1.4rem;margin:8px 0 20px}.logo{max-height:48px}
            form{display:flex;flex-direction:column;gap:12px;background:#fff;padding:16px;border-radius:12px}
            label{display:flex;flex-direction:column;gap:4px;font-size:.9rem}input{font-size:1rem;padding:12px;border:1px solid #ccd;border-radius:8px}
            button{font-size:1rem;padding:12px;border:0;border-radius:8px;background:{{E(s.PrimaryColour)}};color:#fff}
            .error{background:#fde8e8;color:#8a1c1c;padding:12px;border-radius:8px}.or,.alt{text-align:center}a{color:{{E(s.PrimaryColour)}}}
            </style></head>
            <body><main>{{logo}}<h1>{{E(s.DisplayName)}}</h1>
            {{body}}
            </main></body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }
}
