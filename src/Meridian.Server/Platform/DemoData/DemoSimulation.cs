using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Meridian.Platform.DemoData;

/// <summary>
/// Lives out a year of the demo group one household at a time: who the people are, which brands and channels they use,
/// and what each visit writes to the event streams and the store exports. Everything comes from one seeded
/// <see cref="Random"/> consumed in a fixed order, so the same seed gives the same files.
/// </summary>
internal sealed partial class DemoSimulation
{
    public static readonly DateTime Start = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    public static readonly DateTime End = Start.AddDays(365);

    // Asia/Shanghai has had no daylight saving since 1991: a fixed offset needs no time-zone database.
    private static readonly TimeSpan Shanghai = TimeSpan.FromHours(8);

    private static readonly Weighted<int> Days = new(Enumerable.Range(0, 365).Select(d => (d, DayWeight(DateOnly.FromDateTime(Start).AddDays(d)))));

    // Local hours of the day: lunch break and the evening on the sofa are when people shop.
    private static readonly Weighted<int> Hours = new(new[] { 2, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 12, 11, 9, 9, 10, 10, 11, 13, 15, 16, 13, 6 }.Select((w, h) => (h, w)));

    // Most people are seen once or twice, a few are seen all the time; the mix averages about six visits.
    private static readonly Weighted<(int Min, int Max)> Activity = new([((1, 2), 55), ((3, 8), 30), ((9, 20), 12), ((21, 80), 3)]);

    private static readonly Weighted<int> Ratings = new([(5, 55), (4, 25), (3, 10), (2, 5), (1, 5)]);

