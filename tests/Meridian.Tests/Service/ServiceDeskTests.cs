using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Meridian.Tests.Profiles;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Service;

/// <summary>The service desk's assignment queue: tickets about customers go to the least-loaded active agent of their queue.</summary>
public abstract class ServiceDeskTests(MeridianAppFixture app)
{
    private async Task<(ProfileTestBrand Brand, long[] Profiles)> BrandWithCustomersAsync(int count)
    {
        var b = await ProfileTestBrand.CreateAsync(app);
        var phones = Enumerable.Range(0, count).Select(i => $"1390000{i:D4}").ToArray();
        await b.SendAsync([.. phones.Select((phone, i) => (object)new { type = "identify", userId = $"u-{i}", traits = new { phone } })]);
        var ids = new List<long>();
        foreach (var phone in phones) ids.Add((await ProfileTestBrand.LookupAsync(b.Test.Client, "phone", phone)).GetProperty("id").GetInt64());
        return (b, [.. ids]);
    }

    private static async Task<long> AgentAsync(HttpClient client, string name, string? queue = null, bool active = true) =>
        (await client.PostAsJsonAsync("/api/v1/service/agents", new { name, queue, active }).ReadAsync<JsonElement>()).GetProperty("id").GetInt64();

    private static Task<HttpResponseMessage> OpenAsync(HttpClient client, long profileId, string? key = null, string? queue = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/service/tickets") { Content = JsonContent.Create(new { profileId, subject = "Call back about the order", queue }) };
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        return client.SendAsync(request);
    }

    [Fact]
    public async Task Tickets_go_round_the_queues_active_agents_by_fewest_open_tickets()
    {
        var (b, profiles) = await BrandWithCustomersAsync(4);
        var ann = await AgentAsync(b.Test.Client, "Ann");
        var bob = await AgentAsync(b.Test.Client, "Bob");
        await AgentAsync(b.Test.Client, "Cid (on leave)", active: false);
        await AgentAsync(b.Test.Client, "Dee (VIP desk)", queue: "vip");

        var agents = new List<long>();
        foreach (var profile in profiles)
            agents.Add((await OpenAsync(b.Test.Client, profile).ReadAsync<JsonElement>()).GetProperty("agentId").GetInt64());

        Assert.Equal([ann, bob, ann, bob], agents);
        var list = await b.Test.Client.GetAsync($"/api/v1/service/agents").ReadAsync<JsonElement>();
        Assert.Equal([2, 2, 0, 0], list.GetProperty("items").EnumerateArray().Select(a => a.GetProperty("openTickets").GetInt32()));
    }

    [Fact]
    public async Task A_ticket_opened_with_nobody_active_waits_and_goes_to_the_first_agent_who_becomes_active()
    {
        var (b, profiles) = await BrandWithCustomersAsync(1);
        var waiting = await OpenAsync(b.Test.Client, profiles[0], queue: "returns").ReadAsync<JsonElement>();
        Assert.Equal(("waiting", JsonValueKind.Null), (waiting.GetProperty("status").GetString(), waiting.GetProperty("agentId").ValueKind));

        var eve = await AgentAsync(b.Test.Client, "Eve", queue: "returns", active: false);
        Assert.Equal("waiting", (await b.Test.Client.GetAsync($"/api/v1/service/tickets/{waiting.GetProperty("id")}").ReadAsync<JsonElement>()).GetProperty("status").GetString());
        await b.Test.Client.PutAsJsonAsync($"/api/v1/service/agents/{eve}", new { active = true }).ReadAsync<JsonElement>();

        var ticket = await b.Test.Client.GetAsync($"/api/v1/service/tickets/{waiting.GetProperty("id")}").ReadAsync<JsonElement>();
        Assert.Equal(("assigned", eve), (ticket.GetProperty("status").GetString(), ticket.GetProperty("agentId").GetInt64()));
    }

