using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Messaging;

/// <summary>
/// A small real SMTP server on a TCP port: speaks enough of RFC 5321 (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for a
/// client to deliver mail, and keeps each message's envelope and raw data. <see cref="RefuseRecipients"/> answers 550.
/// </summary>
public sealed class SmtpListener : IDisposable
{
    public sealed record Mail(string From, IReadOnlyList<string> To, string Data);

    private readonly TcpListener listener;
    private readonly CancellationTokenSource stop = new();

    public ConcurrentQueue<Mail> Received { get; } = new();
    public int Port { get; }
    public bool RefuseRecipients { get; set; }

    public SmtpListener()
    {
        Port = PostgresServer.FreePort();
        listener = new TcpListener(IPAddress.Loopback, Port);
        listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => ConverseAsync(client));
        }
    }

    private async Task ConverseAsync(TcpClient client)
    {
        using var _ = client;
        await using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.UTF8); // 8BITMIME: bodies may be UTF-8
        await using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
        await writer.WriteLineAsync("220 test.smtp ESMTP ready");
        string from = "";
        var to = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            var verb = line.Split(' ', 2)[0].ToUpperInvariant();
            switch (verb)
            {
                case "EHLO":
                    await writer.WriteLineAsync("250-test.smtp\r\n250 8BITMIME");
                    break;
                case "HELO" or "NOOP":
                    await writer.WriteLineAsync("250 OK");
                    break;
                case "RSET":
                    (from, to) = ("", []);
                    await writer.WriteLineAsync("250 OK");
                    break;
                case "MAIL":
                    from = Address(line);
                    await writer.WriteLineAsync("250 OK");
                    break;
                case "RCPT":
                    if (RefuseRecipients)
                    {
                        await writer.WriteLineAsync("550 5.1.1 No such mailbox");
                        break;
                    }
                    to.Add(Address(line));
                    await writer.WriteLineAsync("250 OK");
                    break;
                case "DATA":
                    await writer.WriteLineAsync("354 End data with <CR><LF>.<CR><LF>");
                    var data = new StringBuilder();
                    while (await reader.ReadLineAsync() is { } dataLine && dataLine != ".")
                        data.Append(dataLine.StartsWith("..", StringComparison.Ordinal) ? dataLine[1..] : dataLine).Append("\r\n");
                    Received.Enqueue(new Mail(from, to.ToList(), data.ToString()));
                    await writer.WriteLineAsync("250 OK queued");
                    break;
                case "QUIT":
                    await writer.WriteLineAsync("221 Bye");
                    return;
                default:
                    await writer.WriteLineAsync("502 Command not implemented");
                    break;
            }
        }
    }

    private static string Address(string line)
    {
        var start = line.IndexOf('<');
        var end = line.IndexOf('>', start + 1);
        return start >= 0 && end > start ? line[(start + 1)..end] : "";
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
    }
}
