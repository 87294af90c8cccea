using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;

namespace Meridian.Platform.DemoData;

/// <summary>How the simulation writes what happened: Segment-shaped events and the ground-truth lines.</summary>
internal sealed partial class DemoSimulation
{
    private void Identify(Visit visit, bool full)
    {
        var person = visit.Person;
        Emit(visit, "identify", null, "traits", w =>
        {
            w.WriteString("name", visit.Channel == DemoChannel.Web && _rng.Next(2) == 0 ? person.Pinyin : person.Hanzi);
            if (person.Phone is not null && (full || _rng.Next(100) < 60))
                w.WriteString("phone", person.See(Formats.PhoneId(person.Phone, OnlinePhoneFormat(visit.Channel))));
            if (person.Email is not null && _rng.Next(100) < (full ? 80 : 30))
                w.WriteString("email", person.See(Formats.EmailId(person.Email, _rng, visit.Channel == DemoChannel.Web ? 0.35 : 0.05)));
            if (full || _rng.Next(100) < 30)
            {
                w.WriteString("gender", person.Gender);
                w.WriteString("birthday", person.Birthday.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                w.WriteStartObject("address");
                w.WriteString("city", person.City.Hanzi);
                w.WriteString("country", "CN");
                w.WriteEndObject();
            }
        });
    }

    // Verified by SMS in the app and by WeChat in the mini program, so mostly clean; typed by hand on the web.
    private int OnlinePhoneFormat(DemoChannel channel) => channel switch
    {
        DemoChannel.App => _rng.Next(10) < 7 ? 0 : 5,
        DemoChannel.MiniProgram => _rng.Next(10) < 9 ? 0 : 5,
        _ => _rng.Next(10) switch { < 5 => 0, < 7 => 1, < 9 => 4, _ => 6 },
    };

    private void Track(Visit visit, string name, Action<Utf8JsonWriter> properties) => Emit(visit, "track", name, "properties", properties);

    private void Emit(Visit visit, string type, string? name, string bodyName, Action<Utf8JsonWriter> body)
    {
        var person = visit.Person;
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        var w = _json;
        w.WriteStartObject();
        w.WriteString("type", type);
        if (name is not null)
            w.WriteString(type == "track" ? "event" : "name", name);
        w.WriteString("messageId", MessageId(person));
        w.WriteString("timestamp", new DateTime(visit.Ticks, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        if (visit.User is { } user)
            w.WriteString("userId", person.See(user));
        if (visit.Anonymous is { } anonymous)
            w.WriteString("anonymousId", person.See(anonymous));
        WriteContext(w, visit, withTraits: type == "track" && visit.User is not null && _rng.Next(100) < 12);
        w.WriteStartObject(bodyName);
        body(w);
        w.WriteEndObject();
        w.WriteEndObject();
        w.Flush();
        _events[visit.Life.Brand.Index].Add(visit.Ticks, _buffer.WrittenSpan);
        person.BrandsSeen.Add(visit.Life.Brand.Index);
    }

    private void WriteContext(Utf8JsonWriter w, Visit visit, bool withTraits)
    {
        var person = visit.Person;
        var brand = visit.Life.Brand;
        w.WriteStartObject("context");
        w.WriteString("channel", ChannelName(visit.Channel));
        switch (visit.Channel)
        {
            case DemoChannel.App when visit.Device is { } device:
                w.WriteStartObject("app");
                w.WriteString("name", brand.AppName);
                w.WriteString("version", "6.4.1");
                w.WriteEndObject();
                w.WriteStartObject("device");
                w.WriteString("id", person.See(new Identifier("device_id", device.Id, device.Id, null)));
                w.WriteString("model", device.Model);
                w.WriteString("type", device.Ios ? "ios" : "android");
                w.WriteEndObject();
                w.WriteStartObject("os");
                w.WriteString("name", device.Os);
                w.WriteString("version", device.OsVersion);
                w.WriteEndObject();
                w.WriteStartObject("screen");
                w.WriteString("path", visit.Path);
                w.WriteEndObject();
                break;
            case DemoChannel.MiniProgram:
                w.WriteStartObject("app");
                w.WriteString("name", brand.AppName + " 小程序");
                w.WriteEndObject();
                w.WriteStartObject("wechat");
                w.WriteString("appId", brand.MiniProgramAppId);
                w.WriteString("openid", person.See(new Identifier("openid", visit.Life.OpenId!, visit.Life.OpenId!, brand.Slug)));
                // WeChat only hands out the unionid once the user has authorised it; until then only the openid is known.
                if (person.UnionId is not null && visit.User is not null)
                    w.WriteString("unionid", person.See(new Identifier("unionid", person.UnionId, person.UnionId, null)));
                w.WriteEndObject();
                break;
            case DemoChannel.Web:
                w.WriteStartObject("page");
                w.WriteString("url", $"https://{brand.WebHost}{visit.Path}");
                w.WriteString("path", visit.Path);
                w.WriteString("title", visit.Title);
                w.WriteEndObject();
                w.WriteString("userAgent", person.Index % 3 == 0
                    ? "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
                    : "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15");
                break;
            case DemoChannel.Pos when visit.Store is { } store:
                w.WriteStartObject("store");
                w.WriteString("code", store.Code);
                w.WriteString("city", store.City.Hanzi);
                w.WriteEndObject();
                break;
            case DemoChannel.CallCenter:
                w.WriteStartObject("agent");
                w.WriteString("id", visit.Agent);
                w.WriteEndObject();
                break;
        }
        w.WriteString("locale", "zh-CN");
        w.WriteString("timezone", "Asia/Shanghai");
        if (withTraits)
        {
            w.WriteStartObject("traits");
            if (person.Phone is not null && (person.Email is null || _rng.Next(2) == 0))
                w.WriteString("phone", person.See(Formats.PhoneId(person.Phone, OnlinePhoneFormat(visit.Channel))));
            else if (person.Email is not null)
                w.WriteString("email", person.See(Formats.EmailId(person.Email, _rng, 0.2)));
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    public static string ChannelName(DemoChannel channel) => channel switch
    {
        DemoChannel.App => "app",
        DemoChannel.MiniProgram => "mini_program",
        DemoChannel.Web => "web",
        DemoChannel.Pos => "pos",
        _ => "call_center",
    };

    /// <summary>
    /// A UUID-shaped id that is unique by construction (person index and event number through a bijective mixer) rather
    /// than by luck, and that changes with the seed: ingestion deduplicates on messageId, so a collision would lose an event.
    /// </summary>
    private string MessageId(Person person)
    {
        var unique = ((ulong)(uint)person.Index << 24) | (uint)person.EventCount++;
        var hi = Mix(unique ^ _seedMix);
        var lo = Mix(hi + 0x632BE59BD9B4E019UL);
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, hi);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], lo);
        return new Guid(bytes, bigEndian: true).ToString("D");
    }

    private void WriteTruth(Person person, HashSet<string> sharedDevices)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        var w = _json;
        w.WriteStartObject();
        w.WriteString("personId", person.Id);
        w.WriteString("householdId", person.HouseholdId);
        w.WriteString("name", person.Hanzi);
        w.WriteString("namePinyin", person.Pinyin);
        w.WriteString("gender", person.Gender);
        w.WriteString("birthday", person.Birthday.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        w.WriteString("city", person.City.Hanzi);
        w.WriteStartArray("brands");
        foreach (var brand in person.BrandsSeen)
            w.WriteStringValue(Brands[brand].Slug);
        w.WriteEndArray();
        w.WriteStartArray("identifiers");
        foreach (var id in person.Identifiers)
        {
            w.WriteStartObject();
            w.WriteString("type", id.Type);
            w.WriteString("raw", id.Raw);
            w.WriteString("normalized", id.Normalized);
            if (id.Brand is not null)
                w.WriteString("brand", id.Brand);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("sharedDevices");
        foreach (var id in person.Identifiers.Where(i => i.Type == "device_id" && sharedDevices.Contains(i.Raw)))
            w.WriteStringValue(id.Raw);
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        _truth.Write(_buffer.WrittenSpan);
        _truth.WriteByte((byte)'\n');
    }
}
