using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Profiles;

/// <summary>A fresh brand with a tracking source: send messages in, look profiles up once the projector has caught up.</summary>
public sealed record ProfileTestBrand(TestBrand Test, HttpClient Tracker)
{
    public static async Task<ProfileTestBrand> CreateAsync(MeridianAppFixture app)
    {
        var brand = await app.NewBrandAsync();
        var created = await brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "app", channel = "app" }).ReadAsync<JsonElement>();
        var tracker = app.CreateClient();
        tracker.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes(created.GetProperty("writeKey").GetString() + ":")));
        return new ProfileTestBrand(brand, tracker);
    }

    public async Task SendAsync(params object[] messages) =>
        await Tracker.PostAsJsonAsync("/v1/batch", new { batch = messages }).ReadAsync<JsonElement>();

    /// <summary>Waits for the projector to reflect an identifier (the log is processed asynchronously, within a second or so).</summary>
    public static async Task<JsonElement> LookupAsync(HttpClient client, string type, string value, Func<JsonElement, bool>? until = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var response = await client.GetAsync($"/api/v1/profiles/lookup?type={type}&value={Uri.EscapeDataString(value)}");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var profile = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
                if (until is null || until(profile)) return profile;
            }
            if (attempt > 150) Assert.Fail($"lookup {type}={value}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(100);
        }
    }

    public static IEnumerable<(string, string)> Identifiers(JsonElement profile) =>
        profile.GetProperty("identifiers").EnumerateArray().Select(i => (i.GetProperty("type").GetString()!, i.GetProperty("value").GetString()!));
}
