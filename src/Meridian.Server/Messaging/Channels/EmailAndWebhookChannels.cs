using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Meridian.Messaging.Channels;

/// <summary>
/// Email over SMTP (MailKit). Settings: <c>host</c>, <c>port</c> (default 587), <c>from</c>, optional <c>fromName</c>,
/// <c>username</c> and <c>password</c>, <c>tls</c>: <c>auto</c> (default), <c>starttls</c>, <c>ssl</c> or <c>none</c>.
/// A 5xx answer (no such mailbox) is final; a 4xx, a refused connection or a timeout is retried.
/// </summary>
internal sealed class EmailChannel : IMessageChannel
{
    public string Name => MessageChannels.Email;
    public string? AddressType => "email";
    public string ConsentChannel(JsonElement settings) => "email";
    public string[] Secrets => ["password"];

    public string? Invalid(JsonElement settings)
    {
        if (string.IsNullOrWhiteSpace(ChannelSettingsJson.String(settings, "host"))) return "host: the SMTP server's host name is required.";
        if (ChannelSettingsJson.Int(settings, "port") is { } port and (< 1 or > 65535)) return "port: 1 to 65535.";
        if (ChannelSettingsJson.String(settings, "from") is not { } from || !MailboxAddress.TryParse(from, out _)) return "from: the sender's email address is required.";
        if (ChannelSettingsJson.String(settings, "tls") is { } tls && !TlsModes.ContainsKey(tls)) return "tls: auto, starttls, ssl or none.";
        return null;
    }

    private static readonly Dictionary<string, SecureSocketOptions> TlsModes = new()
    {
        ["auto"] = SecureSocketOptions.Auto, ["starttls"] = SecureSocketOptions.StartTls, ["ssl"] = SecureSocketOptions.SslOnConnect, ["none"] = SecureSocketOptions.None,
    };

    public async Task<ChannelResult> SendAsync(Outgoing message, CancellationToken ct)
    {
        var s = message.Settings;
        var mail = new MimeMessage();
        mail.From.Add(new MailboxAddress(ChannelSettingsJson.String(s, "fromName") ?? "", ChannelSettingsJson.String(s, "from")!));
        mail.To.Add(MailboxAddress.Parse(message.To!));
        mail.Subject = message.Subject ?? "";
        mail.MessageId = $"msg-{message.MessageId}@{message.BrandSlug}.meridian";
        mail.Body = new TextPart("plain") { Text = message.Body };
        using var client = new SmtpClient { Timeout = 15_000 };
        try
        {
            await client.ConnectAsync(ChannelSettingsJson.String(s, "host")!, ChannelSettingsJson.Int(s, "port") ?? 587,
                TlsModes[ChannelSettingsJson.String(s, "tls") ?? "auto"], ct);
            if (ChannelSettingsJson.String(s, "username") is { Length: > 0 } user)
                await client.AuthenticateAsync(user, ChannelSettingsJson.String(s, "password") ?? "", ct);
            await client.SendAsync(mail, ct);
            await client.DisconnectAsync(true, ct);
            return ChannelResult.Accepted(mail.MessageId);
        }
        catch (SmtpCommandException ex)
        {
            var code = (int)ex.StatusCode;
            var error = $"The SMTP server answered {code.ToString(CultureInfo.InvariantCulture)} to {ex.ErrorCode}.";
            return code >= 500 ? ChannelResult.Fail(error) : ChannelResult.Retry(error);
        }
        catch (AuthenticationException)
        {
            return ChannelResult.Fail("The SMTP server refused the username and password.");
        }
        catch (Exception ex) when (ex is SocketException or IOException or SmtpProtocolException or ServiceNotConnectedException or TimeoutException
                                   || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return ChannelResult.Retry($"The SMTP server could not be reached or broke off ({ex.GetType().Name}).");
        }
    }
}

/// <summary>
/// A brand's own system (a push service, a WeChat relay...) takes the rendered message as a signed webhook. Settings:
/// <c>url</c>, <c>secret</c> (<c>whsec_</c> + base64, as Standard Webhooks and Meridian's event webhooks), and
/// <c>consentChannel</c> (the consent checked before sending; default <c>push</c>). Headers <c>webhook-id</c> (stable across
/// retries), <c>webhook-timestamp</c>, <c>webhook-signature</c>; a 4xx refusal is final, other failures are retried.
/// </summary>
internal sealed class WebhookChannel(IHttpClientFactory clients, TimeProvider time) : IMessageChannel
{
    public string Name => MessageChannels.Webhook;
    public string? AddressType => null;
    public string ConsentChannel(JsonElement settings) => ChannelSettingsJson.String(settings, "consentChannel") ?? "push";
    public string[] Secrets => ["secret"];

    public string? Invalid(JsonElement settings)
    {
        if (ChannelSettingsJson.Url(settings, "url") is null) return "url: an absolute http or https URL is required.";
        if (ChannelSettingsJson.String(settings, "secret") is not { } secret || !IsSecret(secret)) return "secret: whsec_ followed by at least 16 bytes in base64.";
        if (ChannelSettingsJson.String(settings, "consentChannel") is { } consent && !Profiles.Data.Consents.Channels.Contains(consent))
            return $"consentChannel: one of {string.Join(", ", Profiles.Data.Consents.Channels)}.";
        return null;
    }

    private static bool IsSecret(string secret)
    {
        var bytes = new byte[256];
        return secret.StartsWith("whsec_", StringComparison.Ordinal) && Convert.TryFromBase64String(secret["whsec_".Length..], bytes, out var length) && length >= 16;
    }

    public async Task<ChannelResult> SendAsync(Outgoing message, CancellationToken ct)
    {
        var id = $"msg_{message.MessageId}";
        var body = JsonSerializer.Serialize(new
        {
            id, type = "message.send", brandId = message.BrandId, profileId = message.ProfileId, subject = message.Subject, body = message.Body,
        }, Hosting.MeridianJson.Options);
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, ChannelSettingsJson.Url(message.Settings, "url")) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("webhook-id", id);
        request.Headers.Add("webhook-timestamp", timestamp);
        request.Headers.Add("webhook-signature", "v1," + Platform.Webhooks.WebhookSubscriber.Sign(ChannelSettingsJson.String(message.Settings, "secret")!, $"{id}.{timestamp}.{body}"));
        try
        {
            using var response = await clients.CreateClient(Platform.Webhooks.WebhookSubscriber.HttpClientName).SendAsync(request, ct);
            if (response.IsSuccessStatusCode) return ChannelResult.Accepted(id);
            var status = (int)response.StatusCode;
            var error = $"The webhook answered {status.ToString(CultureInfo.InvariantCulture)}.";
            return status is >= 400 and < 500 && response.StatusCode is not (HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests)
                ? ChannelResult.Fail(error) : ChannelResult.Retry(error);
        }
        catch (HttpRequestException ex)
        {
            return ChannelResult.Retry($"The webhook could not be reached ({ex.HttpRequestError}).");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return ChannelResult.Retry("The webhook did not answer in time.");
        }
    }
}
