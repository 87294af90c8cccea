using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;

namespace Meridian.Tests.Login;

/// <summary>
/// Account linking: the brand's back end vouches for an identifier (client credentials), the signed-in customer redeems
/// the proof, and ID-Mapping joins the identifier to the customer's profile.
/// </summary>
public abstract class AccountLinkingTests(LoginApp app)
{
    private Task<(string Access, long ProfileId)> SignInAsync(LoginBrand b) => Flow.SignedInCustomerAsync(app, b);

    /// <summary>A client-credentials token of the brand's mini-program back end.</summary>
    private async Task<string> BackEndTokenAsync(LoginBrand b)
    {
        var created = await b.NewClientAsync(new { name = "mini-program server", channel = "mini_program", type = "confidential", clientCredentials = true });
        using var http = app.Browser();
        var token = await http.PostAsync("/connect/token", Flow.Form(("grant_type", "client_credentials"),
            ("client_id", created.GetProperty("client").GetProperty("clientId").GetString()!), ("client_secret", created.GetProperty("clientSecret").GetString()!),
            ("scope", "meridian_api"))).JsonAsync();
        return token.GetProperty("access_token").GetString()!;
    }

    private Task<HttpResponseMessage> ProofAsync(string token, string type, string value)
    {
        var request = Flow.WithBearer(HttpMethod.Post, "/api/v1/login/identity-proofs", token);
        request.Content = JsonContent.Create(new { type, value });
        return app.Browser().SendAsync(request);
    }

    private Task<HttpResponseMessage> LinkAsync(string access, string proof)
    {
        var request = Flow.WithBearer(HttpMethod.Post, "/api/v1/me/identifiers", access);
        request.Content = JsonContent.Create(new { proof });
        return app.Browser().SendAsync(request);
    }

    [Fact]
    public async Task A_unionid_vouched_for_by_the_brands_back_end_joins_the_signed_in_customers_profile()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (access, profileId) = await SignInAsync(b);
        var backEnd = await BackEndTokenAsync(b);

        var proof = await ProofAsync(backEnd, "unionid", "  oUnion-Linked-1 ").JsonAsync();
        var linked = await LinkAsync(access, proof.GetProperty("proof").GetString()!).JsonAsync();

        Assert.Equal(("unionid", "oUnion-Linked-1", profileId), (linked.GetProperty("type").GetString(), linked.GetProperty("value").GetString(), linked.GetProperty("profileId").GetInt64()));
        var found = await b.Brand.Client.GetAsync("/api/v1/profiles/lookup?type=unionid&value=oUnion-Linked-1").ReadAsync<JsonElement>();
        Assert.Equal(profileId, found.GetProperty("id").GetInt64());
        var mine = await app.Browser().SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me/identifiers", access)).JsonAsync();
        Assert.Equal(["oUnion-Linked-1"], mine.GetProperty("unionid").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public async Task Linking_a_member_number_the_brand_knew_from_store_purchases_brings_that_history_to_the_customer()
    {
        var b = await LoginBrand.CreateAsync(app);
        // The store system knows the customer by member number only.
        var writeKey = (await b.Brand.Client.PostAsJsonAsync("/api/v1/sources", new { name = "pos", channel = "pos" }).ReadAsync<JsonElement>()).GetProperty("writeKey").GetString()!;
        using var pos = new HttpClient { BaseAddress = app.Address };
        pos.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(writeKey + ":")));
        await pos.PostAsJsonAsync("/v1/track", new { anonymousId = "pos-till-3", @event = "Order Completed", properties = new { order_id = "S-1", total = 88 },
            context = new { traits = new { member_no = "M-000777" } } }).ReadAsync<JsonElement>();
        var storeProfile = await Profiles.ProfileTestBrand.LookupAsync(b.Brand.Client, "member_no", "M-000777");
        var (access, profileId) = await SignInAsync(b);

        var proof = await ProofAsync(await BackEndTokenAsync(b), "member_no", "M-000777").JsonAsync();
        var linked = await LinkAsync(access, proof.GetProperty("proof").GetString()!).JsonAsync();

