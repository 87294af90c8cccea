using System.Net;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Hosting;

/// <summary>Health, the OpenAPI document and its browsable reference, and the problem type descriptions.</summary>
public abstract class HostingTests(MeridianAppFixture app)
{
    [Fact]
    public async Task Requests_racing_to_create_the_same_unique_thing_get_201_or_409_never_500()
    {
        var brand = await app.NewBrandAsync();
        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            brand.Client.PostAsync("/api/v1/sources", new StringContent("""{"name":"till","channel":"pos"}""", System.Text.Encoding.UTF8, "application/json"))));

        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Created);
        foreach (var refused in answers.Where(a => a.StatusCode != HttpStatusCode.Created))
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(ProblemTypes.Conflict, problem.GetProperty("type").GetString());
        }
    }

    [Fact]
    public async Task Health_live_and_ready_answer_without_a_key()
    {
        using var client = app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
        var ready = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_OpenAPI_document_lists_the_api_with_bearer_security()
    {
        using var client = app.CreateClient();
        var doc = JsonDocument.Parse(await client.GetStringAsync("/openapi/v1.json")).RootElement;
        var paths = doc.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/v1/sources", paths);
        Assert.Contains("/api/v1/keys", paths);
        Assert.Contains("/api/v1/audit", paths);
        Assert.Equal("bearer", doc.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer").GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task The_API_reference_is_browsable()
    {
        using var client = app.CreateClient();
        var html = await client.GetStringAsync("/docs/");
        Assert.Contains("<html", html, StringComparison.OrdinalIgnoreCase);
        // The page resolves this against the site root (it strips its own /docs/ suffix), i.e. /openapi/v1.json.
        Assert.Contains("\"url\":\"openapi/v1.json\"", html);
        using var script = await client.GetAsync("/docs/scalar.js"); // served by Meridian itself: no CDN needed
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }

    [Fact]
    public async Task Every_problem_type_resolves_to_its_description()
    {
        using var client = app.CreateClient();
        foreach (var slug in ProblemTypes.Catalogue.Keys)
        {
            var text = await client.GetStringAsync(ProblemTypes.Prefix + slug);
            Assert.StartsWith("# " + ProblemTypes.Catalogue[slug].Title, text);
        }
    }

    [Fact]
    public async Task Validation_errors_name_the_json_fields()
    {
        var problem = await app.ClientWithKey(MeridianAppFixture.AdminKey, "demo")
            .PostAsync("/api/v1/sources", new StringContent("""{"name":"Bad Name!","channel":"web"}""", System.Text.Encoding.UTF8, "application/json"))
            .ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(problem.GetProperty("errors").TryGetProperty("name", out _), problem.GetRawText());
    }
}

public sealed class HostingTestsOnSqlite(SqliteApp app) : HostingTests(app), IClassFixture<SqliteApp>;

public sealed class HostingTestsOnPostgres(PostgresApp app) : HostingTests(app), IClassFixture<PostgresApp>;
