using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using Meridian.Data;
using Meridian.Platform.Access;
using Meridian.Platform.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;

using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.OpenApi;
using OpenTelemetry.Metrics;
using Scalar.AspNetCore;

namespace Meridian.Hosting;

public sealed class RateLimitOptions
{
    /// <summary>Sustained requests per second per API key (anonymous callers: per address).</summary>
    public int PermitsPerSecond { get; set; } = 100;
    /// <summary>Requests a key may send at once above the sustained rate.</summary>
    public int Burst { get; set; } = 200;
    /// <summary>Tracking API requests per second per write key (each may carry a batch of messages).</summary>
    public int IngestPermitsPerSecond { get; set; } = 1000;
    public int IngestBurst { get; set; } = 2000;
}

/// <summary>What every module relies on: database, JSON and problem details, authentication, rate limits, OpenAPI, health.</summary>
public static class HostingModule
{
    /// <summary>Largest request body any endpoint accepts; bulk import streams through its own route.</summary>
    public const long MaxRequestBodyBytes = 1024 * 1024;

    public static WebApplicationBuilder AddMeridianHosting(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddMeridianDatabase();
        services.AddSingleton(TimeProvider.System);
        services.AddHttpContextAccessor();
        // As the ASP.NET Core templates do: framework chatter (a line per request, per SQL command) only from Warning up.
        builder.Logging.AddFilter("Microsoft.EntityFrameworkCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http.HttpClient", LogLevel.Warning);
        services.AddMemoryCache();
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxRequestBodyBytes);
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
            builder.WebHost.UseUrls("http://localhost:5080");

        services.Configure<Microsoft.AspNetCore.Http.Json.JsonOptions>(o =>
        {
            MeridianJson.Configure(o.SerializerOptions);
            // Strict requests: a misspelt field is an error, not silently ignored.
            o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        });
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddValidation();
        // Registered before AddProblemDetails so that it comes first: errors are problem+json whatever the Accept header says.
        services.AddSingleton<IProblemDetailsWriter, ProblemJsonWriter>();
        services.AddProblemDetails(o => o.CustomizeProblemDetails = ctx => StabiliseProblem(ctx.ProblemDetails, ctx.HttpContext));
        services.AddExceptionHandler<ProblemExceptionHandler>();

        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddSingleton<ApiKeyStore>();
        var authorization = services.AddAuthorizationBuilder();
        foreach (var permission in Permissions.All)
            authorization.AddPolicy(permission, p => p.RequireAuthenticatedUser().RequireClaim(MeridianClaims.Permission, permission));
        services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, ProblemAuthorizationResultHandler>();

