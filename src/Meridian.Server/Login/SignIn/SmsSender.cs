using Meridian.Messaging.Channels;
using Microsoft.Extensions.Options;

namespace Meridian.Login.SignIn;

/// <summary>
/// Sends one-time codes through the HTTP SMS gateway configured for sign-in (<see cref="SmsGateway"/>, the same client the
/// messaging SMS channel uses). The phone number is never logged.
/// </summary>
public sealed class SmsSender(SmsGateway gateway, IOptions<LoginOptions> options, ILogger<SmsSender> logger)
{
    public bool Enabled => options.Value.Sms.GatewayUrl is not null;

    public async Task<bool> SendAsync(string phone, string text, string brand, CancellationToken ct)
    {
        var sms = options.Value.Sms;
        var result = await gateway.SendAsync(sms.GatewayUrl!, sms.GatewayToken, phone, text, brand, null, ct);
        if (!result.Accepted) logger.LogWarning("Sign-in code for brand {Brand} not sent: {Error}", brand, result.Error);
        return result.Accepted;
    }
}
