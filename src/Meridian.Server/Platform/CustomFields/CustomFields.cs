using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Meridian.Platform.CustomFields;

public enum CustomFieldType
{
    Text,
    Number,
    Date,
    Enum,
    Boolean,
}

/// <summary>How a field's values from several events, or from two merged profiles, combine into one.</summary>
public enum TraitMerge
{
    /// <summary>The value of the latest event (by event time): a name, an address.</summary>
    Latest,
    /// <summary>The value of the earliest event: the first channel, the acquisition campaign.</summary>
    First,
    /// <summary>Numbers add up: visits, points earned elsewhere.</summary>
    Sum,
    /// <summary>Every distinct value, as a list: interests, stores visited.</summary>
    Union,
}

/// <summary>
/// A field business users add without code, per brand, to an entity: <c>profile</c> now, custom objects later
/// (the entity name is the only thing that changes). Values are validated against the type wherever they come from.
/// </summary>
public sealed class CustomField : ITenantOwned
{
    public long Id { get; private set; }
    public long TenantId { get; init; }
    public required string Entity { get; init; }
    public required string Key { get; init; }
    public required string Label { get; set; }
    public CustomFieldType Type { get; init; }
    public List<string> Options { get; set; } = [];
    public TraitMerge Merge { get; set; }
    public DateTime CreatedAt { get; init; }

    /// <summary>Null when the strategy suits the type: only numbers add up, only text and enum values gather into lists.</summary>
    public static string? CheckMerge(CustomFieldType type, TraitMerge merge) => merge switch
    {
        TraitMerge.Sum when type != CustomFieldType.Number => "Only number fields can sum.",
        TraitMerge.Union when type is not (CustomFieldType.Text or CustomFieldType.Enum) => "Only text and enum fields can gather a union of values.",
        _ => null,
    };

    /// <summary>Null when the value fits the field; otherwise why not.</summary>
    public string? Check(JsonElement value) => Type switch
    {
        _ when value.ValueKind == JsonValueKind.Null => null,
        CustomFieldType.Text => value.ValueKind == JsonValueKind.String && value.GetString()!.Length <= 2000 ? null : "Expected text (at most 2,000 characters).",
        CustomFieldType.Number => value.ValueKind == JsonValueKind.Number ? null : "Expected a number.",
        CustomFieldType.Boolean => value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : "Expected true or false.",
        CustomFieldType.Date => value.ValueKind == JsonValueKind.String && DateOnly.TryParseExact(value.GetString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)
            ? null : "Expected a date as yyyy-MM-dd.",
        CustomFieldType.Enum => value.ValueKind == JsonValueKind.String && Options.Contains(value.GetString()!) ? null : $"Expected one of: {string.Join(", ", Options)}.",
        _ => "Unknown field type.",
    };
}

internal sealed class CustomFieldMap : IEntityTypeConfiguration<CustomField>
{
    public void Configure(EntityTypeBuilder<CustomField> b)
    {
        b.ToTable("custom_fields");
        b.HasIndex(x => new { x.TenantId, x.Entity, x.Key }).IsUnique();
        b.Property(x => x.Entity).HasMaxLength(64);
        b.Property(x => x.Key).HasMaxLength(64);
        b.Property(x => x.Label).HasMaxLength(200);
        b.Property(x => x.Type).HasConversion<string>().HasMaxLength(16);
        b.Property(x => x.Merge).HasConversion<string>().HasMaxLength(16);
    }
}

/// <summary>The public way for modules to read a brand's custom fields (Profiles validates traits with it).</summary>
public sealed class CustomFieldCatalog(MeridianDb db)
{
    public async Task<IReadOnlyDictionary<string, CustomField>> ForAsync(long tenantId, string entity, CancellationToken ct) =>
        await db.Set<CustomField>().AsNoTracking().Where(f => f.TenantId == tenantId && f.Entity == entity).ToDictionaryAsync(f => f.Key, ct);
}

public sealed record CustomFieldDto(long Id, string Entity, string Key, string Label, CustomFieldType Type, IReadOnlyList<string> Options, TraitMerge Merge,
    DateTime CreatedAt)
{
    public static CustomFieldDto From(CustomField f) => new(f.Id, f.Entity, f.Key, f.Label, f.Type, f.Options, f.Merge, f.CreatedAt);
}

public sealed record CreateCustomFieldRequest(
    [property: Required, RegularExpression("^profile$", ErrorMessage = "Custom fields can be added to: profile.")] string Entity,
    [property: Required, RegularExpression("^[a-z][a-z0-9_]{0,63}$", ErrorMessage = "Use lower-case letters, digits and '_', starting with a letter.")] string Key,
    [property: Required, StringLength(200, MinimumLength = 1)] string Label,
    [property: Required] CustomFieldType? Type,
    List<string>? Options,
    TraitMerge? Merge = null);