        services.AddOptions<AdmissionOptions>().BindConfiguration("Meridian:Admission");
        services.AddSingleton<Admission>();
        services.AddOptions<RateLimitOptions>().BindConfiguration("Meridian:RateLimit");
        services.AddRateLimiter(o =>
        {
            // The tracking API has its own budget per write key (below): SDKs batch, and many devices share one address.
            o.AddPolicy(Ingestion.Tracking.TrackingEndpoints.RateLimitPolicy, http =>
            {
                var limits = http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<RateLimitOptions>>().Value;
                var partition = "ingest:" + (http.Request.Headers.Authorization.ToString() is { Length: > 0 } auth ? auth : http.Connection.RemoteIpAddress?.ToString());
                return RateLimitPartition.GetTokenBucketLimiter(partition, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.IngestBurst, TokensPerPeriod = limits.IngestPermitsPerSecond, ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0, AutoReplenishment = true,
                });
            });
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                if (http.Request.Path.StartsWithSegments("/v1")) return RateLimitPartition.GetNoLimiter("tracking");
                var limits = http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<RateLimitOptions>>().Value;
                var partition = http.Features.Get<ApiKeyIdentity>() is { } key ? $"key:{key.KeyId}" : $"ip:{http.Connection.RemoteIpAddress}";
                return RateLimitPartition.GetTokenBucketLimiter(partition, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.Burst,
                    TokensPerPeriod = limits.PermitsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            o.OnRejected = async (context, ct) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
                var http = context.HttpContext;
                http.Response.StatusCode = 429;
                http.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = 429, Type = ProblemTypes.RateLimited, Title = "Too many requests.",
                        Detail = $"This key sent more than its rate allows; retry after {retryAfter} s.",
                    },
                });
            };
        });

        services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo { Title = "Meridian API", Version = "v1", Description = "Customer middle platform: one customer, shared capabilities, orchestration." };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "An API key: `Authorization: Bearer mdn_sk_...`",
            };
            document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] }];
            return Task.CompletedTask;
        }));

        services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: ["ready"]);
        services.AddOpenTelemetry().WithMetrics(m => m
            .AddAspNetCoreInstrumentation()
            .AddRuntimeInstrumentation()
            .AddMeter("Meridian")
            .AddPrometheusExporter());
        return builder;
    }

    public static WebApplication UseMeridianHosting(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.Use(RejectUnreadableRequests);
        app.UseMiddleware<Admission>();
        app.UseAuthentication();
        app.UseMiddleware<TenantScopeMiddleware>();
        app.UseRateLimiter();
        app.UseAuthorization();

        app.MapOpenApi("/openapi/{documentName:regex(^v1$)}.json").DisableRateLimiting();
        app.MapScalarApiReference("/docs", o => o.WithTitle("Meridian API")).DisableRateLimiting();
        app.MapGet("/", () => TypedResults.Redirect("/docs")).ExcludeFromDescription();
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).DisableRateLimiting();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") }).DisableRateLimiting();
        app.MapPrometheusScrapingEndpoint("/metrics").DisableRateLimiting();
        app.MapGet("/problems/{slug}", (string slug) => ProblemTypes.Catalogue.TryGetValue(slug, out var p)
                ? Results.Text($"# {p.Title}\n\n{p.Description}\n", "text/markdown")
                : Results.NotFound())
            .ExcludeFromDescription().DisableRateLimiting();
        return app;
    }

    /// <summary>
    /// Turns away, before any endpoint runs, what no endpoint can read: a body over the limit (Kestrel enforces it too
    /// while streaming; this answers early from Content-Length), a charset other than UTF-8, and NUL characters in the
    /// query string (no text field may hold one, and PostgreSQL cannot store one). An endpoint that declares its own
    /// limit (the import upload, with <c>RequestSizeLimitAttribute</c>) is held to that one instead.
    /// </summary>
    private static async Task RejectUnreadableRequests(HttpContext http, RequestDelegate next)
    {
        var request = http.Request;
        var limit = http.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.IRequestSizeLimitMetadata>()?.MaxRequestBodySize ?? MaxRequestBodyBytes;
        if (request.ContentLength > limit)
            throw new BadHttpRequestException($"The body is {request.ContentLength} bytes; the limit is {limit} bytes.", StatusCodes.Status413PayloadTooLarge);
        if (request.ContentType is { } contentType && Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
            && media.Charset.HasValue && !media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !media.Charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
            throw new BadHttpRequestException($"The body's charset is '{media.Charset}'; send JSON as UTF-8.", StatusCodes.Status415UnsupportedMediaType);
        if (request.QueryString.Value?.Contains("%00", StringComparison.Ordinal) == true)
            throw new BadHttpRequestException("The query string contains a NUL character.", StatusCodes.Status400BadRequest);
        await next(http);
    }

    /// <summary>The validator reports C# property paths (<c>Items[0].Name</c>); clients sent JSON names (<c>items[0].name</c>).</summary>
    private static void CamelCaseFieldNames(IDictionary<string, string[]> errors)
    {
        foreach (var key in errors.Keys.ToList())
        {
            var camel = string.Join('.', key.Split('.').Select(part => part.Length > 0 ? char.ToLowerInvariant(part[0]) + part[1..] : part));
            if (camel == key) continue;
            errors[camel] = errors[key];
            errors.Remove(key);
        }
    }

    /// <summary>Gives the framework's own problems (404, 405, validation) Meridian's stable types, and adds the trace id.</summary>
    private static void StabiliseProblem(ProblemDetails problem, HttpContext http)
    {
        problem.Extensions["traceId"] = System.Diagnostics.Activity.Current?.Id ?? http.TraceIdentifier;
        if (problem is HttpValidationProblemDetails validationProblem) CamelCaseFieldNames(validationProblem.Errors);
        if (problem.Type?.StartsWith(ProblemTypes.Prefix, StringComparison.Ordinal) == true) return;
        problem.Type = problem.Status switch
        {
            400 when problem is HttpValidationProblemDetails => ProblemTypes.Validation,
            400 => ProblemTypes.MalformedRequest,
            401 => ProblemTypes.Unauthorized,
            403 => ProblemTypes.Forbidden,
            404 => ProblemTypes.NotFound,
            405 => ProblemTypes.MethodNotAllowed,
            409 => ProblemTypes.Conflict,
            413 => ProblemTypes.PayloadTooLarge,
            415 => ProblemTypes.UnsupportedMediaType,
            429 => ProblemTypes.RateLimited,
            _ => ProblemTypes.Internal,
        };
        if (problem.Status == 415) problem.Detail ??= "Send the body as JSON with 'Content-Type: application/json'.";
        if (problem.Status == 404 && problem.Detail is null) problem.Detail = $"No resource at {http.Request.Path}.";
        if (problem.Status == 405) problem.Detail ??= $"{http.Request.Method} is not allowed on {http.Request.Path}.";
    }
}

/// <summary>The validator reports C# property names (<c>Name</c>); clients sent JSON names (<c>name</c>).</summary>

/// <summary>
/// Writes every problem as <c>application/problem+json</c>. The framework's writer declines when the client's Accept
/// header has no JSON (a browser's <c>text/html</c>), which would leave an error without a body or turn it into a 500.
/// </summary>
internal sealed class ProblemJsonWriter(Microsoft.Extensions.Options.IOptions<ProblemDetailsOptions> options) : IProblemDetailsWriter
{
    private static readonly JsonSerializerOptions Json = new(MeridianJson.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public bool CanWrite(ProblemDetailsContext context) => true;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var http = context.HttpContext;
        var problem = context.ProblemDetails;
        problem.Status ??= http.Response.StatusCode;
        problem.Title ??= Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(problem.Status.Value);
        options.Value.CustomizeProblemDetails?.Invoke(context);
        return new ValueTask(http.Response.WriteAsJsonAsync(problem, problem.GetType(), Json, "application/problem+json"));
    }
}

internal sealed class DatabaseHealthCheck(IServiceScopeFactory scopes) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        try
        {
            return await db.Database.CanConnectAsync(ct) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("The database is unreachable.");
        }
        catch (Exception ex)
        {
            return HealthCheckResult.Unhealthy("The database is unreachable.", ex);
        }
    }
}
