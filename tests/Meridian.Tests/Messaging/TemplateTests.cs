using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Messaging;

/// <summary>Templates: brand-scoped CRUD, variables checked when saved, the preview for one customer.</summary>
public abstract class TemplateTests(MessagingApp app)
{
    [Fact]
    public async Task Templates_are_created_read_changed_and_archived_within_their_brand()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var other = await MessagingTestBrand.CreateAsync(app);
        var created = await b.Client.PostAsJsonAsync("/api/v1/messaging/templates",
            new { name = "Welcome", channel = "sms", body = "Hi {{ name | default: \"friend\" }}, welcome to {{ brand.name }}" }).ReadAsync<JsonElement>();
        var id = created.GetProperty("id").GetInt64();
        Assert.Equal(["name", "brand.name"], created.GetProperty("variables").EnumerateArray().Select(v => v.GetString()));

        var changed = await b.Client.PutAsJsonAsync($"/api/v1/messaging/templates/{id}", new { name = "Welcome v2", body = "Hello {{ traits.city }}" }).ReadAsync<JsonElement>();
        Assert.Equal(("Welcome v2", "sms"), (changed.GetProperty("name").GetString(), changed.GetProperty("channel").GetString()));
        var listed = await b.Client.GetAsync("/api/v1/messaging/templates").ReadAsync<JsonElement>();
        Assert.Equal([id], listed.GetProperty("items").EnumerateArray().Select(t => t.GetProperty("id").GetInt64()));

        await other.Client.GetAsync($"/api/v1/messaging/templates/{id}").ProblemAsync(404, ProblemTypes.NotFound);
        await other.Client.PutAsJsonAsync($"/api/v1/messaging/templates/{id}", new { name = "x", body = "y" }).ProblemAsync(404, ProblemTypes.NotFound);
        Assert.Empty((await other.Client.GetAsync("/api/v1/messaging/templates").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());

        using (var archived = await b.Client.DeleteAsync($"/api/v1/messaging/templates/{id}")) Assert.Equal(204, (int)archived.StatusCode);
        Assert.True((await b.Client.GetAsync($"/api/v1/messaging/templates/{id}").ReadAsync<JsonElement>()).GetProperty("archived").GetBoolean());
    }

    [Fact]
    public async Task A_variable_unknown_at_save_time_is_a_400_naming_it()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var problem = await b.Client.PostAsJsonAsync("/api/v1/messaging/templates",
            new { name = "Bad", channel = "sms", body = "Hi {{ name }}, your {{ profile.secret }} and {{ custom.shoe_size }}" }).ProblemAsync(400, ProblemTypes.Validation);
        var errors = problem.GetProperty("errors").GetProperty("body").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(2, errors.Count);
        Assert.Contains("'profile.secret'", errors[0]);
        Assert.Contains("'custom.shoe_size'", errors[1]);

        var unclosed = await b.Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "Bad", channel = "sms", body = "Hi {{ name" }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("never closed", unclosed.GetProperty("errors").GetProperty("body")[0].GetString());
        var code = await b.Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "Bad", channel = "sms", body = "{{ name | upcase }}" }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.Contains("only filter is default", code.GetProperty("errors").GetProperty("body")[0].GetString());
        await b.Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "No subject", channel = "email", body = "Hi" }).ProblemAsync(400, ProblemTypes.Validation);
        await b.Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "Fax", channel = "fax", body = "Hi" }).ProblemAsync(400, ProblemTypes.Validation);

        await b.Client.PostAsJsonAsync("/api/v1/custom-fields", new { entity = "profile", key = "shoe_size", label = "Shoe size", type = "number" }).ReadAsync<JsonElement>();
        await b.Client.PostAsJsonAsync("/api/v1/messaging/templates", new { name = "Good", channel = "sms", body = "Size {{ custom.shoe_size }} for {{ event.order.id }}" }).ReadAsync<JsonElement>();
    }

    [Fact]
    public async Task The_preview_renders_the_template_for_one_customer_and_names_what_would_be_missing()
    {
        var b = await MessagingTestBrand.CreateAsync(app);
        var customer = await b.CustomerAsync(new { name = "Li Na", city = "Hangzhou", tags = new[] { "tea", "books" } });
        var id = await b.TemplateAsync("email", "Dear {{ name }} in {{ traits.city }} ({{ traits.tags }}): order {{ event.order.id }}, {{ traits.nickname | default: \"our friend\" }}",
            subject: "For {{ name }}");

        var preview = await b.Client.PostAsJsonAsync($"/api/v1/messaging/templates/{id}/preview", new { profileId = customer, @event = new { order = new { id = "A-17" } } })
            .ReadAsync<JsonElement>();
        Assert.Equal("For Li Na", preview.GetProperty("subject").GetString());
        Assert.Equal("Dear Li Na in Hangzhou (tea, books): order A-17, our friend", preview.GetProperty("body").GetString());
        Assert.Empty(preview.GetProperty("missing").EnumerateArray());

        var noEvent = await b.Client.PostAsJsonAsync($"/api/v1/messaging/templates/{id}/preview", new { profileId = customer }).ReadAsync<JsonElement>();
        Assert.Equal(JsonValueKind.Null, noEvent.GetProperty("body").ValueKind);
        Assert.Equal(["event.order.id"], noEvent.GetProperty("missing").EnumerateArray().Select(m => m.GetString()));

        var other = await MessagingTestBrand.CreateAsync(app);
        await other.Client.PostAsJsonAsync($"/api/v1/messaging/templates/{id}/preview", new { profileId = customer }).ProblemAsync(404, ProblemTypes.NotFound);
    }
}

public sealed class TemplateTestsOnSqlite(MessagingSqliteApp app) : TemplateTests(app), IClassFixture<MessagingSqliteApp>;

public sealed class TemplateTestsOnPostgres(MessagingPostgresApp app) : TemplateTests(app), IClassFixture<MessagingPostgresApp>;
