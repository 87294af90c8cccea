namespace Meridian.Platform.Access;

/// <summary>
/// Every permission a role can grant. Endpoints require one by name (<c>RequireAuthorization(Permissions.X)</c>).
/// Modules add theirs here so that role administration sees the complete list.
/// </summary>
public static class Permissions
{
    public const string PlatformAdmin = "platform.admin";
    public const string BrandsRead = "brands.read";
    public const string KeysManage = "keys.manage";
    public const string StaffManage = "staff.manage";
    public const string AuditRead = "audit.read";
    public const string PiiRead = "pii.read";
    public const string SourcesRead = "sources.read";
    public const string SourcesWrite = "sources.write";
    public const string WebhooksManage = "webhooks.manage";
    public const string EventsRead = "events.read";
    public const string ProfilesRead = "profiles.read";
    public const string ProfilesWrite = "profiles.write";
    public const string AudiencesRead = "audiences.read";
    public const string AudiencesWrite = "audiences.write";
    public const string JourneysRead = "journeys.read";
    public const string JourneysWrite = "journeys.write";
    public const string MessagingRead = "messaging.read";
    public const string MessagingWrite = "messaging.write";
    public const string LoyaltyRead = "loyalty.read";
    public const string LoyaltyWrite = "loyalty.write";
    public const string OffersRead = "offers.read";
    public const string OffersWrite = "offers.write";
    public const string ServiceRead = "service.read";
    public const string ServiceWrite = "service.write";
    public const string SalesRead = "sales.read";
    public const string SalesWrite = "sales.write";
    public const string InsightsRead = "insights.read";

    public static readonly IReadOnlyList<string> All =
    [
        PlatformAdmin, BrandsRead, KeysManage, StaffManage, AuditRead, PiiRead, SourcesRead, SourcesWrite,
        WebhooksManage, EventsRead, ProfilesRead, ProfilesWrite, AudiencesRead, AudiencesWrite, JourneysRead,
        JourneysWrite, MessagingRead, MessagingWrite, LoyaltyRead, LoyaltyWrite, OffersRead, OffersWrite, ServiceRead, ServiceWrite, SalesRead,
        SalesWrite, InsightsRead,
    ];
}

/// <summary>
/// The roles every group starts with. Admins may add their own roles from the same permissions. Built-in roles cannot be
/// changed through the API; each start brings the stored ones to these definitions, so a permission added in a release
/// reaches existing groups' built-in roles.
/// </summary>
public static class BuiltInRoles
{
    public const string Admin = "admin";
    public const string Marketer = "marketer";
    public const string Analyst = "analyst";
    public const string ServiceAgent = "service-agent";
    public const string Sales = "sales";

    public static readonly IReadOnlyDictionary<string, (string Description, string[] Permissions)> Definitions =
        new Dictionary<string, (string, string[])>
        {
            [Admin] = ("Everything, including keys, staff and the audit log.", [.. Permissions.All]),
            [Marketer] = ("Audiences, journeys, messaging, offers and loyalty set-up; no personal data.",
                [Permissions.BrandsRead, Permissions.SourcesRead, Permissions.EventsRead, Permissions.ProfilesRead, Permissions.AudiencesRead,
                 Permissions.AudiencesWrite, Permissions.JourneysRead, Permissions.JourneysWrite, Permissions.MessagingRead, Permissions.MessagingWrite, Permissions.OffersRead,
                 Permissions.OffersWrite, Permissions.LoyaltyRead, Permissions.LoyaltyWrite, Permissions.InsightsRead]),
            [Analyst] = ("Read-only access to data and insights; no personal data.",
                [Permissions.BrandsRead, Permissions.SourcesRead, Permissions.EventsRead, Permissions.ProfilesRead, Permissions.AudiencesRead,
                 Permissions.JourneysRead, Permissions.MessagingRead, Permissions.OffersRead, Permissions.LoyaltyRead, Permissions.InsightsRead]),
            [ServiceAgent] = ("Customer service: sees and edits customers, including their contact details.",
                [Permissions.BrandsRead, Permissions.ProfilesRead, Permissions.ProfilesWrite, Permissions.PiiRead, Permissions.LoyaltyRead,
                 Permissions.OffersRead, Permissions.ServiceRead, Permissions.ServiceWrite]),
            [Sales] = ("Sales pipeline and the customers in it, including their contact details.",
                [Permissions.BrandsRead, Permissions.ProfilesRead, Permissions.PiiRead, Permissions.SalesRead, Permissions.SalesWrite]),
        };
}
