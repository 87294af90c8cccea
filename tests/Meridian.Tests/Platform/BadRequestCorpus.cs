using System.Net;
using System.ComponentModel.DataAnnotations;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Meridian.Hosting;
using Meridian.Tests.Infrastructure;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>One endpoint of the running app and one HTTP method it answers, as the router knows it.</summary>
internal sealed record CorpusEndpoint(string Method, RoutePattern Pattern, Type? BodyType, bool AnyMethod)
{
    public string Template => Path(p => "{" + p.Name + "}");
    public string Key => $"{Method} {Template}";
    public bool HasBody => BodyType is not null;

    /// <summary>Revokes and deletes go last, so that the rows they remove serve every other endpoint first.</summary>
    public bool Destructive => Method == "DELETE" || Template.EndsWith("/revoke", StringComparison.Ordinal);

    public string Path(Func<RoutePatternParameterPart, string> fill) =>
        "/" + string.Join('/', Pattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
        {
            RoutePatternLiteralPart literal => literal.Content,
            RoutePatternSeparatorPart separator => separator.Content,
            RoutePatternParameterPart parameter => fill(parameter),
            _ => "",
        }))));

    /// <summary>
    /// Every route endpoint with its methods. Endpoints mapped for any method (health checks, metrics) are taken as GET.
    /// </summary>
    public static IReadOnlyList<CorpusEndpoint> Discover(IServiceProvider services) =>
        services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            // OpenID Connect's endpoints answer in OAuth's error format and the sign-in pages in HTML, as browsers and OIDC
            // clients expect, not in problem details; tests/Login holds their refusals.
            .Where(e => e.RoutePattern.RawText?.TrimStart('/') is not { } path || !(path.StartsWith("connect/", StringComparison.Ordinal) || path.StartsWith("login/", StringComparison.Ordinal)))
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Where(m => m is not ("HEAD" or "OPTIONS"))
                .Select(m => new CorpusEndpoint(m, e.RoutePattern, e.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType,
                    AnyMethod: e.Metadata.GetMetadata<IHttpMethodMetadata>() is null)))
            .DistinctBy(e => e.Key)
            .OrderBy(e => e.Destructive)
            .ThenBy(e => e.Template, StringComparer.Ordinal)
            .ThenBy(e => e.Method, StringComparer.Ordinal)
            .ToList();
}

internal enum FieldKind { String, Integer, Number, Boolean, Enum, DateTime, StringList, Other }

/// <summary>A JSON field of a request type, with a value the endpoint should accept and values it must refuse politely.</summary>
internal sealed record BodyField(string Name, FieldKind Kind, bool Required, Func<string> Valid, IReadOnlyList<(string What, string Json)> WrongType, IReadOnlyList<(string What, string Json)> Edge);

/// <summary>The JSON shape of an endpoint's request type, read by reflection, and raw JSON bodies built from it.</summary>
internal sealed class RequestShape
{
    private static readonly NullabilityInfoContext Nullability = new();
    private static int counter;

    public required IReadOnlyList<BodyField> Fields { get; init; }

    /// <summary>
    /// Raw JSON: the required fields (or all, with <paramref name="allFields"/>) with accepted values, except where
    /// <paramref name="overrides"/> gives a raw JSON value (null: leave the field out); overrides of unknown names are added.
    /// </summary>
    public string Body(IReadOnlyDictionary<string, string?>? overrides = null, bool allFields = false)
    {
        overrides ??= new Dictionary<string, string?>();
        var members = new List<string>();
        foreach (var field in Fields)
        {
            if (overrides.TryGetValue(field.Name, out var given))
            {
                if (given is not null) members.Add($"\"{field.Name}\":{given}");
            }
            else if (field.Required || allFields)
            {
                members.Add($"\"{field.Name}\":{field.Valid()}");
            }
        }
        members.AddRange(overrides.Where(o => o.Value is not null && Fields.All(f => f.Name != o.Key)).Select(o => $"\"{o.Key}\":{o.Value}"));
        return "{" + string.Join(',', members) + "}";
    }

    public static RequestShape Of(Type type) => new()
    {
        Fields = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
            .Select(FieldOf)
            .ToList(),
    };

    private static BodyField FieldOf(PropertyInfo property)
    {
        var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
        var underlying = Nullable.GetUnderlyingType(property.PropertyType);
        var nullable = underlying is not null
            || (!property.PropertyType.IsValueType && Nullability.Create(property).WriteState == NullabilityState.Nullable);
        var type = underlying ?? property.PropertyType;
        var required = !nullable || property.GetCustomAttribute<RequiredAttribute>() is not null;
        var kind = KindOf(type);
        return new BodyField(name, kind, required, ValidValue(property, name, type, kind), WrongTypeValues(kind), EdgeValues(kind));
    }

