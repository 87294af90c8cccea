using System.Text;

namespace Meridian.Platform.DemoData;

internal enum DemoChannel { App, MiniProgram, Web, Pos, CallCenter }

internal sealed record Product(string Sku, string Name, Category Category, long PriceFen);

/// <summary>One brand of the demo group: its id formats, its stores and its catalogue.</summary>
internal sealed record DemoBrand(int Index, string Slug, string AppName, string UserIdPrefix, string MemberPrefix, string OrderPrefix,
    string WebHost, string MiniProgramAppId, Store[] Stores, Product[] Catalog);

/// <summary>How one person showed up somewhere: <see cref="Raw"/> exactly as written in a file, <see cref="Normalized"/> as a resolver should read it.</summary>
internal sealed record Identifier(string Type, string Raw, string Normalized, string? Brand);

internal sealed record Device(string Id, bool Ios, string Model, string Os, string OsVersion);

internal sealed class Order(string id, long totalFen, long ticks)
{
    public string Id => id;
    public long TotalFen => totalFen;
    public long Ticks => ticks;
    public bool Refunded { get; set; }
}

internal sealed class Person
{
    private readonly HashSet<Identifier> _seen = [];

    public required int Index { get; init; }
    public required string HouseholdId { get; init; }
    public required string Gender { get; init; }
    public required NamePart Surname { get; init; }
    public required NamePart Given { get; init; }
    public required DateOnly Birthday { get; init; }
    public required City City { get; init; }
    public required Category FavouriteCategory { get; init; }
    public string? Phone { get; init; }
    public string? SecondPhone { get; init; }
    public string? Email { get; init; }
    public string? UnionId { get; init; }
    public List<Device> Devices { get; } = [];
    public List<BrandLife> Lives { get; } = [];

    /// <summary>A family device this person must be seen on at least once, so the shared device is really in the data.</summary>
    public Device? MustUseDevice { get; set; }

    public string Id => $"P{Index + 1:D7}";
    public string Hanzi => Surname.Hanzi + Given.Hanzi;
    public string Pinyin => $"{Surname.Pinyin} {Given.Pinyin}";
    public int EventCount { get; set; }
    public List<Identifier> Identifiers { get; } = [];
    public SortedSet<int> BrandsSeen { get; } = [];

    /// <summary>Records that <paramref name="id"/> was written for this person; the ground truth lists exactly these.</summary>
    public string See(Identifier id)
    {
        if (_seen.Add(id))
            Identifiers.Add(id);
        return id.Raw;
    }
}

/// <summary>A person's relationship with one brand: the channels they use and the ids that brand knows them by.</summary>
internal sealed class BrandLife(DemoBrand brand)
{
    public DemoBrand Brand => brand;
    public List<DemoChannel> Channels { get; } = [];
    public string? UserId { get; set; }
    public string? MemberNo { get; set; }
    public string? OpenId { get; set; }
    public string? CallCenterId { get; set; }
    public required Store HomeStore { get; init; }
    public bool SignsUpThisYear { get; set; }
    public bool SignedUp { get; set; }
    public HashSet<DemoChannel> LoggedInOn { get; } = [];
    public Dictionary<string, string> Installs { get; } = [];
    public List<string> Cookies { get; } = [];
    public List<Order> Orders { get; } = [];
    public long? FirstStoreVisit { get; set; }
}

/// <summary>The ways people and systems write the same phone number and e-mail address.</summary>
internal static class Formats
{
    public const int PhoneFormatCount = 7;

    /// <summary>An 11-digit mainland mobile number in one of the shapes seen in real exports.</summary>
    public static string Phone(string digits, int format) => format switch
    {
        0 => digits,                                                      // 13812345678
        1 => $"+86 {digits[..3]} {digits[3..7]} {digits[7..]}",           // +86 138 1234 5678
        2 => $"86-{digits[..3]}-{digits[3..7]}-{digits[7..]}",            // 86-138-1234-5678
        3 => $"(+86){digits}",                                            // (+86)13812345678
        4 => $"{digits[..3]}-{digits[3..7]}-{digits[7..]}",               // 138-1234-5678
        5 => $"+86{digits}",                                              // +8613812345678
        _ => $"{digits[..3]} {digits[3..7]} {digits[7..]}",               // 138 1234 5678
    };

    public static Identifier PhoneId(string digits, int format) => new("phone", Phone(digits, format), "+86" + digits, null);

    /// <summary>The address as a person typed it: case changed, spaces around it; <paramref name="noise"/> is the chance of any of it.</summary>
    public static Identifier EmailId(string canonical, Random rng, double noise)
    {
        var raw = canonical;
        if (rng.NextDouble() < noise)
        {
            raw = rng.Next(3) switch
            {
                0 => TitleCase(canonical),
                1 => canonical.ToUpperInvariant(),
                _ => canonical,
            };
            raw = rng.Next(3) switch
            {
                0 => " " + raw + " ",
                1 => raw + " ",
                _ => raw,
            };
        }
        return new Identifier("email", raw, raw.Trim().ToLowerInvariant(), null);
    }

    /// <summary><c>zhang.wei@example.com</c> → <c>Zhang.Wei@Example.COM</c>: the way address books and auto-capitalising keyboards mangle addresses.</summary>
    private static string TitleCase(string email)
    {
        var at = email.IndexOf('@');
        var tld = email.LastIndexOf('.');
        var sb = new StringBuilder(email.Length);
        for (var i = 0; i < email.Length; i++)
        {
            var c = email[i];
            var startsWord = i == 0 || !char.IsAsciiLetter(email[i - 1]);
            sb.Append(i > tld && tld > at ? char.ToUpperInvariant(c) : startsWord ? char.ToUpperInvariant(c) : c);
        }
        return sb.ToString();
    }

    /// <summary>A bijection on [0, modulus): distinct counters give distinct, random-looking numbers (ids that never collide).</summary>
    public static long Scramble(long counter, long modulus, long multiplier, long offset) => (counter * multiplier + offset) % modulus;

    public static string RandomToken(Random rng, int length)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return string.Create(length, rng, (span, r) =>
        {
            for (var i = 0; i < span.Length; i++)
                span[i] = alphabet[r.Next(alphabet.Length)];
        });
    }

    public static string RandomUuid(Random rng, bool upper)
    {
        Span<byte> bytes = stackalloc byte[16];
        rng.NextBytes(bytes);
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x40); // version 4 and RFC 4122 variant, like the SDKs' own ids
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        var text = new Guid(bytes).ToString("D");
        return upper ? text.ToUpperInvariant() : text;
    }
}
