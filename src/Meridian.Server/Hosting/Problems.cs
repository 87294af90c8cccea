using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Meridian.Hosting;

/// <summary>
/// The stable problem <c>type</c> URIs of the API (RFC 9457). Clients branch on these, so they never change;
/// each resolves to a short description served by Meridian itself at <c>/problems/{slug}</c>.
/// </summary>
public static class ProblemTypes
{
    public const string Prefix = "/problems/";
    public const string Validation = Prefix + "validation";
    public const string MalformedRequest = Prefix + "malformed-request";
    public const string UnsupportedMediaType = Prefix + "unsupported-media-type";
    public const string PayloadTooLarge = Prefix + "payload-too-large";
    public const string Unauthorized = Prefix + "unauthorized";
    public const string Forbidden = Prefix + "forbidden";
    public const string NotFound = Prefix + "not-found";
    public const string MethodNotAllowed = Prefix + "method-not-allowed";
    public const string Conflict = Prefix + "conflict";
    public const string BusinessRule = Prefix + "business-rule";
    public const string BrandRequired = Prefix + "brand-required";
    public const string RateLimited = Prefix + "rate-limited";
    public const string IdempotencyKeyReused = Prefix + "idempotency-key-reused";
    public const string InsufficientPoints = Prefix + "insufficient-points";
    public const string NotReversible = Prefix + "not-reversible";
    public const string OutOfStock = Prefix + "out-of-stock";
    public const string CouponLimitReached = Prefix + "coupon-limit-reached";
    public const string CouponNotApplicable = Prefix + "coupon-not-applicable";
    public const string CouponAlreadyRedeemed = Prefix + "coupon-already-redeemed";
    public const string CouponNotEligible = Prefix + "coupon-not-eligible";
    public const string BudgetExhausted = Prefix + "budget-exhausted";
    public const string Unavailable = Prefix + "unavailable";
    public const string Internal = Prefix + "internal";

    public static readonly IReadOnlyDictionary<string, (string Title, string Description)> Catalogue =
        new Dictionary<string, (string, string)>
        {
            ["validation"] = ("One or more fields are invalid.", "The request was understood but some fields break the rules; `errors` maps each field to its messages."),
            ["malformed-request"] = ("The request could not be read.", "The body is not valid JSON, a value has the wrong type, an enum value is unknown, or a route or query value cannot be parsed."),
            ["unsupported-media-type"] = ("Unsupported media type.", "Send JSON bodies with `Content-Type: application/json`."),
            ["payload-too-large"] = ("The request body is too large.", "The body exceeds the size limit of the endpoint."),
            ["unauthorized"] = ("Authentication is required.", "Send a valid, unrevoked API key as `Authorization: Bearer <key>`."),
            ["forbidden"] = ("The key lacks a permission.", "The key's role does not grant the permission the endpoint needs, or the key is scoped to another brand."),
            ["not-found"] = ("Not found.", "Nothing with that identifier exists in the brands this key can see."),
            ["method-not-allowed"] = ("Method not allowed.", "The resource exists but does not accept this HTTP method."),
            ["conflict"] = ("Conflict.", "The change conflicts with existing data, e.g. a name that must be unique."),
            ["business-rule"] = ("A business rule prevents this change.", "The request is valid but the current state does not allow it."),
            ["brand-required"] = ("A brand must be named.", "A group-level key acting on brand data must name the brand with the `Meridian-Brand` header (slug or id)."),
            ["rate-limited"] = ("Too many requests.", "The key exceeded its request rate; retry after the number of seconds in `Retry-After`."),
            ["idempotency-key-reused"] = ("The Idempotency-Key was used for another request.", "A retry must repeat the first request exactly; a new request needs a new key."),
            ["insufficient-points"] = ("The balance does not cover the points.", "`balance` is what the member holds, `requested` what the request needs and `shortfall` the difference."),
            ["not-reversible"] = ("The entry cannot be reversed.", "Expiry and reversal entries are final; a spend is reversed once and in full; an earning may be reversed in parts, never beyond its points."),
            ["out-of-stock"] = ("The offer is out of stock.", "Every coupon the template may issue has been issued; none will be until staff add stock."),
            ["coupon-limit-reached"] = ("A coupon limit is reached.", "`limit` says which: `per_customer` (the customer holds as many coupons of the template as allowed) or `per_day` (the template issued its coupons for the day in the brand's time zone)."),
            ["coupon-not-applicable"] = ("The coupons do not apply to this order.", "`coupons` lists each code with the reasons (stable `code`s) it cannot be used, alone or together with the others."),
            ["coupon-already-redeemed"] = ("The coupon was already used.", "A coupon is redeemed once; a refund of its order (`/reverse`) may give it back."),
            ["coupon-not-eligible"] = ("The customer may not receive this coupon.", "The offer is only for customers in certain segments (`conditions.segmentIds`) and the customer is in none of them now; `reason` is `segment_not_met`."),
            ["budget-exhausted"] = ("The promotion's budget is spent.", "The discount would take the template's total discount beyond its budget."),
            ["unavailable"] = ("The service is overloaded or its database is unreachable.", "Nothing was changed by this request; retry after the number of seconds in `Retry-After`."),
            ["internal"] = ("An unexpected error occurred.", "Meridian failed; the `traceId` identifies the failure in the server logs."),
        };
}