    [Fact]
    public async Task Closing_a_ticket_frees_the_agent_for_the_next_waiting_one_and_a_second_close_changes_nothing()
    {
        var (b, profiles) = await BrandWithCustomersAsync(2);
        var fay = await AgentAsync(b.Test.Client, "Fay");
        await b.Test.Client.PutAsJsonAsync($"/api/v1/service/agents/{fay}", new { active = true }).ReadAsync<JsonElement>();
        var first = await OpenAsync(b.Test.Client, profiles[0]).ReadAsync<JsonElement>();
        await b.Test.Client.PutAsJsonAsync($"/api/v1/service/agents/{fay}", new { active = false }).ReadAsync<JsonElement>();
        var second = await OpenAsync(b.Test.Client, profiles[1]).ReadAsync<JsonElement>();
        Assert.Equal("waiting", second.GetProperty("status").GetString());
        await b.Test.Client.PutAsJsonAsync($"/api/v1/service/agents/{fay}", new { active = true }).ReadAsync<JsonElement>();

        var closed = await b.Test.Client.PostAsync($"/api/v1/service/tickets/{first.GetProperty("id")}/close", null).ReadAsync<JsonElement>();
        var again = await b.Test.Client.PostAsync($"/api/v1/service/tickets/{first.GetProperty("id")}/close", null).ReadAsync<JsonElement>();

        Assert.Equal("closed", closed.GetProperty("status").GetString());
        Assert.Equal(closed.GetProperty("closedAt").GetDateTime(), again.GetProperty("closedAt").GetDateTime());
        var agent = (await b.Test.Client.GetAsync("/api/v1/service/agents").ReadAsync<JsonElement>()).GetProperty("items")[0];
        Assert.Equal(1, agent.GetProperty("openTickets").GetInt32());
        Assert.Equal(fay, (await b.Test.Client.GetAsync($"/api/v1/service/tickets/{second.GetProperty("id")}").ReadAsync<JsonElement>()).GetProperty("agentId").GetInt64());
    }

    [Fact]
    public async Task The_same_idempotency_key_opens_one_ticket_even_when_sent_concurrently()
    {
        var (b, profiles) = await BrandWithCustomersAsync(1);
        await AgentAsync(b.Test.Client, "Gus");

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => OpenAsync(b.Test.Client, profiles[0], key: "journey-7-node-3")));

        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK, r.StatusCode.ToString()));
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        var ids = await Task.WhenAll(responses.Select(async r => (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64()));
        Assert.Single(ids.Distinct());
        var tickets = await b.Test.Client.GetAsync($"/api/v1/service/tickets?profileId={profiles[0]}").ReadAsync<JsonElement>();
        Assert.Single(tickets.GetProperty("items").EnumerateArray());
        Assert.Equal(1, (await b.Test.Client.GetAsync("/api/v1/service/agents").ReadAsync<JsonElement>()).GetProperty("items")[0].GetProperty("openTickets").GetInt32());
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        Assert.Equal(1, await db.Set<OutboxMessage>().CountAsync(m => m.BrandId == b.Test.Id && m.Type == "ticket.opened"));
        Assert.Equal(1, await db.Set<OutboxMessage>().CountAsync(m => m.BrandId == b.Test.Id && m.Type == "ticket.assigned"));
    }

    [Fact]
    public async Task A_ticket_for_another_brands_customer_is_refused_with_the_field_named()
    {
        var (other, profiles) = await BrandWithCustomersAsync(1);
        var mine = await ProfileTestBrand.CreateAsync(app);

        var problem = await OpenAsync(mine.Test.Client, profiles[0]).ProblemAsync(400, ProblemTypes.Validation);

        Assert.Contains("profileId", problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        Assert.Empty((await other.Test.Client.GetAsync("/api/v1/service/tickets").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Staff_can_move_a_ticket_to_a_named_agent_and_the_load_follows()
    {
        var (b, profiles) = await BrandWithCustomersAsync(1);
        var hal = await AgentAsync(b.Test.Client, "Hal");
        var ida = await AgentAsync(b.Test.Client, "Ida", queue: "vip");
        var ticket = await OpenAsync(b.Test.Client, profiles[0]).ReadAsync<JsonElement>();
        Assert.Equal(hal, ticket.GetProperty("agentId").GetInt64());

        var moved = await b.Test.Client.PostAsJsonAsync($"/api/v1/service/tickets/{ticket.GetProperty("id")}/assign", new { agentId = ida }).ReadAsync<JsonElement>();

        Assert.Equal(ida, moved.GetProperty("agentId").GetInt64());
        var load = (await b.Test.Client.GetAsync("/api/v1/service/agents").ReadAsync<JsonElement>()).GetProperty("items").EnumerateArray()
            .ToDictionary(a => a.GetProperty("id").GetInt64(), a => a.GetProperty("openTickets").GetInt32());
        Assert.Equal((0, 1), (load[hal], load[ida]));
    }
}

public sealed class ServiceDeskTestsOnSqlite(SqliteApp app) : ServiceDeskTests(app), IClassFixture<SqliteApp>;

public sealed class ServiceDeskTestsOnPostgres(PostgresApp app) : ServiceDeskTests(app), IClassFixture<PostgresApp>;