    private static readonly JsonWriterOptions JsonOptions = new()
    {
        // Write 张伟 and +86 as themselves rather than \uXXXX, so raw values in the files match the ground truth byte for byte.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly Random _rng;
    private readonly ulong _seedMix;
    private readonly TimeSortedLines[] _events;
    private readonly CsvFile _customers;
    private readonly CsvFile _orders;
    private readonly Stream _truth;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _json;
    private readonly Dictionary<string, int> _emailLocalParts = [];
    private readonly Dictionary<(string Store, int Day), int> _storeDayOrders = [];
    private readonly long[] _userIds = new long[2];
    private readonly long[] _members = new long[2];
    private readonly long[] _onlineOrders = new long[2];
    private long _callCenterContacts;
    private long _reviews;

    public DemoSimulation(int seed, TimeSortedLines[] events, CsvFile customers, CsvFile orders, Stream truth)
    {
        _rng = new Random(seed);
        _seedMix = Mix((uint)seed);
        _events = events;
        _customers = customers;
        _orders = orders;
        _truth = truth;
        _json = new Utf8JsonWriter(_buffer, JsonOptions);
        Brands =
        [
            new DemoBrand(0, "demo", "Demo", "U", "M1", "DM", "www.demo.example.com", "wx5d3a1f0c2b4e6d80", Names.DemoStores, Catalog("DM", 240, 100)),
            new DemoBrand(1, "demo-outlet", "Demo Outlet", "OU", "M2", "DO", "outlet.demo.example.com", "wx9e7c2a4b6d8f1035", Names.OutletStores, Catalog("DO", 160, 60)),
        ];
    }

    public DemoBrand[] Brands { get; }
    public int Households { get; private set; }
    public int SharedDevices { get; private set; }
    public int[] PeopleByBrand { get; } = new int[2];

    /// <summary>Generates one household (one to three people, at most <paramref name="room"/>) and returns how many people it had.</summary>
    public int AddHousehold(int firstIndex, int room)
    {
        var size = Math.Min(room, _rng.Next(100) switch { < 70 => 1, < 92 => 2, _ => 3 });
        var householdId = $"H{firstIndex + 1:D7}";
        var city = Names.Cities.Pick(_rng);
        var members = new List<Person>(size);
        for (var k = 0; k < size; k++)
            members.Add(NewPerson(firstIndex + k, householdId, city, k == 0 ? null : members[0], k));

        // Families share a tablet or an old phone: two people behind one device id is what trips up device-based matching.
        if (size > 1 && _rng.Next(100) < 30)
        {
            var shared = NewDevice();
            foreach (var member in members)
            {
                member.Devices.Insert(0, shared);
                member.MustUseDevice = shared;
                if (!member.Lives.Any(l => l.Channels.Contains(DemoChannel.App)))
                    member.Lives[0].Channels.Add(DemoChannel.App);
            }
        }

        foreach (var member in members)
            Live(member);

        var deviceUsers = members.SelectMany(m => m.Identifiers.Where(i => i.Type == "device_id").Select(i => i.Raw).Distinct())
            .CountBy(id => id).Where(c => c.Value > 1).Select(c => c.Key).ToHashSet();
        SharedDevices += deviceUsers.Count;
        foreach (var member in members)
            WriteTruth(member, deviceUsers);
        Households++;
        return size;
    }

    private static int DayWeight(DateOnly day)
    {
        var weight = day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday ? 13 : 10;
        return (day.Month, day.Day) switch
        {
            (11, 11) => 50,                                 // Singles' Day
            (10, 31) or (11, < 11) => 20,                   // its pre-sale
            (6, 18) => 30,                                  // 618
            (6, < 18) => 18,
            (12, 12) => 25,
            (5, 20) or (8, 19) => 15,                       // 520 and Qixi, the two Valentine's days
            (2, >= 15 and <= 21) => 5,                      // Spring Festival 2026 (17 Feb): shops and couriers rest
            (1, >= 20) or (2, <= 10) => 14,                 // New Year shopping before it
            _ => weight,
        };
    }

    private Product[] Catalog(string prefix, int size, int pricePercent)
    {
        var products = new Product[size];
        for (var i = 0; i < size; i++)
        {
            var category = Names.Categories[i % Names.Categories.Length];
            var yuan = category.MinYuan + _rng.Next(category.MaxYuan - category.MinYuan + 1);
            yuan = Math.Max(19, yuan * pricePercent / 100 / 10 * 10 + 9); // shelf prices end in 9
            var name = Names.Colours[_rng.Next(Names.Colours.Length)] + category.Items[_rng.Next(category.Items.Length)];
            products[i] = new Product($"{prefix}-{category.Code}-{10000 + i * 7}", name, category, yuan * 100L);
        }
        return products;
    }

    private Person NewPerson(int index, string householdId, City city, Person? head, int role)
    {
        // role 0 heads the household, 1 is a partner (other gender, similar age), 2 a grown-up child (family surname).
        var gender = role == 1 && head is not null ? (head.Gender == "male" ? "female" : "male") : (_rng.Next(100) < 58 ? "female" : "male");
        var surname = role == 2 && head is not null ? head.Surname : Names.Surnames.Pick(_rng);
        var chars = gender == "male" ? Names.MaleGiven : Names.FemaleGiven;
        var first = chars[_rng.Next(chars.Length)];
        var given = first;
        if (_rng.Next(100) >= 35)
        {
            var second = chars[_rng.Next(chars.Length)];
            if (second.Hanzi != first.Hanzi)
                given = new NamePart(first.Hanzi + second.Hanzi, first.Pinyin + second.Pinyin.ToLowerInvariant(), 1);
        }
        var year = role switch
        {
            1 when head is not null => Math.Clamp(head.Birthday.Year - 5 + _rng.Next(11), 1958, 2008),
            2 => 2000 + _rng.Next(11),
            _ => 1961 + _rng.Next(46),
        };
        var birthday = new DateOnly(year, 1, 1).AddDays(_rng.Next(365));

        // Phones and QQ-style e-mails are bijections of the person's index, so no two people ever share one by accident.
        var phone = _rng.Next(100) < (role == 2 ? 85 : 95) ? PhoneNumber(index) : null;
        var secondPhone = phone is not null && _rng.Next(100) < 5 ? PhoneNumber(index + 50_000_000) : null;
        var email = _rng.Next(100) < 50 ? EmailAddress(index, surname, given) : null;
        var unionId = _rng.Next(100) < 75 ? "o6_bm" + Formats.RandomToken(_rng, 23) : null;

        var person = new Person
        {
            Index = index, HouseholdId = householdId, Gender = gender, Surname = surname, Given = given, Birthday = birthday, City = city,
            FavouriteCategory = Names.Categories[_rng.Next(Names.Categories.Length)],
            Phone = phone, SecondPhone = secondPhone, Email = email, UnionId = unionId,
        };
        person.Devices.Add(NewDevice());
        if (_rng.Next(100) < 20)
            person.Devices.Add(NewDevice());

        var demo = _rng.Next(100) < 80;
        var outlet = !demo || _rng.Next(100) < 30;
        if (demo)
            person.Lives.Add(NewLife(person, Brands[0], app: 45, miniProgram: 60, web: 30, pos: 40));
        if (outlet)
            person.Lives.Add(NewLife(person, Brands[1], app: 25, miniProgram: 60, web: 15, pos: 60));
        return person;
    }

    private string PhoneNumber(long index) =>
        Names.MobilePrefixes[_rng.Next(Names.MobilePrefixes.Length)] + Formats.Scramble(index, 100_000_000, 37_119_413, Offset(1, 100_000_000)).ToString("D8", CultureInfo.InvariantCulture);

    private string EmailAddress(int index, NamePart surname, NamePart given)
    {
        var domain = _rng.Next(10) switch { < 5 => "example.com", < 8 => "example.net", _ => "example.org" };
        var sur = surname.Pinyin.ToLowerInvariant();
        var giv = given.Pinyin.ToLowerInvariant();
        var local = _rng.Next(10) switch
        {
            < 3 => (100_000_000 + Formats.Scramble(index, 100_000_000, 61_234_567, Offset(2, 100_000_000))).ToString(CultureInfo.InvariantCulture), // QQ mail
            < 6 => $"{sur}.{giv}",
            < 8 => giv + sur,
            _ => sur + giv,
        };
        if (!char.IsAsciiDigit(local[0]))
        {
            // The second Zhang Wei gets zhang.wei2: a counter per name keeps addresses unique without remembering them all.
            var taken = _emailLocalParts.GetValueOrDefault(local);
            _emailLocalParts[local] = taken + 1;
            if (taken > 0)
                local += (taken + 1).ToString(CultureInfo.InvariantCulture);
        }
        return $"{local}@{domain}";
    }

    private Device NewDevice()
    {
        if (_rng.Next(100) < 45)
        {
            var (model, os, version) = Names.IosDevices[_rng.Next(Names.IosDevices.Length)];
            return new Device(Formats.RandomUuid(_rng, upper: true), true, model, os, version); // identifierForVendor
        }
        var android = Names.AndroidDevices[_rng.Next(Names.AndroidDevices.Length)];
        return new Device(Convert.ToHexStringLower(BitConverter.GetBytes(_rng.NextInt64())), false, android.Model, android.Os, android.OsVersion); // ANDROID_ID
    }

    private BrandLife NewLife(Person person, DemoBrand brand, int app, int miniProgram, int web, int pos)
    {
        var local = brand.Stores.Where(s => s.City == person.City).ToArray();
        var life = new BrandLife(brand) { HomeStore = local.Length > 0 ? local[_rng.Next(local.Length)] : brand.Stores[_rng.Next(brand.Stores.Length)] };
        if (_rng.Next(100) < app)
            life.Channels.Add(DemoChannel.App);
        if (person.UnionId is not null && _rng.Next(100) < miniProgram)
            life.Channels.Add(DemoChannel.MiniProgram);
        if (_rng.Next(100) < web)
            life.Channels.Add(DemoChannel.Web);
        if (_rng.Next(100) < pos)
            life.Channels.Add(DemoChannel.Pos);
        if (life.Channels.Count == 0)
            life.Channels.Add(_rng.Next(2) == 0 ? DemoChannel.Pos : DemoChannel.Web);
        if (_rng.Next(100) < 10)
            life.Channels.Add(DemoChannel.CallCenter);

        if (life.Channels.Any(c => c is DemoChannel.App or DemoChannel.MiniProgram or DemoChannel.Web) && _rng.Next(100) < 85)
        {
            life.UserId = brand.UserIdPrefix + Formats.Scramble(_userIds[brand.Index]++, 1_000_000_000, 738_219_491, Offset(3, 1_000_000_000)).ToString("D9", CultureInfo.InvariantCulture);
            life.SignsUpThisYear = _rng.Next(100) < 30;
        }
        if (life.Channels.Contains(DemoChannel.MiniProgram))
            life.OpenId = "o" + Formats.RandomToken(_rng, 27);
        // A store can only tie a till receipt to someone by member number or phone; without a phone, shoppers are members.
        if (life.Channels.Contains(DemoChannel.Pos) && (person.Phone is null || _rng.Next(100) < 85))
            life.MemberNo = brand.MemberPrefix + Formats.Scramble(_members[brand.Index]++, 1_000_000_000, 914_736_283, Offset(4, 1_000_000_000)).ToString("D9", CultureInfo.InvariantCulture);
        return life;
    }

    private void Live(Person person)
    {
        var (min, max) = Activity.Pick(_rng);
        var count = min + _rng.Next(max - min + 1);
        var plan = new List<(long Ticks, BrandLife Life, DemoChannel Channel)>(count);
        for (var i = 0; i < count; i++)
        {
            var life = person.Lives.Count == 1 || _rng.Next(3) > 0 ? person.Lives[0] : person.Lives[1];
            var channel = PickChannel(life);
            plan.Add((SessionStart(channel), life, channel));
        }
        if (person.MustUseDevice is not null && !plan.Any(p => p.Channel == DemoChannel.App))
        {
            var life = person.Lives.First(l => l.Channels.Contains(DemoChannel.App));
            plan[0] = (plan[0].Ticks, life, DemoChannel.App);
        }
        plan.Sort((a, b) => a.Ticks.CompareTo(b.Ticks));

        foreach (var (ticks, life, channel) in plan)
        {
            switch (channel)
            {
                case DemoChannel.Pos: StoreVisit(person, life, ticks); break;
                case DemoChannel.CallCenter: Call(person, life, ticks, null); break;
                default: OnlineVisit(person, life, channel, ticks); break;
            }
        }

        foreach (var life in person.Lives.Where(l => l.MemberNo is not null))
            WriteMember(person, life);
        foreach (var life in person.Lives)
            if (person.BrandsSeen.Contains(life.Brand.Index))
                PeopleByBrand[life.Brand.Index]++;
    }

    private DemoChannel PickChannel(BrandLife life)
    {
        var total = 0;
        foreach (var c in life.Channels)
            total += ChannelWeight(c);
        var roll = _rng.Next(total);
        foreach (var c in life.Channels)
            if ((roll -= ChannelWeight(c)) < 0)
                return c;
        return life.Channels[^1];

        static int ChannelWeight(DemoChannel c) => c switch { DemoChannel.App or DemoChannel.MiniProgram => 3, DemoChannel.CallCenter => 1, _ => 2 };
    }

    private long SessionStart(DemoChannel channel)
    {
        var day = Days.Pick(_rng);
        var hour = Hours.Pick(_rng);
        hour = channel switch
        {
            DemoChannel.Pos => 10 + hour % 12,        // stores open 10:00–22:00
            DemoChannel.CallCenter => 9 + hour % 12,  // the hotline answers 09:00–21:00
            _ => hour,
        };
        // The window is the UTC year; the first eight local hours of 1 January fall before it, so move them to the next day.
        if (day == 0 && hour < 8)
            day = 1;
        return Start.Ticks + day * TimeSpan.TicksPerDay + (hour - 8) * TimeSpan.TicksPerHour
            + _rng.Next(3600) * TimeSpan.TicksPerSecond + _rng.Next(1000) * TimeSpan.TicksPerMillisecond;
    }

    private sealed class Visit(Person person, BrandLife life, DemoChannel channel, long ticks)
    {
        public Person Person => person;
        public BrandLife Life => life;
        public DemoChannel Channel => channel;
        public long Ticks { get; set; } = ticks;
        public Device? Device { get; init; }
        public Identifier? Anonymous { get; init; }
        public Identifier? User { get; set; }
        public Store? Store { get; init; }
        public string? Agent { get; init; }
        public string Path { get; set; } = "/";
        public string Title { get; set; } = life.Brand.AppName;

        public Visit Later(long laterTicks) =>
            new(person, life, channel, laterTicks) { Device = Device, Anonymous = Anonymous, User = User, Store = Store, Agent = Agent };
    }

    private void Wait(Visit visit, int minSeconds, int maxSeconds) =>
        visit.Ticks += (minSeconds + _rng.Next(maxSeconds - minSeconds + 1)) * TimeSpan.TicksPerSecond + _rng.Next(1000) * TimeSpan.TicksPerMillisecond;

    private void OnlineVisit(Person person, BrandLife life, DemoChannel channel, long ticks)
    {
        var brand = life.Brand.Slug;
        Device? device = null;
        Identifier anonymous;
        switch (channel)
        {
            case DemoChannel.App:
                device = person.MustUseDevice ?? person.Devices[_rng.Next(person.Devices.Count)];
                person.MustUseDevice = null;
                // Segment's mobile SDKs make a new anonymousId per install and on every logout, so it is per person even on a shared device.
                if (!life.Installs.TryGetValue(device.Id, out var install))
                    life.Installs[device.Id] = install = Formats.RandomUuid(_rng, upper: device.Ios);
                anonymous = new Identifier("anonymous_id", install, install, brand);
                break;
            case DemoChannel.MiniProgram:
                anonymous = new Identifier("openid", life.OpenId!, life.OpenId!, brand);
                break;
            default:
                // A new browser or cleared cookies gives a new anonymousId now and then.
                if (life.Cookies.Count == 0 || (life.Cookies.Count < 4 && _rng.Next(100) < 15))
                    life.Cookies.Add(Formats.RandomUuid(_rng, upper: false));
                var cookie = life.Cookies[_rng.Next(life.Cookies.Count)];
                anonymous = new Identifier("anonymous_id", cookie, cookie, brand);
                break;
        }
        var visit = new Visit(person, life, channel, ticks) { Device = device, Anonymous = anonymous };

        if (life.UserId is not null && _rng.Next(100) < (channel == DemoChannel.MiniProgram ? 90 : 60))
            LogIn(visit);

        Look(visit, _rng.Next(3) == 0 ? "Category" : "Home", _rng.Next(3) == 0 ? $"/c/{person.FavouriteCategory.Key}" : "/");
        var viewed = new List<Product>();
        for (var n = 1 + _rng.Next(4); n > 0; n--)
        {
            Wait(visit, 5, 120);
            var product = PickProduct(person, life.Brand);
            viewed.Add(product);
            visit.Path = $"/p/{product.Sku}";
            visit.Title = product.Name;
            Track(visit, "Product Viewed", w => ProductProperties(w, product, null));
        }
        if (_rng.Next(100) >= 35)
            return;

        var cart = viewed.Distinct().Take(1 + (_rng.Next(100) < 30 ? 1 : 0)).Select(p => (Product: p, Quantity: _rng.Next(100) < 15 ? 2 : 1)).ToList();
        foreach (var (product, quantity) in cart)
        {
            Wait(visit, 5, 60);
            Track(visit, "Product Added", w => ProductProperties(w, product, quantity));
        }
        if (life.UserId is null || _rng.Next(100) >= 55)
            return;

        Wait(visit, 20, 300);
        if (visit.User is null)
            LogIn(visit); // checkout asks to log in: the identify that ties the anonymous browsing to the account
        CompleteOrder(visit, cart);
    }

    private void LogIn(Visit visit)
    {
        var life = visit.Life;
        visit.User = new Identifier("user_id", life.UserId!, life.UserId!, life.Brand.Slug);
        if (life.SignsUpThisYear && !life.SignedUp)
        {
            life.SignedUp = true;
            var method = visit.Channel switch { DemoChannel.MiniProgram => "wechat", DemoChannel.App => "sms", _ => _rng.Next(2) == 0 ? "email" : "sms" };
            Track(visit, "Signed Up", w => w.WriteString("method", method));
            Wait(visit, 1, 5);
            Identify(visit, full: true);
        }
        else if (life.LoggedInOn.Add(visit.Channel) || _rng.Next(100) < 20)
            Identify(visit, full: false);
        life.LoggedInOn.Add(visit.Channel);
        Wait(visit, 1, 10);
    }

    private void Look(Visit visit, string name, string path)
    {
        visit.Path = path;
        visit.Title = $"{visit.Life.Brand.AppName} – {name}";
        if (visit.Channel == DemoChannel.Web)
            Emit(visit, "page", name, "properties", w =>
            {
                w.WriteString("url", $"https://{visit.Life.Brand.WebHost}{path}");
                w.WriteString("path", path);
                w.WriteString("title", visit.Title);
            });
        else
            Emit(visit, "screen", name, "properties", w => w.WriteString("path", path));
    }

    private Product PickProduct(Person person, DemoBrand brand)
    {
        // Favourite category seven times in ten: gives segments something to find.
        var catalog = brand.Catalog;
        if (_rng.Next(10) < 7)
        {
            var categories = Names.Categories.Length;
            var offset = Array.IndexOf(Names.Categories, person.FavouriteCategory);
            return catalog[offset + categories * _rng.Next((catalog.Length - offset + categories - 1) / categories)];
        }
        return catalog[_rng.Next(catalog.Length)];
    }

    private static void ProductProperties(Utf8JsonWriter w, Product product, int? quantity)
    {
        w.WriteString("sku", product.Sku);
        w.WriteString("name", product.Name);
        w.WriteString("category", product.Category.Key);
        w.WriteNumber("price", product.PriceFen / 100m);
        w.WriteString("currency", "CNY");
        if (quantity is { } q)
            w.WriteNumber("quantity", q);
    }

    private void CompleteOrder(Visit visit, List<(Product Product, int Quantity)> cart)
    {
        var brand = visit.Life.Brand;
        var local = new DateTime(visit.Ticks, DateTimeKind.Utc) + Shanghai;
        var orderId = brand.OrderPrefix + local.ToString("yyyyMMdd", CultureInfo.InvariantCulture)
            + Formats.Scramble(_onlineOrders[brand.Index]++, 100_000_000, 48_271_093, Offset(5, 100_000_000)).ToString("D8", CultureInfo.InvariantCulture);
        var total = cart.Sum(i => i.Product.PriceFen * i.Quantity);
        var payment = visit.Channel switch
        {
            DemoChannel.MiniProgram => "wechat_pay",
            _ => _rng.Next(10) switch { < 5 => "wechat_pay", < 9 => "alipay", _ => "unionpay" },
        };
        Track(visit, "Order Completed", w =>
        {
            w.WriteString("order_id", orderId);
            w.WriteNumber("total", total / 100m);
            w.WriteString("currency", "CNY");
            w.WriteString("payment_method", payment);
            w.WriteStartArray("products");
            foreach (var (product, quantity) in cart)
            {
                w.WriteStartObject();
                w.WriteString("sku", product.Sku);
                w.WriteString("category", product.Category.Key);
                w.WriteNumber("price", product.PriceFen / 100m);
                w.WriteNumber("quantity", quantity);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
        var order = new Order(orderId, total, visit.Ticks);
        visit.Life.Orders.Add(order);

        if (_rng.Next(100) < 6)
        {
            var when = visit.Ticks + (2 + _rng.Next(19)) * TimeSpan.TicksPerDay + _rng.Next(36_000) * TimeSpan.TicksPerSecond;
            if (when < End.Ticks)
            {
                if (visit.Person.Phone is not null && _rng.Next(100) < 40)
                    Call(visit.Person, visit.Life, when, order);
                else
                    Refund(visit.Later(when), order);
            }
        }
        if (_rng.Next(100) < 18)
        {
            var when = visit.Ticks + (3 + _rng.Next(13)) * TimeSpan.TicksPerDay + _rng.Next(36_000) * TimeSpan.TicksPerSecond;
            var (product, _) = cart[_rng.Next(cart.Count)];
            if (when < End.Ticks)
            {
                var reviewId = "RV" + Formats.Scramble(_reviews++, 1_000_000_000, 271_828_183, Offset(6, 1_000_000_000)).ToString("D9", CultureInfo.InvariantCulture);
                var rating = Ratings.Pick(_rng);
                var body = Names.ReviewBodies[_rng.Next(Names.ReviewBodies.Length)];
                Track(visit.Later(when), "Review Posted", w =>
                {
                    w.WriteString("review_id", reviewId);
                    w.WriteString("order_id", orderId);
                    w.WriteString("sku", product.Sku);
                    w.WriteNumber("rating", rating);
                    w.WriteString("review_body", body);
                });
            }
        }
    }

    private void Refund(Visit visit, Order order)
    {
        order.Refunded = true;
        var reason = _rng.Next(3) switch { 0 => "size", 1 => "quality", _ => "changed_mind" };
        Track(visit, "Order Refunded", w =>
        {
            w.WriteString("order_id", order.Id);
            w.WriteNumber("total", order.TotalFen / 100m);
            w.WriteString("currency", "CNY");
            w.WriteString("reason", reason);
        });
    }

    /// <summary>A hotline call: the agent's system knows the caller by its own contact id and the number they read out.</summary>
    private void Call(Person person, BrandLife life, long ticks, Order? refund)
    {
        life.CallCenterId ??= "CC" + Formats.Scramble(_callCenterContacts++, 100_000_000, 16_807_001, Offset(7, 100_000_000)).ToString("D8", CultureInfo.InvariantCulture);
        var visit = new Visit(person, life, DemoChannel.CallCenter, ticks)
        {
            Anonymous = new Identifier("anonymous_id", life.CallCenterId, life.CallCenterId, life.Brand.Slug),
            Agent = $"A{1 + _rng.Next(60):D3}",
        };
        Emit(visit, "identify", null, "traits", w =>
        {
            w.WriteString("name", person.Hanzi);
            var phone = CurrentPhone(person);
            if (phone is not null)
                w.WriteString("phone", person.See(Formats.PhoneId(phone, _rng.Next(10) switch { < 4 => 4, < 7 => 6, _ => 0 })));
            else if (person.Email is not null)
                w.WriteString("email", person.See(Formats.EmailId(person.Email, _rng, 0.2)));
        });

        refund ??= _rng.Next(100) < 30 ? life.Orders.LastOrDefault(o => !o.Refunded && o.Ticks < ticks) : null;
        if (refund is not null)
        {
            Wait(visit, 60, 600);
            Refund(visit, refund);
        }
    }

    private void StoreVisit(Person person, BrandLife life, long ticks)
    {
        var store = _rng.Next(100) < 80 ? life.HomeStore : life.Brand.Stores[_rng.Next(life.Brand.Stores.Length)];
        life.FirstStoreVisit ??= ticks;
        var checkedIn = false;
        if (life.MemberNo is not null && _rng.Next(100) < 60)
        {
            var visit = new Visit(person, life, DemoChannel.Pos, ticks)
            {
                User = new Identifier("member_no", life.MemberNo, life.MemberNo, life.Brand.Slug),
                Store = store,
            };
            Track(visit, "Checked In", w =>
            {
                w.WriteString("store", store.Code);
                w.WriteString("method", "member_code");
            });
            checkedIn = true;
            ticks = visit.Ticks + (120 + _rng.Next(1800)) * TimeSpan.TicksPerSecond;
        }
        if (!checkedIn || _rng.Next(100) < 75)
            StoreOrder(person, life, store, ticks);
    }

    private void StoreOrder(Person person, BrandLife life, Store store, long ticks)
    {
        var brand = life.Brand;
        var local = new DateTime(ticks, DateTimeKind.Utc) + Shanghai;
        var key = (store.Code, (int)(local.Ticks / TimeSpan.TicksPerDay));
        var number = _storeDayOrders.GetValueOrDefault(key) + 1;
        _storeDayOrders[key] = number;
        var orderId = string.Create(CultureInfo.InvariantCulture, $"{store.Code}-{local:yyyyMMdd}-{number:D4}");

        var items = new List<(Product Product, int Quantity)>();
        for (var n = 1 + _rng.Next(100) / 60; n > 0; n--)
            items.Add((PickProduct(person, brand), _rng.Next(100) < 15 ? 2 : 1));
        var itemsJson = new StringBuilder("[");
        foreach (var (product, quantity) in items)
            itemsJson.Append(itemsJson.Length > 1 ? "," : "")
                .Append(CultureInfo.InvariantCulture, $$"""{"sku":"{{product.Sku}}","category":"{{product.Category.Key}}","price":{{product.PriceFen}},"quantity":{{quantity}}}""");
        itemsJson.Append(']');

        // Tills ask for the member code first; without one, the cashier types the shopper's phone for the e-receipt.
        var memberNo = life.MemberNo is not null && (person.Phone is null || _rng.Next(100) < 90) ? life.MemberNo : null;
        var phone = memberNo is null || _rng.Next(100) < 25 ? CurrentPhone(person) : null;
        _orders.Row(
            orderId, brand.Slug,
            memberNo is null ? "" : person.See(new Identifier("member_no", memberNo, memberNo, brand.Slug)),
            phone is null ? "" : person.See(Formats.PhoneId(phone, MessyPhoneFormat())),
            store.Code, items.Sum(i => i.Product.PriceFen * i.Quantity).ToString(CultureInfo.InvariantCulture), "CNY",
            local.ToString("yyyy-MM-dd'T'HH:mm:ss'+08:00'", CultureInfo.InvariantCulture), itemsJson.ToString());
        person.BrandsSeen.Add(brand.Index);
    }

    private void WriteMember(Person person, BrandLife life)
    {
        // Most members joined years ago; those whose first visit this year is also their sign-up joined that day.
        var joined = life.FirstStoreVisit is { } first && _rng.Next(100) < 25
            ? new DateTime(first, DateTimeKind.Utc) + Shanghai
            : new DateTime(2015, 1, 1).AddDays(_rng.Next(4015)).AddSeconds(36_000 + _rng.Next(43_200));
        var name = _rng.Next(100) switch { < 75 => person.Hanzi, < 90 => person.Pinyin.ToUpperInvariant(), _ => person.Pinyin };
        var phone = person.Phone is not null && _rng.Next(100) < 95 ? person.See(Formats.PhoneId(person.Phone, MessyPhoneFormat())) : "";
        var email = person.Email is not null && _rng.Next(100) < 60 ? person.See(Formats.EmailId(person.Email, _rng, 0.5)) : "";
        var birthday = _rng.Next(100) < 80 ? person.Birthday.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : "";
        _customers.Row(
            person.See(new Identifier("member_no", life.MemberNo!, life.MemberNo!, life.Brand.Slug)), life.Brand.Slug, name, phone, email, birthday,
            life.HomeStore.Code, joined.ToString("yyyy-MM-dd'T'HH:mm:ss'+08:00'", CultureInfo.InvariantCulture));
        person.BrandsSeen.Add(life.Brand.Index);
    }

    // Store staff type numbers every which way.
    private int MessyPhoneFormat() => _rng.Next(Formats.PhoneFormatCount);

    private string? CurrentPhone(Person person) => person.SecondPhone is not null && _rng.Next(100) < 30 ? person.SecondPhone : person.Phone;

    // Where a seed starts each id sequence, so that ids differ between seeds and do not start at 0000000.
    private long Offset(ulong salt, long modulus) => (long)(Mix(_seedMix + salt * 0x9E3779B97F4A7C15UL) % (ulong)modulus);

    // The SplitMix64 finaliser: a bijection on 64-bit integers that scatters neighbouring inputs.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