    private static FieldKind KindOf(Type type) =>
        type == typeof(string) ? FieldKind.String
        : type.IsEnum ? FieldKind.Enum
        : type == typeof(bool) ? FieldKind.Boolean
        : type == typeof(DateTime) || type == typeof(DateTimeOffset) ? FieldKind.DateTime
        : type == typeof(int) || type == typeof(long) || type == typeof(short) ? FieldKind.Integer
        : type == typeof(decimal) || type == typeof(double) || type == typeof(float) ? FieldKind.Number
        : typeof(IEnumerable<string>).IsAssignableFrom(type) ? FieldKind.StringList
        : FieldKind.Other;

    private static string Json(object? value) => JsonSerializer.Serialize(value);

    /// <summary>
    /// A value that passes validation, so that the edge values of the other fields reach the handler and the database.
    /// Names and slugs are fresh each time so that creates do not collide.
    /// </summary>
    private static Func<string> ValidValue(PropertyInfo property, string name, Type type, FieldKind kind) => kind switch
    {
        FieldKind.String when property.GetCustomAttribute<EmailAddressAttribute>() is not null => () => Json($"corpus-{Interlocked.Increment(ref counter)}@example.com"),
        FieldKind.String when property.GetCustomAttribute<UrlAttribute>() is not null => () => Json($"https://corpus.invalid/hook/{Interlocked.Increment(ref counter)}"),
        // Roles and permissions must name existing ones; these exist in every group.
        FieldKind.String when name == "role" => () => Json("analyst"),
        FieldKind.StringList when name == "permissions" => () => Json(new[] { "brands.read" }),
        // A segment rule is a JSON tree; any well-formed one will do.
        _ when name == "rule" => () => "{\"identifier\":\"phone\"}",
        // A journey graph: the smallest valid one (an API trigger straight to an exit).
        _ when name == "graph" => () => "{\"trigger\":{\"type\":\"api\"},\"start\":\"end\",\"nodes\":[{\"id\":\"end\",\"type\":\"exit\"}]}",
        // A batch of earn postings: one that names a member id (the batch answers 200, rejecting it if no such member).
        _ when name == "postings" => () => "[{\"memberId\":1,\"points\":1,\"sourceKey\":\"corpus\"}]",
        // A pattern-constrained string gets the first candidate its pattern accepts (custom field keys, entity names...).
        FieldKind.String when property.GetCustomAttribute<RegularExpressionAttribute>() is { } pattern => () =>
        {
            var n = Interlocked.Increment(ref counter);
            string[] candidates = [$"corpus-{n}", $"corpus_{n}", "profile", "trim", "sms", "marketing", "CN", "CNY"];
            return Json(candidates.FirstOrDefault(c => System.Text.RegularExpressions.Regex.IsMatch(c, pattern.Pattern)) ?? $"corpus-{n}");
        },
        FieldKind.String => () => Json($"corpus-{Interlocked.Increment(ref counter)}"),
        FieldKind.Enum => () => Json(JsonNamingPolicy.SnakeCaseLower.ConvertName(Enum.GetNames(type)[0])),
        FieldKind.Boolean => () => "true",
        FieldKind.Integer or FieldKind.Number => () => "1",
        FieldKind.DateTime => () => Json(DateTime.UtcNow.AddDays(30)),
        FieldKind.StringList => () => "[]",
        _ => () => "{}",
    };

    private static readonly string HugeString = new('x', 100_000);

    private static IReadOnlyList<(string, string)> WrongTypeValues(FieldKind kind) => kind switch
    {
        FieldKind.String => [("number", "123"), ("boolean", "true"), ("object", "{}"), ("array", "[]"), ("1e400", "1e400")],
        FieldKind.Integer or FieldKind.Number =>
        [
            ("string", "\"abc\""), ("boolean", "true"), ("object", "{}"), ("array", "[1]"), ("1e400", "1e400"),
            ("-1e400", "-1e400"), ("2^63", "9223372036854775808"), ("-2^63-1", "-9223372036854775809"), ("fraction", "1.5"),
            ("\"NaN\"", "\"NaN\""), ("\"2^63\"", "\"9223372036854775808\""),
        ],
        FieldKind.Boolean => [("string", "\"yes\""), ("number", "1"), ("object", "{}")],
        FieldKind.Enum => [("number", "1"), ("unknown enum", "\"no-such-value\""), ("empty enum", "\"\""), ("object", "{}"), ("enum with NUL", "\"app\\u0000\"")],
        FieldKind.DateTime => [("not a date", "\"not-a-date\""), ("number", "123"), ("month 13", "\"2026-13-45T99:99:99Z\""), ("object", "{}")],
        FieldKind.StringList => [("string", "\"str\""), ("object", "{}"), ("numbers", "[1,2]"), ("nested", "[[]]"), ("number", "1e400")],
        _ => [("string", "\"str\""), ("number", "1")],
    };