        // ID-Mapping merged the store profile and the login's: one customer, whichever id survived, and the account follows it.
        var survivor = linked.GetProperty("profileId").GetInt64();
        Assert.Contains(survivor, new[] { profileId, storeProfile.GetProperty("id").GetInt64() });
        var me = await app.Browser().SendAsync(Flow.WithBearer(HttpMethod.Get, "/api/v1/me", access)).JsonAsync();
        Assert.Equal(survivor, me.GetProperty("profileId").GetInt64());
        var timeline = await b.Brand.Client.GetAsync($"/api/v1/profiles/{survivor}/timeline").ReadAsync<JsonElement>();
        Assert.Contains(timeline.GetProperty("items").EnumerateArray(), e => e.GetProperty("name").GetString() == "Order Completed");
    }

    [Fact]
    public async Task A_proof_works_once_only_for_its_brand_and_only_a_back_end_may_ask_for_one()
    {
        var b = await LoginBrand.CreateAsync(app);
        var other = await LoginBrand.CreateAsync(app);
        var (access, _) = await SignInAsync(b);
        var (otherAccess, _) = await SignInAsync(other);
        var backEnd = await BackEndTokenAsync(b);

        var proof = (await ProofAsync(backEnd, "openid", "o-open-1").JsonAsync()).GetProperty("proof").GetString()!;
        await LinkAsync(otherAccess, proof).ProblemAsync(400, ProblemTypes.Validation);
        await LinkAsync(access, proof).JsonAsync();
        await LinkAsync(access, proof).ProblemAsync(400, ProblemTypes.Validation);
        await LinkAsync(access, "mdn_pf_made-up").ProblemAsync(400, ProblemTypes.Validation);

        // A customer's own token cannot vouch for anything.
        await ProofAsync(access, "unionid", "o-self-made").ProblemAsync(403, ProblemTypes.Forbidden);
        await ProofAsync(backEnd, "no_such_type", "x").ProblemAsync(400, ProblemTypes.Validation);
        await ProofAsync(backEnd, "unionid", "anonymous").ProblemAsync(400, ProblemTypes.Validation);
        using var anonymous = await app.Browser().PostAsJsonAsync("/api/v1/login/identity-proofs", new { type = "unionid", value = "o-1" });
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task An_expired_proof_is_refused()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (access, _) = await SignInAsync(b);
        var proof = (await ProofAsync(await BackEndTokenAsync(b), "unionid", "o-late").JsonAsync()).GetProperty("proof").GetString()!;

        app.Clock.Advance(TimeSpan.FromMinutes(6));
        try
        {
            await LinkAsync(access, proof).ProblemAsync(400, ProblemTypes.Validation);
        }
        finally
        {
            app.Clock.Advance(TimeSpan.FromMinutes(-6));
        }
    }

    [Fact]
    public async Task A_unionid_of_another_customer_is_not_taken_over_and_the_refusal_says_why()
    {
        var b = await LoginBrand.CreateAsync(app);
        var (access, _) = await SignInAsync(b);
        var (otherAccess, otherProfile) = await SignInAsync(b);
        var backEnd = await BackEndTokenAsync(b);
        await LinkAsync(otherAccess, (await ProofAsync(backEnd, "unionid", "o-theirs").JsonAsync()).GetProperty("proof").GetString()!).JsonAsync();
        await LinkAsync(access, (await ProofAsync(backEnd, "unionid", "o-mine").JsonAsync()).GetProperty("proof").GetString()!).JsonAsync();

        // One unionid per profile: a second one cannot join, and o-theirs stays with its owner.
        var problem = await LinkAsync(access, (await ProofAsync(backEnd, "unionid", "o-theirs").JsonAsync()).GetProperty("proof").GetString()!)
            .ProblemAsync(409, ProblemTypes.Conflict);

        Assert.Contains("another customer", problem.GetProperty("detail").GetString());
        var owner = await b.Brand.Client.GetAsync("/api/v1/profiles/lookup?type=unionid&value=o-theirs").ReadAsync<JsonElement>();
        Assert.Equal(otherProfile, owner.GetProperty("id").GetInt64());
    }
}

public sealed class AccountLinkingTestsOnSqlite(LoginSqliteApp app) : AccountLinkingTests(app), IClassFixture<LoginSqliteApp>;

public sealed class AccountLinkingTestsOnPostgres(LoginPostgresApp app) : AccountLinkingTests(app), IClassFixture<LoginPostgresApp>;
