using System.ComponentModel.DataAnnotations;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Audit;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Platform.Access;

public sealed record ApiKeyDto(long Id, string Name, string Prefix, long? BrandId, string Role, long? StaffUserId, DateTime CreatedAt, DateTime? ExpiresAt, DateTime? RevokedAt, DateTime? LastUsedAt);

/// <summary>Returned once, at creation: the key itself is never stored and cannot be shown again.</summary>
public sealed record CreatedApiKeyDto(ApiKeyDto ApiKey, string Key);

public sealed record CreateApiKeyRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required, StringLength(64, MinimumLength = 1)] string Role,
    /// <summary>Slug or id of the brand the key is scoped to; omit for a group-level key.</summary>
    [property: StringLength(64)] string? Brand,
    long? StaffUserId,
    DateTime? ExpiresAt);

public sealed record RoleDto(long Id, string Name, string Description, IReadOnlyList<string> Permissions, bool BuiltIn);

public sealed record CreateRoleRequest(
    [property: Required, StringLength(64, MinimumLength = 2), RegularExpression("^[a-z0-9][a-z0-9-]*$", ErrorMessage = "Use lower-case letters, digits and '-'.")] string Name,
    [property: StringLength(500)] string? Description,
    [property: Required] List<string> Permissions);

public sealed record UpdateRoleRequest([property: StringLength(500)] string? Description, List<string>? Permissions);

public sealed record StaffUserDto(long Id, string Email, string DisplayName, string Role, long? BrandId, DateTime CreatedAt, DateTime? DisabledAt);

public sealed record CreateStaffUserRequest(
    [property: Required, EmailAddress, StringLength(320)] string Email,
    [property: Required, StringLength(200, MinimumLength = 1)] string DisplayName,
    [property: Required, StringLength(64)] string Role,
    [property: StringLength(64)] string? Brand);

public sealed record UpdateStaffUserRequest([property: StringLength(200, MinimumLength = 1)] string? DisplayName, [property: StringLength(64)] string? Role, bool? Disabled);

/// <summary>Staff access: API keys, roles made of permissions, and the staff users keys act for.</summary>
public static class AccessEndpoints
{
    public static IEndpointRouteBuilder MapAccess(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/permissions", () => TypedResults.Ok(Permissions.All)).WithTags("Access").RequireAuthorization();

        var keys = app.MapGroup("/api/v1/keys").WithTags("Access").RequireAuthorization(Permissions.KeysManage);
        keys.MapGet("/", ListKeys);
        keys.MapGet("/{id}", GetKey);
        keys.MapPost("/", CreateKey);
        keys.MapPost("/{id}/revoke", RevokeKey);

        var roles = app.MapGroup("/api/v1/roles").WithTags("Access");
        roles.MapGet("/", ListRoles).RequireAuthorization(Permissions.KeysManage);
        roles.MapPost("/", CreateRole).RequireAuthorization(Permissions.PlatformAdmin);
        roles.MapPatch("/{id}", UpdateRole).RequireAuthorization(Permissions.PlatformAdmin);
        roles.MapDelete("/{id}", DeleteRole).RequireAuthorization(Permissions.PlatformAdmin);

        var staff = app.MapGroup("/api/v1/staff").WithTags("Access").RequireAuthorization(Permissions.StaffManage);
        staff.MapGet("/", ListStaff);
        staff.MapGet("/{id}", GetStaff);
        staff.MapPost("/", CreateStaff);
        staff.MapPatch("/{id}", UpdateStaff);
        return app;
    }

    // ---- keys ----

    private static Task<long?> FindBrandAsync(MeridianDb db, long groupId, string slugOrId, CancellationToken ct)
    {
        var id = long.TryParse(slugOrId, out var parsed) ? parsed : -1;
        return db.Set<Brand>().Where(b => b.GroupId == groupId && (b.Slug == slugOrId || b.Id == id)).Select(b => (long?)b.Id).SingleOrDefaultAsync(ct);
    }

    /// <summary>Keys the caller may administer: a brand key sees its brand's keys, a group key all of the group's.</summary>
    private static IQueryable<ApiKey> ManageableKeys(MeridianDb db, ApiKeyIdentity caller) =>
        db.Set<ApiKey>().Where(k => k.GroupId == caller.GroupId && (caller.BrandId == null || k.BrandId == caller.BrandId));

    private static async Task<ApiKeyDto> ToDto(MeridianDb db, ApiKey k, CancellationToken ct) =>
        new(k.Id, k.Name, k.Prefix, k.BrandId, await db.Set<Role>().Where(r => r.Id == k.RoleId).Select(r => r.Name).SingleAsync(ct),
            k.StaffUserId, k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt);