    /// <summary>Values of the right JSON type that are still out of the ordinary.</summary>
    private static IReadOnlyList<(string, string)> EdgeValues(FieldKind kind) => kind switch
    {
        FieldKind.String =>
        [
            ("100k chars", Json(HugeString)), ("NUL char", "\"a\\u0000b\""), ("lone surrogate", "\"a\\ud800b\""), ("empty", "\"\""),
            ("blank", "\"   \""), ("unicode", Json("ünïcødé 日本語 🙂")), ("path traversal", Json("../../../../etc/passwd")),
            ("SQL", Json("' OR '1'='1")), ("control chars", "\"\\u0001\\u001f\\u007f\""),
        ],
        FieldKind.Integer or FieldKind.Number =>
            [("0", "0"), ("-1", "-1"), ("long.MaxValue", "9223372036854775807"), ("long.MinValue", "-9223372036854775808"), ("999999999", "999999999")],
        FieldKind.DateTime =>
        [
            ("year 1 at +14:00", "\"0001-01-01T00:00:00+14:00\""), ("year 9999 at -14:00", "\"9999-12-31T23:59:59-14:00\""),
            ("DateTime.MaxValue", "\"9999-12-31T23:59:59.9999999Z\""), ("DateTime.MinValue", "\"0001-01-01T00:00:00Z\""),
            ("past", "\"2000-01-01T00:00:00Z\""), ("no offset", "\"2099-01-01T00:00:00\""),
        ],
        FieldKind.StringList =>
        [
            ("10k items", Json(Enumerable.Range(0, 10_000).Select(i => $"item-{i}"))), ("null item", "[null]"), ("empty item", "[\"\"]"),
            ("NUL item", "[\"a\\u0000b\"]"), ("100k-char item", Json(new[] { HugeString })), ("lone surrogate item", "[\"\\udfff\"]"),
        ],
        _ => [],
    };
}

/// <summary>A request body, kept as bytes so that it can be sent as is: with or without a length, in any media type.</summary>
internal sealed record CorpusBody(byte[] Bytes, string? ContentType, bool Chunked = false)
{
    public static CorpusBody Json(string json, string contentType = "application/json") => new(Encoding.UTF8.GetBytes(json), contentType);

    public HttpContent ToContent()
    {
        HttpContent content = Chunked ? new StreamContent(new MemoryStream(Bytes)) : new ByteArrayContent(Bytes);
        // Without a length the client sends the body chunked, as a streaming client would.
        if (Chunked) content.Headers.ContentLength = null;
        if (ContentType is not null) content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
        return content;
    }
}

/// <summary>One request of the corpus; <see cref="Endpoint"/> is the endpoint it aims at (null for unknown paths).</summary>
internal sealed record CorpusRequest(string? Endpoint, string Variant, string Method, string Url, (string Name, string Value)[] Headers, CorpusBody? Body = null)
{
    public override string ToString()
    {
        var url = Url.Length > 160 ? Url[..150] + $"...({Url.Length} chars)" : Url;
        return $"{Method} {url} [{Variant}]";
    }
}

internal sealed record CorpusOutcome(CorpusRequest Request, int Status, string? Violation);

