using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Meridian.Messaging.Channels;

/// <summary>
/// An HTTP SMS gateway: <c>POST {to, text, brand, reference}</c> as JSON with an optional bearer token; a 2xx answer
/// accepts the message (its JSON <c>id</c>, if any, is what the gateway's receipts will name). Used for one-time sign-in
/// codes and for the messaging SMS channel. Neither the number nor the text is ever logged.
/// </summary>
public sealed class SmsGateway(HttpClient http)
{
    public sealed record Result(bool Accepted, bool Permanent, string? MessageId, string? Error);

    public async Task<Result> SendAsync(Uri gateway, string? token, string to, string text, string brand, string? reference, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, gateway) { Content = JsonContent.Create(new { to, text, brand, reference }) };
        if (!string.IsNullOrEmpty(token)) request.Headers.Authorization = new("Bearer", token);
        try
        {
            using var response = await http.SendAsync(request, ct);
            if (response.IsSuccessStatusCode) return new Result(true, false, await MessageIdAsync(response, ct), null);
            var status = (int)response.StatusCode;
            // A refusal of this message (bad number, bad token) will not change on retry; overload and outages may.
            var permanent = status is >= 400 and < 500 && response.StatusCode is not (HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests);
            return new Result(false, permanent, null, $"The SMS gateway answered {status}.");
        }
        catch (HttpRequestException ex)
        {
            return new Result(false, false, null, $"The SMS gateway could not be reached ({ex.HttpRequestError}).");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return new Result(false, false, null, "The SMS gateway did not answer in time.");
        }
    }

    private static async Task<string?> MessageIdAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json") return null;
        try
        {
            using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
            return body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("id", out var id)
                ? id.ValueKind == JsonValueKind.String ? id.GetString() : id.GetRawText()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