/// <param name="Merge">Applies to values folded from now on; stored values stay as they are.</param>
public sealed record UpdateCustomFieldRequest([property: StringLength(200, MinimumLength = 1)] string? Label, List<string>? Options, TraitMerge? Merge = null);

public static class CustomFieldsEndpoints
{
    public static IEndpointRouteBuilder MapCustomFields(this IEndpointRouteBuilder app)
    {
        var fields = app.MapGroup("/api/v1/custom-fields").WithTags("Custom fields");
        fields.MapGet("/", List).RequireAuthorization(Permissions.BrandsRead).RequireBrand();
        fields.MapPost("/", Create).RequireAuthorization(Permissions.PlatformAdmin).RequireBrand();
        fields.MapPatch("/{id}", Update).RequireAuthorization(Permissions.PlatformAdmin);
        fields.MapDelete("/{id}", Delete).RequireAuthorization(Permissions.PlatformAdmin);
        return app;
    }

    public static async Task<Ok<List<CustomFieldDto>>> List([FromQuery] string? entity, MeridianDb db, TenantScope tenant, CancellationToken ct) =>
        TypedResults.Ok((await db.Set<CustomField>().Where(f => f.TenantId == tenant.Brand && (entity == null || f.Entity == entity))
            .OrderBy(f => f.Id).ToListAsync(ct)).Select(CustomFieldDto.From).ToList());

    public static async Task<Results<Created<CustomFieldDto>, ValidationProblem, ProblemHttpResult>> Create(
        CreateCustomFieldRequest request, MeridianDb db, TenantScope tenant, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var options = request.Options?.Where(o => !string.IsNullOrWhiteSpace(o)).Distinct().ToList() ?? [];
        if (request.Type == CustomFieldType.Enum && options.Count == 0) return Problems.Validation("options", "An enum field needs its options.");
        if (request.Type != CustomFieldType.Enum && options.Count > 0) return Problems.Validation("options", "Only enum fields have options.");
        if (CustomField.CheckMerge(request.Type!.Value, request.Merge ?? TraitMerge.Latest) is { } badMerge) return Problems.Validation("merge", badMerge);
        if (await db.Set<CustomField>().AnyAsync(f => f.TenantId == tenant.Brand && f.Entity == request.Entity && f.Key == request.Key, ct))
            return Problems.Conflict($"The {request.Entity} already has a field '{request.Key}'.");
        var field = new CustomField
        {
            TenantId = tenant.Brand, Entity = request.Entity, Key = request.Key, Label = request.Label, Type = request.Type!.Value, Options = options,
            Merge = request.Merge ?? TraitMerge.Latest, CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(field);
        audit.Record(field.TenantId, () => new AuditChange("custom-field.created", "custom-field", field.Id, null, CustomFieldDto.From(field)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/custom-fields/{field.Id}", CustomFieldDto.From(field));
    }

    /// <summary>Label and enum options can change; the type cannot (stored values would stop fitting it).</summary>
    public static async Task<Results<Ok<CustomFieldDto>, ValidationProblem, ProblemHttpResult>> Update(
        long id, UpdateCustomFieldRequest request, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var field = await db.Set<CustomField>().SingleOrDefaultAsync(f => f.Id == id, ct);
        if (field is null) return Problems.NotFound($"Custom field {id}");
        if (request.Options is not null && field.Type != CustomFieldType.Enum) return Problems.Validation("options", "Only enum fields have options.");
        if (request.Merge is { } merge && CustomField.CheckMerge(field.Type, merge) is { } badMerge) return Problems.Validation("merge", badMerge);
        var before = CustomFieldDto.From(field);
        field.Label = request.Label ?? field.Label;
        if (request.Options is { } options) field.Options = options.Where(o => !string.IsNullOrWhiteSpace(o)).Distinct().ToList();
        field.Merge = request.Merge ?? field.Merge;
        audit.Record(field.TenantId, () => new AuditChange("custom-field.updated", "custom-field", field.Id, before, CustomFieldDto.From(field)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(CustomFieldDto.From(field));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(long id, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var field = await db.Set<CustomField>().SingleOrDefaultAsync(f => f.Id == id, ct);
        if (field is null) return Problems.NotFound($"Custom field {id}");
        db.Remove(field);
        audit.Record(field.TenantId, () => new AuditChange("custom-field.deleted", "custom-field", id, CustomFieldDto.From(field), null));
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }
}
