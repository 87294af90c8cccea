using System.Net.Http.Json;
using Microsoft.Extensions.Options;

namespace Meridian.Login.SignIn;

/// <summary>
/// Sends one-time codes through the configured HTTP SMS gateway (until the messaging module's SMS channel exists):
/// <c>POST {to, text, brand}</c> with an optional bearer token. The phone number is never logged.
/// </summary>
public sealed class SmsSender(HttpClient http, IOptions<LoginOptions> options, ILogger<SmsSender> logger)
{
    public bool Enabled => options.Value.Sms.GatewayUrl is not null;

    public async Task<bool> SendAsync(string phone, string text, string brand, CancellationToken ct)
    {
        var sms = options.Value.Sms;
        using var request = new HttpRequestMessage(HttpMethod.Post, sms.GatewayUrl) { Content = JsonContent.Create(new { to = phone, text, brand }) };
        if (sms.GatewayToken is { } token) request.Headers.Authorization = new("Bearer", token);
        try
        {
            using var response = await http.SendAsync(request, ct);
            if (response.IsSuccessStatusCode) return true;
            logger.LogWarning("The SMS gateway answered {Status} for brand {Brand}.", (int)response.StatusCode, brand);
        }
        catch (HttpRequestException ex)
        {
            logger.LogWarning(ex, "The SMS gateway could not be reached for brand {Brand}.", brand);
        }
        return false;
    }
}
