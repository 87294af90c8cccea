namespace Meridian.Platform.Access;

/// <summary>How personal data looks to staff without the <c>pii.read</c> permission.</summary>
public static class Pii
{
    /// <summary><c>zhang.wei@example.com</c> becomes <c>z***@example.com</c>.</summary>
    public static string MaskEmail(string email)
    {
        var at = email.IndexOf('@');
        return at <= 0 ? "***" : email[0] + "***" + email[at..];
    }

    /// <summary><c>+8613812345678</c> becomes <c>+86138****5678</c>: enough to tell two numbers apart on a call.</summary>
    public static string MaskPhone(string phone) =>
        phone.Length <= 7 ? new string('*', phone.Length) : phone[..^8] + "****" + phone[^4..];
}
