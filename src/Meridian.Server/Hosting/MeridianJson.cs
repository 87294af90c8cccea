using System.Text.Json;
using System.Text.Json.Serialization;

namespace Meridian.Hosting;

/// <summary>One JSON shape for the API, the audit log and event payloads: camelCase, enums as snake_case strings.</summary>
public static class MeridianJson
{
    public static readonly JsonSerializerOptions Options = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        return options;
    }
}