/// <summary>A request that is valid in form but breaks a business rule (insufficient points, a revoked key...).</summary>
public sealed class BusinessRuleException(string message, int statusCode = StatusCodes.Status409Conflict, string type = ProblemTypes.BusinessRule)
    : Exception(message)
{
    public int StatusCode { get; } = statusCode;
    public string Type { get; } = type;
    /// <summary>Members added to the problem body (e.g. the shortfall of a spend), so a client need not parse the detail.</summary>
    public Dictionary<string, object?> Extensions { get; init; } = [];
}

/// <summary>Helpers that build the problem results handlers return for expected failures.</summary>
public static class Problems
{
    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(statusCode: 404, type: ProblemTypes.NotFound, title: "Not found.", detail: $"{what} was not found.");

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: 409, type: ProblemTypes.Conflict, title: "Conflict.", detail: detail);

    public static ValidationProblem Validation(string field, string message) => Validation(new Dictionary<string, string[]> { [field] = [message] });

    public static ValidationProblem Validation(IDictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, type: ProblemTypes.Validation, title: "One or more fields are invalid.");
}

/// <summary>
/// Turns every exception into problem details. Anything a client can cause (bad JSON, wrong types, oversized
/// bodies, wrong content type) becomes a 4xx with a clear message; only Meridian's own failures are 500.
/// </summary>
internal sealed class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        var problem = exception switch
        {
            BadHttpRequestException bad => FromBadRequest(bad),
            BusinessRuleException rule => FromRule(rule),
            Microsoft.EntityFrameworkCore.DbUpdateConcurrencyException => new ProblemDetails
            {
                Status = 409, Type = ProblemTypes.Conflict, Title = "Conflict.",
                Detail = "The data changed while this request was working on it (e.g. new events for the same customer); retry the request.",
            },
            JsonException json => Malformed(json),
            _ when IsUniqueViolation(exception) => new ProblemDetails
            {
                Status = 409, Type = ProblemTypes.Conflict, Title = "Conflict.",
                Detail = "Another request created the same thing at the same moment (a value that must be unique); look it up, or retry.",
            },
            _ when IsDatabaseUnavailable(exception) => new ProblemDetails
            {
                Status = 503, Type = ProblemTypes.Unavailable, Title = "The service is overloaded or its database is unreachable.",
                Detail = "The database did not answer in time (busy, out of connections or unreachable); nothing was changed. Retry shortly.",
            },
            _ => null,
        };
        if (problem?.Status == 503)
        {
            logger.LogWarning("Database unavailable for {Method} {Path}: {Reason}", http.Request.Method, http.Request.Path, exception.GetBaseException().Message);
            http.Response.Headers.RetryAfter = "1";
        }
        if (problem is null)
        {
            logger.LogError(exception, "Unhandled exception for {Method} {Path}", http.Request.Method, http.Request.Path);
            problem = new ProblemDetails { Status = 500, Type = ProblemTypes.Internal, Title = "An unexpected error occurred." };
        }
        http.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem, Exception = exception });
    }

    /// <summary>
    /// Two requests racing to create the same unique thing: the check before the insert passed for both and the
    /// database's unique index stopped the second. That is the client's conflict, not a server error.
    /// </summary>
    internal static bool IsUniqueViolation(Exception exception) =>
        (exception is Microsoft.EntityFrameworkCore.DbUpdateException { InnerException: { } inner } ? inner : exception) switch
        {
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 } => true,
            Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.UniqueViolation } => true,
            _ => false,
        };

    /// <summary>
    /// The database could not serve the request for now: no pooled connection came free in time, the server refused or
    /// dropped the connection, a deadlock or serialization failure, or SQLite stayed locked past its busy timeout. The
    /// request's transaction did not commit, so the client may retry it (503 with <c>Retry-After</c>, not a 500).
    /// </summary>
    internal static bool IsDatabaseUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case Npgsql.NpgsqlException npgsql when npgsql.IsTransient:
                case Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 5 or 6 }: // SQLITE_BUSY, SQLITE_LOCKED
                case TimeoutException:
                    return true;
            }
        }
        return false;
    }

    private static ProblemDetails FromRule(BusinessRuleException rule)
    {
        var title = rule.Type.StartsWith(ProblemTypes.Prefix, StringComparison.Ordinal) && ProblemTypes.Catalogue.TryGetValue(rule.Type[ProblemTypes.Prefix.Length..], out var known) ? known.Title : "A business rule prevents this change.";
        var problem = new ProblemDetails { Status = rule.StatusCode, Type = rule.Type, Title = title, Detail = rule.Message };
        foreach (var (name, value) in rule.Extensions) problem.Extensions[name] = value;
        return problem;
    }

    private static ProblemDetails FromBadRequest(BadHttpRequestException bad) => bad.StatusCode switch
    {
        StatusCodes.Status413PayloadTooLarge => new ProblemDetails { Status = 413, Type = ProblemTypes.PayloadTooLarge, Title = "The request body is too large.", Detail = bad.Message },
        StatusCodes.Status415UnsupportedMediaType => new ProblemDetails { Status = 415, Type = ProblemTypes.UnsupportedMediaType, Title = "Unsupported media type.", Detail = "Send the body as JSON with 'Content-Type: application/json'." },
        _ when bad.InnerException is JsonException json => Malformed(json),
        _ => new ProblemDetails { Status = 400, Type = ProblemTypes.MalformedRequest, Title = "The request could not be read.", Detail = bad.Message },
    };

    private static ProblemDetails Malformed(JsonException json)
    {
        var field = string.IsNullOrEmpty(json.Path) || json.Path == "$" ? "$" : json.Path.TrimStart('$', '.');
        // System.Text.Json's messages name the CLR type; the path and a plain reason serve the client better.
        var reason = json.Message.Contains("could not be converted", StringComparison.Ordinal)
            ? "The value has the wrong type or is not one of the allowed values."
            : json.Message.Split(" Path:", 2)[0];
        var problem = new ProblemDetails
        {
            Status = 400,
            Type = ProblemTypes.MalformedRequest,
            Title = "The request body is not valid JSON for this endpoint.",
            Detail = $"At '{json.Path ?? "$"}': {reason}",
        };
        problem.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [reason] };
        return problem;
    }
}
