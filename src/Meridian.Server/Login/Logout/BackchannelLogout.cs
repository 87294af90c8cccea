using System.Text.Json;
using Meridian.Data;
using Meridian.Login.Data;
using Meridian.Platform.Outbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace Meridian.Login.Logout;

/// <summary>
/// A customer signed out: the front ends that held a grant for them (<paramref name="Clients"/>, by client id) and the
/// issuer their tokens came from. Published by the end-session endpoint; <see cref="BackchannelLogout"/> tells each.
/// </summary>
public sealed record CustomerSignedOut(string Subject, string Issuer, IReadOnlyList<string> Clients) : IDomainEvent
{
    public string EventType => Type;
    public const string Type = "login.signed_out";
}

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0: each front end of the brand that registered a <c>backchannelLogoutUri</c>
/// and held a grant for the customer gets a logout token (a JWT signed with the provider's key, <c>typ</c>
/// <c>logout+jwt</c>, naming the customer and carrying the back-channel logout event) POSTed as
/// <c>logout_token</c>, so it ends its own session too. Delivered through the outbox: once per front end, retried
/// with backoff while the front end does not answer 2xx, on whichever node is free.
/// </summary>
internal sealed class BackchannelLogout(MeridianDb db, IHttpClientFactory clients, IOptionsMonitor<OpenIddictServerOptions> server, TimeProvider time)
    : IEventSubscriber
{
    public const string EventUri = "http://schemas.openid.net/event/backchannel-logout";
    public string Name => "backchannel-logout";

    public async ValueTask<IReadOnlyList<string>> TargetsAsync(OutboxMessage message, CancellationToken ct)
    {
        if (message.Type != CustomerSignedOut.Type) return [];
        var signedOut = JsonSerializer.Deserialize<CustomerSignedOut>(message.Payload, Hosting.MeridianJson.Options)!;
        return await db.Set<LoginClient>().IgnoreQueryFilters()
            .Where(c => signedOut.Clients.Contains(c.ClientId) && c.BackchannelLogoutUri != null).Select(c => c.ClientId).ToListAsync(ct);
    }

    public async Task HandleAsync(OutboxMessage message, string target, CancellationToken ct)
    {
        var signedOut = JsonSerializer.Deserialize<CustomerSignedOut>(message.Payload, Hosting.MeridianJson.Options)!;
        var uri = await db.Set<LoginClient>().IgnoreQueryFilters().Where(c => c.ClientId == target).Select(c => c.BackchannelLogoutUri).SingleOrDefaultAsync(ct);
        if (uri is null) return; // the front end no longer wants to be told
        var now = time.GetUtcNow().UtcDateTime;
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = signedOut.Issuer, Audience = target, IssuedAt = now, NotBefore = now, Expires = now.AddMinutes(2), TokenType = "logout+jwt",
            SigningCredentials = server.CurrentValue.SigningCredentials.First(),
            Claims = new Dictionary<string, object>
            {
                ["sub"] = signedOut.Subject, ["jti"] = $"{message.Id}-{Guid.NewGuid():N}",
                ["events"] = new Dictionary<string, object> { [EventUri] = new Dictionary<string, object>() },
            },
        });
        using var response = await clients.CreateClient(Name).PostAsync(uri, new FormUrlEncodedContent([new("logout_token", token)]), ct);
        response.EnsureSuccessStatusCode();
    }
}
