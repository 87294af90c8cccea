using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Offers.Codes;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Offers;

/// <summary>Generated and imported codes: unique, readable, out of the template's stock; claimed by a customer; guessing slowed and audited.</summary>
public abstract class CodesTests(OffersApp app)
{
    private static string Claim(string code) => $"/api/v1/offers/codes/{Uri.EscapeDataString(code)}/claim";

    [Fact]
    public async Task Generated_codes_are_unique_readable_and_come_out_of_the_stock()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var id = (await b.TemplateAsync(new { name = "Cards", kind = "amount_off", value = 500, stock = 25_000 })).GetProperty("id").GetInt64();

        var made = await b.PostAsync($"/api/v1/offers/templates/{id}/codes", new { count = 20_000 }).ReadAsync<JsonElement>();
        Assert.Equal((20_000L, 5_000L), (made.GetProperty("generated").GetInt64(), made.GetProperty("remaining").GetInt64()));
        await b.PostAsync($"/api/v1/offers/templates/{id}/codes", new { count = 5_001 }).ProblemAsync(409, ProblemTypes.OutOfStock);

        var codes = new List<string>();
        for (string? cursor = null; ;)
        {
            var page = await b.Client.GetAsync($"/api/v1/offers/templates/{id}/coupons?status=unassigned&limit=200" + (cursor is null ? "" : $"&cursor={cursor}")).ReadAsync<JsonElement>();
            codes.AddRange(page.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("code").GetString()!));
            if (page.GetProperty("nextCursor").ValueKind == JsonValueKind.Null) break;
            cursor = page.GetProperty("nextCursor").GetString();
        }
        Assert.Equal(20_000, codes.Distinct().Count());
        Assert.All(codes, c => Assert.Matches("^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$", c));
        // Every letter of the alphabet turns up about equally often (240,000 letters, 7,500 expected each).
        var counts = codes.SelectMany(c => c.Replace("-", "")).GroupBy(ch => ch).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(CouponCodes.Alphabet.Length, counts.Count);
        Assert.All(counts.Values, n => Assert.InRange(n, 6_900, 8_100));
    }

    [Fact]
    public async Task A_customer_claims_a_code_once_another_customer_cannot_and_the_per_customer_limit_counts_it()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(2, "card");
        var id = (await b.TemplateAsync(new { name = "Card", kind = "free_shipping", stock = 10, perCustomerLimit = 1, validDays = 30 })).GetProperty("id").GetInt64();
        await b.PostAsync($"/api/v1/offers/templates/{id}/codes", new { count = 3 }).ReadAsync<JsonElement>();
        var codes = (await b.Client.GetAsync($"/api/v1/offers/templates/{id}/coupons").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray()
            .Select(c => c.GetProperty("code").GetString()!).ToList();

        var typed = codes[0].Replace("-", " ").ToLowerInvariant();
        var claimed = await b.PostAsync(Claim(typed), new { profileId = customers[0] }).ReadAsync<JsonElement>();
        Assert.Equal((codes[0], customers[0]), (claimed.GetProperty("code").GetString(), claimed.GetProperty("profileId").GetInt64()));
        Assert.True(claimed.GetProperty("validUntil").GetDateTime() > app.Clock.GetUtcNow().UtcDateTime.AddDays(29));
        var again = await b.PostAsync(Claim(codes[0]), new { profileId = customers[0] }).ReadAsync<JsonElement>();
        Assert.Equal(claimed.GetProperty("id").GetInt64(), again.GetProperty("id").GetInt64());
        await b.PostAsync(Claim(codes[0]), new { profileId = customers[1] }).ProblemAsync(409, ProblemTypes.Conflict);
        var limit = await b.PostAsync(Claim(codes[1]), new { profileId = customers[0] }).ProblemAsync(409, ProblemTypes.CouponLimitReached);
        Assert.Equal("per_customer", limit.GetProperty("limit").GetString());
        Assert.Single(await b.EventsAsync("coupon.issued"));
    }

    [Fact]
    public async Task Imported_codes_are_normalised_reported_when_they_exist_already_and_refused_when_malformed()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var id = (await b.TemplateAsync(new { name = "Partner", kind = "amount_off", value = 800, stock = 3 })).GetProperty("id").GetInt64();

        var first = await b.PostAsync($"/api/v1/offers/templates/{id}/codes/import", new { codes = new[] { "part-0001", "PART0002" } }).ReadAsync<JsonElement>();
        Assert.Equal(2, first.GetProperty("imported").GetInt32());
        var second = await b.PostAsync($"/api/v1/offers/templates/{id}/codes/import", new { codes = new[] { "PART-0002", "part0003" } }).ReadAsync<JsonElement>();
        Assert.Equal(1, second.GetProperty("imported").GetInt32());
        Assert.Equal(["PART0002"], second.GetProperty("alreadyExisting").EnumerateArray().Select(c => c.GetString()));
        await b.PostAsync($"/api/v1/offers/templates/{id}/codes/import", new { codes = new[] { "PART0004" } }).ProblemAsync(409, ProblemTypes.OutOfStock);
        var bad = await b.PostAsync($"/api/v1/offers/templates/{id}/codes/import", new { codes = new[] { "OK12", "no!" } }).ProblemAsync(400, ProblemTypes.Validation);
        Assert.True(bad.GetProperty("errors").TryGetProperty("codes[1]", out _), bad.ToString());
        Assert.Equal(0, (await b.Client.GetAsync($"/api/v1/offers/templates/{id}").ReadAsync<JsonElement>()).GetProperty("remaining").GetInt64());
    }

    [Fact]
    public async Task Guessing_codes_is_stopped_after_a_few_misses_and_every_miss_is_audited()
    {
        var b = await OffersTestBrand.CreateAsync(app);
        var customers = await b.CustomersAsync(2, "guess");
        var id = (await b.TemplateAsync(new { name = "Real", kind = "amount_off", value = 100, stock = 5 })).GetProperty("id").GetInt64();
        await b.PostAsync($"/api/v1/offers/templates/{id}/codes", new { count = 1 }).ReadAsync<JsonElement>();
        var real = (await b.Client.GetAsync($"/api/v1/offers/templates/{id}/coupons").ReadAsync<JsonElement>()).GetProperty("items")[0].GetProperty("code").GetString()!;

        for (var i = 0; i < 5; i++)
            await b.PostAsync(Claim($"AAAA-BBBB-CC{i + 2}{i + 2}"), new { profileId = customers[0] }).ProblemAsync(404, ProblemTypes.NotFound);
        using var blocked = await b.PostAsync(Claim(real), new { profileId = customers[0] });
        Assert.Equal(429, (int)blocked.StatusCode);
        Assert.True(blocked.Headers.RetryAfter is not null);
        // Another customer is not held back by the first one's guesses.
        await b.PostAsync(Claim(real), new { profileId = customers[1] }).ReadAsync<JsonElement>();

        var audit = await b.Client.GetAsync("/api/v1/audit?action=offers.code.miss&limit=50").ReadAsync<JsonElement>();
        var misses = audit.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(5, misses.Count);
        Assert.All(misses, m => Assert.Equal($"profile:{customers[0]}", m.GetProperty("entityId").GetString()));
        Assert.All(misses, m => Assert.Contains("****", m.GetProperty("after").GetProperty("code").GetString()));

        app.Clock.Advance(TimeSpan.FromMinutes(11));
        await b.PostAsync(Claim("ZZZZ-ZZZZ-ZZZZ"), new { profileId = customers[0] }).ProblemAsync(404, ProblemTypes.NotFound);
    }
}

public sealed class CodesTestsOnSqlite(OffersSqliteApp app) : CodesTests(app), IClassFixture<OffersSqliteApp>;

public sealed class CodesTestsOnPostgres(OffersPostgresApp app) : CodesTests(app), IClassFixture<OffersPostgresApp>;
