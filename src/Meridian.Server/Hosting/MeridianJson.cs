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
        options.Converters.Add(new NoNulStringConverter());
        return options;
    }

    /// <summary>No text Meridian stores may hold U+0000: PostgreSQL refuses it, and no client means it.</summary>
    private sealed class NoNulStringConverter : JsonConverter<string>
    {
        public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var value = reader.GetString();
            return value is not null && value.Contains('\0', StringComparison.Ordinal)
                ? throw new JsonException("Text must not contain the NUL character (\\u0000).")
                : value;
        }

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
    }
}