    public static async Task<Ok<Page<ApiKeyDto>>> ListKeys([AsParameters] PageRequest page, HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var rows = await (from k in ManageableKeys(db, http.Caller())
                          join r in db.Set<Role>() on k.RoleId equals r.Id
                          where k.Id > page.After
                          orderby k.Id
                          select new ApiKeyDto(k.Id, k.Name, k.Prefix, k.BrandId, r.Name, k.StaffUserId, k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt))
            .Take(page.Take + 1).ToListAsync(ct);
        return TypedResults.Ok(page.ToPage(rows, k => k.Id));
    }

    public static async Task<Results<Ok<ApiKeyDto>, ProblemHttpResult>> GetKey(long id, HttpContext http, MeridianDb db, CancellationToken ct) =>
        await ManageableKeys(db, http.Caller()).SingleOrDefaultAsync(k => k.Id == id, ct) is { } key
            ? TypedResults.Ok(await ToDto(db, key, ct))
            : Problems.NotFound($"API key {id}");

    public static async Task<Results<Created<CreatedApiKeyDto>, ValidationProblem, ProblemHttpResult>> CreateKey(
        CreateApiKeyRequest request, HttpContext http, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var caller = http.Caller();
        var now = time.GetUtcNow().UtcDateTime;
        var role = await db.Set<Role>().SingleOrDefaultAsync(r => r.GroupId == caller.GroupId && r.Name == request.Role, ct);
        if (role is null) return Problems.Validation("role", $"There is no role named '{request.Role}'.");
        if (role.Permissions.Except(caller.Permissions).ToList() is { Count: > 0 } beyond)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "The key lacks a permission.",
                detail: $"A key cannot create a key with more rights than its own; role '{role.Name}' adds: {string.Join(", ", beyond)}.");

