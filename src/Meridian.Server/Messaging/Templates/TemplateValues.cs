using System.Text.Json;
using Meridian.Data;
using Meridian.Platform.CustomFields;
using Meridian.Platform.Tenancy;
using Meridian.Profiles;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Messaging.Templates;

/// <summary>
/// The values a template may use: <c>name</c>, <c>profile.id</c>, <c>brand.name</c>, <c>traits.X</c> (any trait),
/// <c>custom.X</c> (a custom field of the brand's profiles, checked when the template is saved) and <c>event.*</c>
/// (the triggering event's properties, unknown until it happens).
/// </summary>
public sealed class TemplateValues(MeridianDb db, ProfileDirectory profiles)
{
    public const string Help = "Use name, profile.id, brand.name, traits.<trait>, custom.<custom field> or event.<property>.";

    /// <summary>The variables of the template no customer could ever have (checked at save time), in order.</summary>
    public async Task<List<string>> UnknownAsync(long brandId, IEnumerable<TemplateText.Variable> variables, CancellationToken ct)
    {
        var paths = variables.Select(v => v.Path).Distinct().ToList();
        var customKeys = paths.Any(p => p.StartsWith("custom.", StringComparison.Ordinal))
            ? (await db.Set<CustomField>().AsNoTracking().Where(f => f.TenantId == brandId && f.Entity == "profile").Select(f => f.Key).ToListAsync(ct)).ToHashSet()
            : [];
        return paths.Where(p => !Known(p, customKeys)).ToList();
    }

    private static bool Known(string path, HashSet<string> customKeys)
    {
        var segments = path.Split('.');
        return segments switch
        {
            ["name"] or ["profile", "id"] or ["brand", "name"] => true,
            ["traits", _] => true,
            ["custom", var key] => customKeys.Contains(key),
            ["event", _, ..] => true,
            _ => false,
        };
    }

    /// <summary>The lookup for one customer now (the live profile's traits) and the event that triggered the message.</summary>
    public async Task<Func<string, string?>> ForAsync(long brandId, long profileId, string? eventJson, CancellationToken ct)
    {
        var traits = await profiles.TraitValuesAsync(profileId, ct);
        var brandName = await db.Set<Brand>().AsNoTracking().Where(b => b.Id == brandId).Select(b => b.Name).SingleOrDefaultAsync(ct);
        JsonElement? evt = eventJson is null ? null : JsonDocument.Parse(eventJson).RootElement.Clone();
        return path =>
        {
            var segments = path.Split('.');
            JsonElement? value = segments switch
            {
                ["name"] => traits is { } t ? TemplateText.At(t, ["name"]) : null,
                ["profile", "id"] => JsonSerializer.SerializeToElement(profileId),
                ["brand", "name"] => brandName is null ? null : JsonSerializer.SerializeToElement(brandName),
                ["traits" or "custom", var key] => traits is { } t ? TemplateText.At(t, [key]) : null,
                ["event", .. var rest] when rest.Length > 0 => evt is { } e ? TemplateText.At(e, rest) : null,
                _ => null,
            };
            return value is { } v ? TemplateText.Text(v) : null;
        };
    }
}
