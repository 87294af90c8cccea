using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Access;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>API keys and roles: 401 without a valid key, 403 without the permission, keys shown once and stored hashed.</summary>
public abstract class AccessTests(MeridianAppFixture app)
{
    [Fact]
    public async Task A_request_without_a_key_gets_401_problem_details()
    {
        using var anonymous = app.CreateClient();
        var problem = await anonymous.GetAsync("/api/v1/sources").ProblemAsync(401, ProblemTypes.Unauthorized);
        Assert.Contains("Authorization: Bearer", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_wrong_key_gets_401_with_WWW_Authenticate()
    {
        using var client = app.ClientWithKey("mdn_sk_NotAKeyThatExists000000000000000");
        using var response = await client.GetAsync("/api/v1/sources");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        await Task.FromResult(response).ProblemAsync(401, ProblemTypes.Unauthorized);
    }

    [Fact]
    public async Task A_key_without_the_permission_gets_403_naming_it()
    {
        var analyst = await app.NewBrandAsync("analyst");
        var problem = await analyst.Client.PostAsJsonAsync("/api/v1/sources", new { name = "x", channel = "web" })
            .ProblemAsync(403, ProblemTypes.Forbidden);
        Assert.Equal(["sources.write"], problem.GetProperty("missingPermissions").EnumerateArray().Select(p => p.GetString()!).ToArray());
    }

    [Fact]
    public async Task A_created_key_is_shown_once_prefixed_and_stored_only_as_a_hash()
    {
        var created = await app.Admin.PostAsJsonAsync("/api/v1/keys", new { name = "pos sync", role = "marketer", brand = "demo" }).ReadAsync<JsonElement>();
        var secret = created.GetProperty("key").GetString()!;
        var id = created.GetProperty("apiKey").GetProperty("id").GetInt64();
        Assert.StartsWith(Secrets.StaffKeyPrefix, secret);
        Assert.True(secret.Length >= 39);

        var shown = await app.Admin.GetAsync($"/api/v1/keys/{id}").ReadAsync<JsonElement>();
        Assert.DoesNotContain(secret, shown.GetRawText());
        Assert.StartsWith(shown.GetProperty("prefix").GetString()!.TrimEnd('…'), secret);

        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var stored = await scope.ServiceProvider.GetRequiredService<MeridianDb>().Set<ApiKey>().SingleAsync(k => k.Id == id);
        Assert.Equal(Secrets.Hash(secret), stored.Hash);
        Assert.NotEqual(secret, stored.Hash);
    }

    [Fact]
    public async Task A_revoked_key_stops_working_at_once()
    {
        var created = await app.Admin.PostAsJsonAsync("/api/v1/keys", new { name = "temp", role = "analyst", brand = (string?)null }).ReadAsync<JsonElement>();
        using var client = app.ClientWithKey(created.GetProperty("key").GetString()!);
        using (var before = await client.GetAsync("/api/v1/brands")) Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        var revoked = await app.Admin.PostAsync($"/api/v1/keys/{created.GetProperty("apiKey").GetProperty("id").GetInt64()}/revoke", null).ReadAsync<JsonElement>();
        Assert.NotEqual(JsonValueKind.Null, revoked.GetProperty("revokedAt").ValueKind);

        await client.GetAsync("/api/v1/brands").ProblemAsync(401, ProblemTypes.Unauthorized);
    }

    [Fact]
    public async Task Revoking_a_key_twice_is_a_409()
    {
        var created = await app.Admin.PostAsJsonAsync("/api/v1/keys", new { name = "temp", role = "analyst", brand = (string?)null }).ReadAsync<JsonElement>();
        var id = created.GetProperty("apiKey").GetProperty("id").GetInt64();
        await app.Admin.PostAsync($"/api/v1/keys/{id}/revoke", null).ReadAsync<JsonElement>();
        await app.Admin.PostAsync($"/api/v1/keys/{id}/revoke", null).ProblemAsync(409, ProblemTypes.BusinessRule);
    }

    [Fact]
    public async Task A_key_records_when_it_was_last_used()
    {
        var created = await app.Admin.PostAsJsonAsync("/api/v1/keys", new { name = "used", role = "analyst", brand = (string?)null }).ReadAsync<JsonElement>();
        var id = created.GetProperty("apiKey").GetProperty("id").GetInt64();
        Assert.Equal(JsonValueKind.Null, created.GetProperty("apiKey").GetProperty("lastUsedAt").ValueKind);

        using var client = app.ClientWithKey(created.GetProperty("key").GetString()!);
        await client.GetAsync("/api/v1/brands").ReadAsync<JsonElement>();

        var shown = await app.Admin.GetAsync($"/api/v1/keys/{id}").ReadAsync<JsonElement>();
        Assert.True(shown.GetProperty("lastUsedAt").GetDateTime() > DateTime.UtcNow.AddMinutes(-1));
    }

    [Fact]
    public async Task An_expired_key_gets_401()
    {
        var created = await app.Admin.PostAsJsonAsync("/api/v1/keys",
            new { name = "short", role = "analyst", brand = (string?)null, expiresAt = DateTime.UtcNow.AddSeconds(1) }).ReadAsync<JsonElement>();
        await Task.Delay(1500);
        using var client = app.ClientWithKey(created.GetProperty("key").GetString()!);
        await client.GetAsync("/api/v1/brands").ProblemAsync(401, ProblemTypes.Unauthorized);
    }

    [Fact]
    public async Task A_key_cannot_create_a_key_with_more_rights_than_its_own()
    {
        var custom = await app.Admin.PostAsJsonAsync("/api/v1/roles",
            new { name = "key-clerk-" + Guid.NewGuid().ToString("N")[..6], permissions = new[] { "keys.manage", "brands.read" } }).ReadAsync<JsonElement>();
        var clerkKey = await app.NewKeyAsync(custom.GetProperty("name").GetString()!, brand: "demo");
        using var clerk = app.ClientWithKey(clerkKey);

        var problem = await clerk.PostAsJsonAsync("/api/v1/keys", new { name = "escalate", role = "admin", brand = "demo" }).ProblemAsync(403, ProblemTypes.Forbidden);
        Assert.Contains("pii.read", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_brand_admin_cannot_create_a_group_level_key()
    {
        var brand = await app.NewBrandAsync();
        await brand.Client.PostAsJsonAsync("/api/v1/keys", new { name = "wide", role = "analyst" }).ProblemAsync(403, ProblemTypes.Forbidden);
    }

    [Fact]
    public async Task The_built_in_roles_exist_and_cannot_be_changed()
    {
        var roles = await app.Admin.GetAsync("/api/v1/roles").ReadAsync<JsonElement>();
        var names = roles.EnumerateArray().Where(r => r.GetProperty("builtIn").GetBoolean()).Select(r => r.GetProperty("name").GetString()).ToList();
        Assert.Equivalent(new[] { "admin", "marketer", "analyst", "service-agent", "sales" }, names);
        var admin = roles.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "admin");
        Assert.Contains("pii.read", admin.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()));

        await app.Admin.PatchAsJsonAsync($"/api/v1/roles/{admin.GetProperty("id").GetInt64()}", new { permissions = Array.Empty<string>() })
            .ProblemAsync(403, ProblemTypes.Forbidden);
    }

    [Fact]
    public async Task Messaging_needs_its_own_permission_and_built_in_roles_stored_before_it_existed_are_brought_up_to_date()
    {
        var journeysOnly = await app.Admin.PostAsJsonAsync("/api/v1/roles",
            new { name = "journeys-only-" + Guid.NewGuid().ToString("N")[..6], permissions = new[] { "journeys.read", "journeys.write" } }).ReadAsync<JsonElement>();
        using var designer = app.ClientWithKey(await app.NewKeyAsync(journeysOnly.GetProperty("name").GetString()!, brand: "demo"));
        var problem = await designer.GetAsync("/api/v1/messaging/templates").ProblemAsync(403, ProblemTypes.Forbidden);
        Assert.Contains("messaging.read", problem.GetProperty("detail").GetString());
        using var marketer = app.ClientWithKey(await app.NewKeyAsync("marketer", brand: "demo"));
        Assert.Equal(HttpStatusCode.OK, (await marketer.GetAsync("/api/v1/messaging/templates")).StatusCode);

        // A group created by a release without messaging.*: its stored marketer role lacks them until the next start.
        using var scope = app.Services.CreateScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        var stored = await db.Set<Role>().SingleAsync(r => r.BuiltIn && r.Name == "marketer");
        stored.Permissions = [.. stored.Permissions.Where(p => !p.StartsWith("messaging.", StringComparison.Ordinal))];
        await db.SaveChangesAsync();
        Assert.True(await Meridian.Platform.Bootstrap.Bootstrapper.SyncBuiltInRolesAsync(db, CancellationToken.None) >= 1);
        db.ChangeTracker.Clear();
        var synced = await db.Set<Role>().AsNoTracking().SingleAsync(r => r.BuiltIn && r.Name == "marketer");
        Assert.Contains("messaging.write", synced.Permissions);
        Assert.Equal(BuiltInRoles.Definitions["marketer"].Permissions, synced.Permissions);
    }

    [Fact]
    public async Task A_custom_role_with_an_unknown_permission_is_a_validation_error()
    {
        var problem = await app.Admin.PostAsJsonAsync("/api/v1/roles", new { name = "odd", permissions = new[] { "sources.read", "launch.missiles" } })
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("launch.missiles", problem.GetProperty("errors").GetProperty("permissions")[0].GetString());
    }

    [Fact]
    public async Task Staff_emails_are_masked_for_a_key_without_pii_read()
    {
        var email = $"li.na.{Guid.NewGuid():N}@example.com";
        var created = await app.Admin.PostAsJsonAsync("/api/v1/staff", new { email = " " + email.ToUpperInvariant() + " ", displayName = "Li Na", role = "service-agent" })
            .ReadAsync<JsonElement>();
        Assert.Equal(email, created.GetProperty("email").GetString()); // normalised: trimmed, lower-cased

        var custom = await app.Admin.PostAsJsonAsync("/api/v1/roles",
            new { name = "staff-admin-" + Guid.NewGuid().ToString("N")[..6], permissions = new[] { "staff.manage" } }).ReadAsync<JsonElement>();
        using var noPii = app.ClientWithKey(await app.NewKeyAsync(custom.GetProperty("name").GetString()!, brand: null));
        var masked = await noPii.GetAsync($"/api/v1/staff/{created.GetProperty("id").GetInt64()}").ReadAsync<JsonElement>();
        Assert.Equal("l***@example.com", masked.GetProperty("email").GetString());
    }

    [Fact]
    public async Task A_disabled_staff_users_keys_stop_working()
    {
        var staff = await app.Admin.PostAsJsonAsync("/api/v1/staff",
            new { email = $"leaver.{Guid.NewGuid():N}@example.com", displayName = "Leaver", role = "analyst" }).ReadAsync<JsonElement>();
        var staffId = staff.GetProperty("id").GetInt64();
        var created = await app.Admin.PostAsJsonAsync("/api/v1/keys", new { name = "leaver key", role = "analyst", staffUserId = staffId }).ReadAsync<JsonElement>();
        var key = created.GetProperty("key").GetString()!;

        await app.Admin.PatchAsJsonAsync($"/api/v1/staff/{staffId}", new { disabled = true }).ReadAsync<JsonElement>();

        using var client = app.ClientWithKey(key);
        await client.GetAsync("/api/v1/brands").ProblemAsync(401, ProblemTypes.Unauthorized);
    }
}

public sealed class AccessTestsOnSqlite(SqliteApp app) : AccessTests(app), IClassFixture<SqliteApp>;

public sealed class AccessTestsOnPostgres(PostgresApp app) : AccessTests(app), IClassFixture<PostgresApp>;
