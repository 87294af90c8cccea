using Meridian.Data;
using Meridian.Ingestion.Sources;
using Meridian.Platform.Access;
using Meridian.Platform.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace Meridian.Platform.Bootstrap;

/// <summary>
/// <c>Meridian:Bootstrap</c>: fixed keys for a fresh server, so that scripts can drive it without reading its output.
/// Unset, random keys are generated and printed once.
/// </summary>
public sealed class BootstrapOptions
{
    public string? AdminApiKey { get; set; }
    public string? WriteKey { get; set; }
}

public sealed record BootstrapResult(string AdminApiKey, string WriteKey);

/// <summary>
/// On an empty database, creates the demo group: "Demo Group" with brands <c>demo</c> and <c>demo-outlet</c>, set up for
/// the Chinese market, the built-in roles, a group-level admin key, and a <c>default</c> source for <c>demo</c>.
/// </summary>
public static class Bootstrapper
{
    public static async Task<BootstrapResult?> EnsureDemoGroupAsync(IServiceProvider services, BootstrapOptions options, CancellationToken ct = default)
    {
        await using var scope = services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var now = scope.ServiceProvider.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime;
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (await db.Set<Group>().AnyAsync(ct))
        {
            await SyncBuiltInRolesAsync(db, ct);
            await tx.CommitAsync(ct);
            return null;
        }

        var group = new Group { Slug = "demo-group", Name = "Demo Group", CreatedAt = now };
        db.Add(group);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException) when (AnotherNodeBootstrapped(services))
        {
            return null; // two nodes started on one empty database: the other one won
        }
        var demo = NewBrand(group.Id, "demo", "Demo", now);
        var outlet = NewBrand(group.Id, "demo-outlet", "Demo Outlet", now);
        db.AddRange(demo, outlet);
        var roles = CreateBuiltInRoles(db, group.Id, now);
        await db.SaveChangesAsync(ct);

        var adminKey = string.IsNullOrWhiteSpace(options.AdminApiKey) ? Secrets.NewKey(Secrets.StaffKeyPrefix) : options.AdminApiKey.Trim();
        var writeKey = string.IsNullOrWhiteSpace(options.WriteKey) ? Secrets.NewKey(Secrets.WriteKeyPrefix) : options.WriteKey.Trim();
        db.Add(new ApiKey
        {
            GroupId = group.Id, RoleId = roles[BuiltInRoles.Admin].Id, Name = "bootstrap admin",
            Prefix = Secrets.Display(adminKey), Hash = Secrets.Hash(adminKey), CreatedAt = now,
        });
        db.Add(new Source
        {
            TenantId = demo.Id, Name = "default", Channel = Channel.Web,
            WriteKeyPrefix = Secrets.Display(writeKey), WriteKeyHash = Secrets.Hash(writeKey), CreatedAt = now, UpdatedAt = now,
        });
        try
        {
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        catch (DbUpdateException) when (AnotherNodeBootstrapped(services))
        {
            return null;
        }
        return new BootstrapResult(adminKey, writeKey);
    }

    private static bool AnotherNodeBootstrapped(IServiceProvider services)
    {
        using var scope = services.CreateScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        return scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<Group>().Any();
    }

    private static Brand NewBrand(long groupId, string slug, string name, DateTime now) => new()
    {
        GroupId = groupId, Slug = slug, Name = name, DefaultPhoneRegion = "CN", TimeZone = "Asia/Shanghai", Currency = "CNY", CreatedAt = now,
    };

    /// <summary>Every group starts with the built-in roles; returned by name.</summary>
    public static Dictionary<string, Role> CreateBuiltInRoles(MeridianDb db, long groupId, DateTime now)
    {
        var roles = BuiltInRoles.Definitions.ToDictionary(d => d.Key, d => new Role
        {
            GroupId = groupId, Name = d.Key, Description = d.Value.Description, Permissions = [.. d.Value.Permissions], BuiltIn = true, CreatedAt = now,
        });
        db.AddRange(roles.Values);
        return roles;
    }

    /// <summary>
    /// Brings every group's built-in roles to <see cref="BuiltInRoles.Definitions"/> (they cannot be edited, so nothing of an
    /// admin's is lost): a permission added by a release reaches groups created before it.
    /// </summary>
    public static async Task<int> SyncBuiltInRolesAsync(MeridianDb db, CancellationToken ct)
    {
        var changed = 0;
        foreach (var role in await db.Set<Role>().Where(r => r.BuiltIn).OrderBy(r => r.Id).ToListAsync(ct))
        {
            if (!BuiltInRoles.Definitions.TryGetValue(role.Name, out var definition)) continue;
            if (role.Permissions.SequenceEqual(definition.Permissions) && role.Description == definition.Description) continue;
            role.Permissions = [.. definition.Permissions];
            role.Description = definition.Description;
            changed++;
        }
        if (changed > 0) await db.SaveChangesAsync(ct);
        return changed;
    }

    public static void Print(BootstrapResult result, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("Meridian created the demo group \"Demo Group\" (brands: demo, demo-outlet).");
        output.WriteLine("These keys are shown once; only their hashes are stored:");
        output.WriteLine($"  admin API key (group, role admin):  {result.AdminApiKey}");
        output.WriteLine($"  write key of source 'default' (demo): {result.WriteKey}");
        output.WriteLine();
    }
}