        long? brandId = null;
        if (request.Brand is { } named)
        {
            brandId = await FindBrandAsync(db, caller.GroupId, named, ct);
            if (brandId is null) return Problems.Validation("brand", $"There is no brand '{named}' in this group.");
        }
        if (caller.BrandId is { } own && brandId != own)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "The key lacks a permission.",
                detail: "A brand-level key can only create keys for its own brand.");
        if (request.ExpiresAt is { } exp && exp.ToUniversalTime() <= now)
            return Problems.Validation("expiresAt", "The expiry must be in the future.");
        if (request.StaffUserId is { } staffId && !await db.Set<StaffUser>().AnyAsync(s => s.Id == staffId && s.GroupId == caller.GroupId && s.DisabledAt == null, ct))
            return Problems.Validation("staffUserId", $"There is no active staff user {staffId} in this group.");

        var secret = Secrets.NewKey(Secrets.StaffKeyPrefix);
        var key = new ApiKey
        {
            GroupId = caller.GroupId,
            BrandId = brandId,
            RoleId = role.Id,
            StaffUserId = request.StaffUserId,
            Name = request.Name,
            Prefix = Secrets.Display(secret),
            Hash = Secrets.Hash(secret),
            CreatedAt = now,
            ExpiresAt = request.ExpiresAt?.ToUniversalTime(),
        };
        db.Add(key);
        audit.Record(brandId, () => new AuditChange("api-key.created", "api-key", key.Id, null,
            new ApiKeyDto(key.Id, key.Name, key.Prefix, key.BrandId, role.Name, key.StaffUserId, key.CreatedAt, key.ExpiresAt, null, null)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/keys/{key.Id}", new CreatedApiKeyDto(await ToDto(db, key, ct), secret));
    }

    public static async Task<Results<Ok<ApiKeyDto>, ProblemHttpResult>> RevokeKey(
        long id, HttpContext http, MeridianDb db, AuditLog audit, ApiKeyStore store, TimeProvider time, CancellationToken ct)
    {
        var key = await ManageableKeys(db, http.Caller()).SingleOrDefaultAsync(k => k.Id == id, ct);
        if (key is null) return Problems.NotFound($"API key {id}");
        var before = await ToDto(db, key, ct);
        key.Revoke(time.GetUtcNow().UtcDateTime);
        audit.Record(key.BrandId, () => new AuditChange("api-key.revoked", "api-key", key.Id, before, before with { RevokedAt = key.RevokedAt }));
        await db.SaveChangesAsync(ct);
        store.Forget(key.Hash);
        return TypedResults.Ok(await ToDto(db, key, ct));
    }

    // ---- roles ----

    private static RoleDto ToDto(Role r) => new(r.Id, r.Name, r.Description, r.Permissions, r.BuiltIn);

    private static ValidationProblem? UnknownPermissions(IEnumerable<string> permissions) =>
        permissions.Except(Permissions.All).ToList() is { Count: > 0 } unknown
            ? Problems.Validation("permissions", $"Unknown permission(s): {string.Join(", ", unknown)}. GET /api/v1/permissions lists them.")
            : null;

    public static async Task<Ok<List<RoleDto>>> ListRoles(HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var groupId = http.Caller().GroupId;
        var roles = await db.Set<Role>().Where(r => r.GroupId == groupId).OrderBy(r => r.Id).ToListAsync(ct);
        return TypedResults.Ok(roles.Select(ToDto).ToList());
    }

    public static async Task<Results<Created<RoleDto>, ValidationProblem, ProblemHttpResult>> CreateRole(
        CreateRoleRequest request, HttpContext http, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var caller = http.Caller();
        if (caller.BrandId is not null)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "The key lacks a permission.", detail: "Roles belong to the group: only a group-level key can change them.");
        if (UnknownPermissions(request.Permissions) is { } invalid) return invalid;
        if (await db.Set<Role>().AnyAsync(r => r.GroupId == caller.GroupId && r.Name == request.Name, ct))
            return Problems.Conflict($"A role named '{request.Name}' already exists.");
        var role = new Role
        {
            GroupId = caller.GroupId, Name = request.Name, Description = request.Description ?? "",
            Permissions = [.. request.Permissions.Distinct()], CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(role);
        audit.Record(null, () => new AuditChange("role.created", "role", role.Id, null, ToDto(role)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/roles/{role.Id}", ToDto(role));
    }

    public static async Task<Results<Ok<RoleDto>, ValidationProblem, ProblemHttpResult>> UpdateRole(
        long id, UpdateRoleRequest request, HttpContext http, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var caller = http.Caller();
        var role = await db.Set<Role>().SingleOrDefaultAsync(r => r.Id == id && r.GroupId == caller.GroupId, ct);
        if (role is null) return Problems.NotFound($"Role {id}");
        if (caller.BrandId is not null || role.BuiltIn)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "The key lacks a permission.",
                detail: role.BuiltIn ? "Built-in roles cannot be changed; create a custom role instead." : "Only a group-level key can change roles.");
        if (request.Permissions is { } perms && UnknownPermissions(perms) is { } invalid) return invalid;
        var before = ToDto(role);
        role.Description = request.Description ?? role.Description;
        if (request.Permissions is { } p) role.Permissions = [.. p.Distinct()];
        audit.Record(null, () => new AuditChange("role.updated", "role", role.Id, before, ToDto(role)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToDto(role));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteRole(long id, HttpContext http, MeridianDb db, AuditLog audit, CancellationToken ct)
    {
        var caller = http.Caller();
        var role = await db.Set<Role>().SingleOrDefaultAsync(r => r.Id == id && r.GroupId == caller.GroupId, ct);
        if (role is null) return Problems.NotFound($"Role {id}");
        if (caller.BrandId is not null || role.BuiltIn)
            return TypedResults.Problem(statusCode: 403, type: ProblemTypes.Forbidden, title: "The key lacks a permission.",
                detail: role.BuiltIn ? "Built-in roles cannot be deleted." : "Only a group-level key can change roles.");
        if (await db.Set<ApiKey>().AnyAsync(k => k.RoleId == id, ct) || await db.Set<StaffUser>().AnyAsync(s => s.RoleId == id, ct))
            return Problems.Conflict($"Role '{role.Name}' is still given to keys or staff users.");
        db.Remove(role);
        audit.Record(null, () => new AuditChange("role.deleted", "role", id, ToDto(role), null));
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    // ---- staff users ----

    private static IQueryable<StaffUser> ManageableStaff(MeridianDb db, ApiKeyIdentity caller) =>
        db.Set<StaffUser>().Where(s => s.GroupId == caller.GroupId && (caller.BrandId == null || s.BrandId == caller.BrandId));

    private static StaffUserDto ToDto(StaffUser s, string role, bool pii) =>
        new(s.Id, pii ? s.Email : Pii.MaskEmail(s.Email), s.DisplayName, role, s.BrandId, s.CreatedAt, s.DisabledAt);

    private static bool CanReadPii(HttpContext http) => http.Caller().Permissions.Contains(Permissions.PiiRead);

    public static async Task<Ok<Page<StaffUserDto>>> ListStaff([AsParameters] PageRequest page, HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var rows = await (from s in ManageableStaff(db, http.Caller())
                          join r in db.Set<Role>() on s.RoleId equals r.Id
                          where s.Id > page.After
                          orderby s.Id
                          select new { s, r.Name }).Take(page.Take + 1).ToListAsync(ct);
        var pii = CanReadPii(http);
        return TypedResults.Ok(page.ToPage(rows.Select(x => ToDto(x.s, x.Name, pii)).ToList(), s => s.Id));
    }

    public static async Task<Results<Ok<StaffUserDto>, ProblemHttpResult>> GetStaff(long id, HttpContext http, MeridianDb db, CancellationToken ct)
    {
        var row = await (from s in ManageableStaff(db, http.Caller())
                         join r in db.Set<Role>() on s.RoleId equals r.Id
                         where s.Id == id
                         select new { s, r.Name }).SingleOrDefaultAsync(ct);
        return row is null ? Problems.NotFound($"Staff user {id}") : TypedResults.Ok(ToDto(row.s, row.Name, CanReadPii(http)));
    }

    public static async Task<Results<Created<StaffUserDto>, ValidationProblem, ProblemHttpResult>> CreateStaff(
        CreateStaffUserRequest request, HttpContext http, MeridianDb db, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var caller = http.Caller();
        var role = await db.Set<Role>().SingleOrDefaultAsync(r => r.GroupId == caller.GroupId && r.Name == request.Role, ct);
        if (role is null) return Problems.Validation("role", $"There is no role named '{request.Role}'.");
        long? brandId = caller.BrandId;
        if (request.Brand is { } named)
        {
            var found = await FindBrandAsync(db, caller.GroupId, named, ct);
            if (found is null || (caller.BrandId is { } own && own != found))
                return Problems.Validation("brand", $"There is no brand '{named}' this key can manage.");
            brandId = found;
        }
        var email = request.Email.Trim().ToLowerInvariant();
        if (await db.Set<StaffUser>().AnyAsync(s => s.GroupId == caller.GroupId && s.Email == email, ct))
            return Problems.Conflict("A staff user with that email already exists.");
        var user = new StaffUser
        {
            GroupId = caller.GroupId, BrandId = brandId, Email = email, DisplayName = request.DisplayName,
            RoleId = role.Id, CreatedAt = time.GetUtcNow().UtcDateTime,
        };
        db.Add(user);
        // The audit log is readable by admins who may lack pii.read: it keeps the masked address only.
        audit.Record(brandId, () => new AuditChange("staff-user.created", "staff-user", user.Id, null, ToDto(user, role.Name, pii: false)));
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/staff/{user.Id}", ToDto(user, role.Name, CanReadPii(http)));
    }

    public static async Task<Results<Ok<StaffUserDto>, ValidationProblem, ProblemHttpResult>> UpdateStaff(
        long id, UpdateStaffUserRequest request, HttpContext http, MeridianDb db, AuditLog audit, ApiKeyStore store, TimeProvider time, CancellationToken ct)
    {
        var caller = http.Caller();
        var user = await ManageableStaff(db, caller).SingleOrDefaultAsync(s => s.Id == id, ct);
        if (user is null) return Problems.NotFound($"Staff user {id}");
        var role = await db.Set<Role>().SingleAsync(r => r.Id == user.RoleId, ct);
        var before = ToDto(user, role.Name, pii: false);
        if (request.Role is { } roleName && roleName != role.Name)
        {
            role = await db.Set<Role>().SingleOrDefaultAsync(r => r.GroupId == caller.GroupId && r.Name == roleName, ct);
            if (role is null) return Problems.Validation("role", $"There is no role named '{roleName}'.");
            user.RoleId = role.Id;
        }
        user.DisplayName = request.DisplayName ?? user.DisplayName;
        if (request.Disabled is { } disabled) user.DisabledAt = disabled ? user.DisabledAt ?? time.GetUtcNow().UtcDateTime : null;
        var roleNow = role.Name;
        audit.Record(user.BrandId, () => new AuditChange("staff-user.updated", "staff-user", user.Id, before, ToDto(user, roleNow, pii: false)));
        await db.SaveChangesAsync(ct);
        if (user.DisabledAt is not null)
            foreach (var hash in await db.Set<ApiKey>().Where(k => k.StaffUserId == user.Id).Select(k => k.Hash).ToListAsync(ct))
                store.Forget(hash); // the user's keys stop working on this node now, on other nodes within the cache time
        return TypedResults.Ok(ToDto(user, roleNow, CanReadPii(http)));
    }
}