/// <summary>
/// Bad requests for every endpoint the app maps: wrong credentials, broken route values, query strings and bodies,
/// wrong methods and unknown paths. Each response must be below 500 and, if an error, RFC 9457 problem details.
/// </summary>
internal sealed class BadRequestCorpus(
    HttpClient client, IReadOnlyList<CorpusEndpoint> endpoints, Dictionary<string, string> existingIds,
    long adminKeyId, string analystKey, string revokedKey, string outletKey)
{
    private const string Demo = "demo";
    private static readonly (string, string)[] Anonymous = [];

    public IReadOnlyList<CorpusEndpoint> Endpoints => endpoints;

    private static (string, string)[] Bearer(string key, string? brand = Demo) =>
        brand is null ? [("Authorization", "Bearer " + key)] : [("Authorization", "Bearer " + key), ("Meridian-Brand", brand)];

    private static (string, string)[] Admin => Bearer(MeridianAppFixture.AdminKey);

    /// <summary>
    /// Discovers the endpoints, creates the keys the corpus sends (an analyst key, a revoked key, a key of another brand)
    /// and one row per collection — by POSTing a valid body to it — whose id serves as the existing id in its routes.
    /// </summary>
    public static async Task<BadRequestCorpus> PrepareAsync(MeridianAppFixture app)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.Timeout = TimeSpan.FromSeconds(30);
        var endpoints = CorpusEndpoint.Discover(app.Services);

        var keys = await app.Admin.GetAsync("/api/v1/keys?limit=200").ReadAsync<JsonElement>();
        var adminKeyId = keys.GetProperty("items").EnumerateArray().Single(k => k.GetProperty("name").GetString() == "bootstrap admin").GetProperty("id").GetInt64();
        var analystKey = await app.NewKeyAsync("analyst", brand: null);
        var outletKey = await app.NewKeyAsync("admin", brand: "demo-outlet");
        var revoked = await app.Admin.PostAsJsonAsync("/api/v1/keys", new { name = "to revoke", role = "analyst", brand = (string?)null })
            .ReadAsync<JsonElement>();
        await app.Admin.PostAsync($"/api/v1/keys/{revoked.GetProperty("apiKey").GetProperty("id").GetInt64()}/revoke", null).ReadAsync<JsonElement>();

        var admin = app.ClientWithKey(MeridianAppFixture.AdminKey, Demo);
        var existingIds = new Dictionary<string, string>();
        foreach (var create in endpoints.Where(e => e is { Method: "POST", HasBody: true } && e.Pattern.Parameters.Count == 0))
        {
            var collection = create.Path(_ => "");
            using var request = new HttpRequestMessage(HttpMethod.Post, collection) { Content = CorpusBody.Json(RequestShape.Of(create.BodyType!).Body()).ToContent() };
            request.Headers.Add("Idempotency-Key", $"corpus-{collection}");
            using var response = await admin.SendAsync(request);
            // A request that names rows which do not exist yet (a message to send with template 1) is refused: nothing to address.
            if (response.StatusCode == System.Net.HttpStatusCode.UnprocessableEntity) continue;
            // A body the corpus can only shape, not fill with real references (a ticket needs an existing customer), is refused
            // with a 400 naming the field; that collection's routes are then tried with id 1.
            if (response.StatusCode == HttpStatusCode.BadRequest && (await response.Content.ReadAsStringAsync()).Contains("\"profileId\"")) continue;
            // Endpoints for a customer's or a back end's OpenID Connect token (self-service, identity proofs) do not take staff keys.
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && (collection.Contains("/me/") || collection.Contains("/login/identity-proofs"))) continue;
            var created = await Task.FromResult(response).ReadAsync<JsonElement>();
            // An action that creates nothing (an estimate) answers without an id, and has no rows to address.
            if (FirstId(created) is { } id) existingIds[collection] = id;
        }
        return new BadRequestCorpus(client, endpoints, existingIds, adminKeyId, analystKey, revoked.GetProperty("key").GetString()!, outletKey);
    }

    /// <summary>The id of a created row: the first <c>id</c> member, breadth first (responses wrap it as <c>{source: {id}}</c>).</summary>
    private static string? FirstId(JsonElement element)
    {
        var queue = new Queue<JsonElement>([element]);
        while (queue.TryDequeue(out var current))
        {
            if (current.ValueKind != JsonValueKind.Object) continue;
            foreach (var member in current.EnumerateObject())
            {
                if (member.Name == "id" && member.Value.ValueKind == JsonValueKind.Number) return member.Value.GetRawText();
                queue.Enqueue(member.Value);
            }
        }
        return null;
    }

    /// <summary>A value for a route parameter that names something that exists.</summary>
    private string Existing(CorpusEndpoint endpoint, RoutePatternParameterPart parameter)
    {
        if (parameter.Name == "id")
        {
            // The collection is the literal path before the id: /api/v1/sources for /api/v1/sources/{id}/rotate-write-key.
            var segments = endpoint.Pattern.PathSegments.TakeWhile(s => !s.Parts.Contains(parameter));
            var collection = "/" + string.Join('/', segments.Select(s => string.Concat(s.Parts.OfType<RoutePatternLiteralPart>().Select(l => l.Content))));
            return existingIds.TryGetValue(collection, out var id) ? id : "1";
        }
        return parameter.Name switch
        {
            "documentName" => "v1",
            "slug" => "validation",
            _ when parameter.IsOptional => "",
            _ => "x",
        };
    }

    private string ExistingPath(CorpusEndpoint endpoint) => endpoint.Path(p => Existing(endpoint, p));

    /// <summary>
    /// Route values for every parameter. <c>%00</c> is not among them: Kestrel refuses a path with a NUL (400) before the
    /// app runs, and the test host cannot even build such a request; NUL is sent in query strings and bodies instead.
    /// </summary>
    private static readonly string[] RouteValues =
    [
        "999999999", "abc", "-1", "0", "9999999999999999999999", "9223372036854775808", "1.5", "1e3", "%20",
        new('a', 5000), Uri.EscapeDataString("ünïcødé-日本-🙂"), "%FF%FE", "%2500",
    ];

    private static readonly string[] QueryStrings =
    [
        "?limit=abc", "?limit=-5", "?limit=0", "?limit=100000", "?limit=99999999999", "?limit=1.5", "?limit=", "?limit=%00",
        "?limit=1&limit=2", "?cursor=xyz", "?cursor=-1", "?cursor=", "?cursor=%00", "?cursor=99999999999999999999",
        "?cursor=9223372036854775807", "?cursor=9999999999999999999", "?cursor=1&cursor=2", "?limit=200&cursor=0",
        "?entityType=" + new string('e', 10_000), "?action=%00&entityId=%FF", "?no-such-parameter=1", "?%=%",
    ];

    /// <summary>Everything the corpus sends, endpoint by endpoint, then wrong methods and unknown paths.</summary>
    public IEnumerable<CorpusRequest> Requests()
    {
        foreach (var endpoint in endpoints)
        {
            var body = endpoint.HasBody ? CorpusBody.Json(RequestShape.Of(endpoint.BodyType!).Body()) : null;
            foreach (var request in Callers(endpoint, body)) yield return request;
            foreach (var request in BrokenRouteValues(endpoint, body)) yield return request;
            if (endpoint.Method == "GET")
                foreach (var query in QueryStrings)
                    yield return new(endpoint.Key, "query " + query, "GET", ExistingPath(endpoint) + query, Admin);
            foreach (var request in endpoint.HasBody ? BrokenBodies(endpoint) : UnwantedBodies(endpoint)) yield return request;
        }
        foreach (var request in WrongMethods()) yield return request;
        foreach (var request in UnknownPaths()) yield return request;
    }

    private IEnumerable<CorpusRequest> Callers(CorpusEndpoint endpoint, CorpusBody? body)
    {
        var path = ExistingPath(endpoint);
        (string Variant, (string, string)[] Headers)[] callers =
        [
            ("no Authorization", Anonymous),
            ("no Authorization, brand demo", [("Meridian-Brand", Demo)]),
            ("unknown key", Bearer("mdn_sk_NoSuchKey0000000000000000000000")),
            ("revoked key", Bearer(revokedKey)),
            ("analyst key", Bearer(analystKey)),
            ("analyst key, no brand", Bearer(analystKey, brand: null)),
            ("key of brand demo-outlet naming demo", Bearer(outletKey)),
            ("key of brand demo-outlet", Bearer(outletKey, brand: null)),
            ("Basic scheme", [("Authorization", "Basic dXNlcjpwYXNz"), ("Meridian-Brand", Demo)]),
            ("Bearer without key", [("Authorization", "Bearer ")]),
            ("Bearer with 10k chars", Bearer(new string('k', 10_000))),
            ("Bearer with spaces in key", Bearer("mdn_sk_ a b c")),
            ("two Authorization headers", [("Authorization", "Bearer " + MeridianAppFixture.AdminKey), ("Authorization", "Bearer " + analystKey)]),
            ("admin, no brand", Bearer(MeridianAppFixture.AdminKey, brand: null)),
            ("admin, unknown brand", Bearer(MeridianAppFixture.AdminKey, "no-such-brand")),
            ("admin, brand 999999999", Bearer(MeridianAppFixture.AdminKey, "999999999")),
            ("admin, brand 2^63", Bearer(MeridianAppFixture.AdminKey, "9223372036854775808")),
            ("admin, unicode brand", Bearer(MeridianAppFixture.AdminKey, "品牌-ü")),
            ("admin, blank brand", Bearer(MeridianAppFixture.AdminKey, "   ")),
            ("admin, two brands", [.. Admin, ("Meridian-Brand", "demo-outlet")]),
            ("admin, brand of 1000 chars", Bearer(MeridianAppFixture.AdminKey, new string('b', 1000))),
            ("Accept: text/html", [.. Admin, ("Accept", "text/html")]),
            ("Accept: application/xml", [.. Admin, ("Accept", "application/xml")]),
            ("no Authorization, Accept: text/html", [("Accept", "text/html")]),
            ("analyst key, Accept: text/html", [.. Bearer(analystKey), ("Accept", "text/html")]),
            ("admin, unknown brand, Accept: text/html", [.. Bearer(MeridianAppFixture.AdminKey, "no-such-brand"), ("Accept", "text/html")]),
            ("admin, brand demo", Admin),
        ];
        foreach (var (variant, headers) in callers)
            yield return new(endpoint.Key, variant, endpoint.Method, path, headers, body);
    }

    private IEnumerable<CorpusRequest> BrokenRouteValues(CorpusEndpoint endpoint, CorpusBody? body)
    {
        foreach (var parameter in endpoint.Pattern.Parameters)
            foreach (var value in RouteValues)
            {
                var path = endpoint.Path(p => p == parameter ? value : Existing(endpoint, p));
                if (RevokesTheAdminKey(endpoint.Method, path)) continue;
                yield return new(endpoint.Key, $"{parameter.Name}={(value.Length > 40 ? $"{value.Length} chars" : value)}", endpoint.Method, path, Admin, body);
            }
        foreach (var value in endpoint.Pattern.Parameters.Count > 0 ? new[] { "abc", "999999999" } : [])
        {
            var path = endpoint.Path(p => p == endpoint.Pattern.Parameters[0] ? value : Existing(endpoint, p));
            yield return new(endpoint.Key, $"{endpoint.Pattern.Parameters[0].Name}={value}, Accept: text/html", endpoint.Method, path, [.. Admin, ("Accept", "text/html")], body);
        }
    }

    /// <summary>Revoking the admin key would turn every later request into a 401: the corpus never sends that.</summary>
    private bool RevokesTheAdminKey(string method, string path) =>
        method == "POST" && path.StartsWith("/api/v1/keys/", StringComparison.Ordinal) && path.EndsWith("/revoke", StringComparison.Ordinal)
        && long.TryParse(Uri.UnescapeDataString(path["/api/v1/keys/".Length..^"/revoke".Length]), out var id) && id == adminKeyId;

    private IEnumerable<CorpusRequest> BrokenBodies(CorpusEndpoint endpoint)
    {
        var shape = RequestShape.Of(endpoint.BodyType!);
        var path = ExistingPath(endpoint);
        CorpusRequest Send(string variant, CorpusBody? body) => new(endpoint.Key, variant, endpoint.Method, path, Admin, body);
        string With(string field, string json) => shape.Body(new Dictionary<string, string?> { [field] = json });
        var firstString = shape.Fields.FirstOrDefault(f => f.Kind == FieldKind.String)?.Name ?? "corpusText";

        yield return Send("valid body", CorpusBody.Json(shape.Body()));
        yield return Send("every field filled", CorpusBody.Json(shape.Body(allFields: true)));
        yield return Send("no body", null);
        yield return Send("no body, JSON content type", CorpusBody.Json(""));
        foreach (var raw in new[] { "{", "}", "null", "[]", "\"str\"", "123", "true", "{}", "   ", "1e400", "9223372036854775808", "{}{}",
                     "{/* comment */}", "{\"a\":1,}", "{'single':'quotes'}", "\"\\ud800\"", "[" + string.Join(',', Enumerable.Repeat("{}", 10_000)) + "]" })
            yield return Send("body " + (raw.Length > 40 ? $"{raw[..20]}...({raw.Length} chars)" : raw), CorpusBody.Json(raw));
        yield return Send("trailing garbage", CorpusBody.Json(shape.Body() + "xyz"));
        var everyFieldNull = CorpusBody.Json(shape.Body(shape.Fields.ToDictionary(f => f.Name, _ => (string?)"null")));
        yield return Send("every field null", everyFieldNull);
        yield return Send("every field of the wrong type", CorpusBody.Json(shape.Body(shape.Fields.ToDictionary(f => f.Name, f => (string?)f.WrongType[0].Json))));
        yield return Send("unknown extra field", CorpusBody.Json(With("corpusExtra", "1")));
        yield return Send("unknown extra fields only", CorpusBody.Json("{\"corpusExtra\":1,\"another\":{\"deep\":[1,2]}}"));
        var valid = shape.Body();
        yield return Send("duplicate field", CorpusBody.Json((valid == "{}" ? "{" : valid[..^1] + ",") + $"\"{firstString}\":\"again\",\"{firstString}\":\"and again\"}}"));
        foreach (var field in shape.Fields)
        {
            foreach (var (what, value) in field.WrongType.Concat(field.Edge))
                yield return Send($"{field.Name}: {what}", CorpusBody.Json(With(field.Name, value)));
            yield return Send($"{field.Name}: null", CorpusBody.Json(With(field.Name, "null")));
            yield return Send($"{field.Name}: nested 10,000 levels", CorpusBody.Json(With(field.Name, new string('[', 10_000) + new string(']', 10_000))));
        }
        yield return Send("nested 10,000 levels", CorpusBody.Json(new string('[', 10_000) + new string(']', 10_000)));
        yield return Send("objects nested 10,000 levels", CorpusBody.Json(string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000)));

        // A browser or a proxy asks for HTML: an error is still problem details, never a failure to write one.
        foreach (var (variant, body) in new[]
                 {
                     ("body {", CorpusBody.Json("{")), ("every field null", everyFieldNull),
                     ("Content-Type: text/plain", CorpusBody.Json(shape.Body(), "text/plain")),
                     ("body over 1 MiB", new CorpusBody(new byte[HostingModule.MaxRequestBodyBytes + 1], "application/json")),
                 })
            yield return new(endpoint.Key, variant + ", Accept: text/html", endpoint.Method, path, [.. Admin, ("Accept", "text/html")], body);

        var oversized = With(firstString, JsonSerializer.Serialize(new string('a', (int)HostingModule.MaxRequestBodyBytes + 1000)));
        yield return Send("body over 1 MiB with Content-Length", CorpusBody.Json(oversized));
        yield return Send("body over 1 MiB, chunked", CorpusBody.Json(oversized) with { Chunked = true });
        yield return Send("body of exactly 1 MiB", CorpusBody.Json(With(firstString, JsonSerializer.Serialize(new string('a', (int)HostingModule.MaxRequestBodyBytes - 200)))));

        var json = shape.Body();
        foreach (var contentType in new[] { "text/plain", "application/xml", "application/x-www-form-urlencoded", "application/octet-stream",
                     "application/json; charset=utf-16", "application/json; charset=no-such-charset", "application/json; charset=",
                     "application/json; charset=utf-32", "application/merge-patch+json", "application/problem+json", ";;;", "json", "*/*",
                     "application/json; charset=utf-8; charset=utf-16" })
            yield return Send("Content-Type: " + contentType, CorpusBody.Json(json, contentType));
        yield return Send("application/xml body", new CorpusBody(Encoding.UTF8.GetBytes("<source><name>x</name></source>"), "application/xml"));
        yield return Send("multipart/form-data", new CorpusBody(Encoding.UTF8.GetBytes($"--b\r\nContent-Disposition: form-data; name=\"{firstString}\"\r\n\r\nx\r\n--b--\r\n"), "multipart/form-data; boundary=b"));
        yield return Send("multipart/form-data without boundary", new CorpusBody(Encoding.UTF8.GetBytes("x"), "multipart/form-data"));
        yield return Send("no Content-Type", new CorpusBody(Encoding.UTF8.GetBytes(json), null));
        yield return Send("UTF-16 body labelled utf-16", new CorpusBody(Encoding.Unicode.GetBytes(json), "application/json; charset=utf-16"));
        yield return Send("UTF-8 BOM", new CorpusBody([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(json)], "application/json"));
        var around = With(firstString, "\"#INVALID#\"").Split("#INVALID#");
        yield return Send("invalid UTF-8 in a string",
            new CorpusBody([.. Encoding.UTF8.GetBytes(around[0]), 0xFF, 0xFE, 0xC3, .. Encoding.UTF8.GetBytes(around[1])], "application/json"));
        yield return Send("invalid UTF-8 bytes", new CorpusBody([0xFF, 0xFE, 0xFD, 0x80, 0x81], "application/json"));
    }

    /// <summary>Bodies sent to endpoints that take none: ignored or refused, never a failure.</summary>
    private IEnumerable<CorpusRequest> UnwantedBodies(CorpusEndpoint endpoint)
    {
        var path = ExistingPath(endpoint);
        CorpusRequest Send(string variant, CorpusBody body) => new(endpoint.Key, variant, endpoint.Method, path, Admin, body);
        yield return Send("unwanted body {", CorpusBody.Json("{"));
        yield return Send("unwanted body as text/plain", CorpusBody.Json("hello", "text/plain"));
        yield return Send("unwanted invalid UTF-8", new CorpusBody([0xFF, 0xFE, 0xFD], "application/json"));
        yield return Send("unwanted body nested 10,000 levels", CorpusBody.Json(new string('[', 10_000) + new string(']', 10_000)));
        yield return Send("unwanted body over 1 MiB with Content-Length", new CorpusBody(new byte[HostingModule.MaxRequestBodyBytes + 1], "application/json"));
        yield return Send("unwanted body, charset=no-such-charset", CorpusBody.Json("{}", "application/json; charset=no-such-charset"));
    }

    private static readonly string[] Methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    private IEnumerable<CorpusRequest> WrongMethods()
    {
        foreach (var route in endpoints.Where(e => !e.AnyMethod).GroupBy(e => e.Template))
        {
            var allowed = route.Select(e => e.Method).ToHashSet();
            var path = ExistingPath(route.First());
            foreach (var method in Methods.Where(m => !allowed.Contains(m)))
            {
                if (RevokesTheAdminKey(method, path)) continue;
                yield return new(null, "wrong method, admin", method, path, Admin, CorpusBody.Json("{}"));
                yield return new(null, "wrong method, no Authorization", method, path, Anonymous);
                yield return new(null, "wrong method, Accept: text/html", method, path, [.. Admin, ("Accept", "text/html")]);
            }
        }
    }

    private IEnumerable<CorpusRequest> UnknownPaths()
    {
        string[] paths =
        [
            "/api/v1/no-such-thing", "/api/v2/sources", "/api/v1/sources/999999999/no-such-action", "/api/v1/keys/999999999/revoke/extra",
            "/api", "/api/v1", "/api/v1/", "/api/v1/sources/%2F", "/api/v1/sources%20", "/" + new string('p', 5000),
            "/.env", "/api/v1/SOURCES", "//api//v1//sources", "/api/v1/sources/../keys", "/" + Uri.EscapeDataString("日本"),
            "/problems/no-such-problem",
        ];
        foreach (var path in paths)
            foreach (var method in new[] { "GET", "POST" })
            {
                yield return new(null, "unknown path, admin", method, path, Admin);
                yield return new(null, "unknown path, no Authorization", method, path, Anonymous);
                yield return new(null, "unknown path, Accept: text/html", method, path, [("Accept", "text/html")]);
            }
    }

    public async Task<CorpusOutcome> SendAsync(CorpusRequest corpusRequest)
    {
        // An absolute address: a relative one that starts with '//' would name a host.
        using var request = new HttpRequestMessage(new HttpMethod(corpusRequest.Method), new Uri("http://localhost" + corpusRequest.Url));
        foreach (var (name, value) in corpusRequest.Headers) request.Headers.TryAddWithoutValidation(name, value);
        if (corpusRequest.Body is { } body) request.Content = body.ToContent();
        try
        {
            using var response = await client.SendAsync(request);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            var status = (int)response.StatusCode;
            var violation = Violation(status, response.Content.Headers.ContentType?.MediaType, bytes);
            return new(corpusRequest, status,
                violation is null ? null : $"{corpusRequest} → {status} {response.Content.Headers.ContentType}: {violation}; body: {Snippet(bytes)}");
        }
        catch (Exception ex)
        {
            // The test server surfaces an exception that escaped the app as an exception here: a 500 on a real server.
            return new(corpusRequest, 500, $"{corpusRequest} → the app threw {ex.GetType().Name}: {ex.Message.Split('\n')[0]}");
        }
    }

    private static string Snippet(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes).ReplaceLineEndings(" ");
        return text.Length > 300 ? text[..300] + "..." : text;
    }

    /// <summary>What is wrong with a response to a bad request, or null: below 500, and errors as problem details.</summary>
    private static string? Violation(int status, string? mediaType, byte[] body)
    {
        if (status >= 500) return "server error";
        if (status < 400) return null;
        if (mediaType != "application/problem+json") return $"content type is '{mediaType ?? "(none)"}', not application/problem+json";
        try
        {
            using var document = JsonDocument.Parse(body);
            var problem = document.RootElement;
            if (problem.ValueKind != JsonValueKind.Object) return "the body is not a JSON object";
            if (!problem.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                || !type.GetString()!.StartsWith(ProblemTypes.Prefix, StringComparison.Ordinal))
                return "'type' does not start with /problems/";
            if (!problem.TryGetProperty("status", out var member) || member.ValueKind != JsonValueKind.Number || member.GetInt32() != status)
                return "'status' differs from the HTTP status";
            return null;
        }
        catch (JsonException)
        {
            return "the body is not JSON";
        }
    }
}
