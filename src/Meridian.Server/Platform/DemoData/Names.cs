namespace Meridian.Platform.DemoData;

/// <summary>A name part in characters and in pinyin; the weight is how common it is, so that 王, 李 and 张 dominate as they do.</summary>
internal readonly record struct NamePart(string Hanzi, string Pinyin, int Weight);

internal sealed record City(string Hanzi, string Pinyin, int Weight);

internal sealed record Store(string Code, City City);

internal sealed record Category(string Code, string Key, string[] Items, int MinYuan, int MaxYuan);

/// <summary>Draws items in proportion to integer weights; integers only, so the draws are the same on every platform.</summary>
internal sealed class Weighted<T>
{
    private readonly T[] _items;
    private readonly int[] _cumulative;

    public Weighted(IEnumerable<(T Item, int Weight)> items)
    {
        var list = items.ToList();
        _items = [.. list.Select(i => i.Item)];
        _cumulative = new int[list.Count];
        var total = 0;
        for (var i = 0; i < list.Count; i++)
            _cumulative[i] = total += list[i].Weight;
    }

    public T Pick(Random rng)
    {
        var i = Array.BinarySearch(_cumulative, rng.Next(_cumulative[^1]) + 1);
        return _items[i >= 0 ? i : ~i];
    }
}

/// <summary>The lists the demo people are drawn from: common surnames, given-name characters, cities, stores, goods.</summary>
internal static class Names
{
    // Roughly the published frequencies of the most common surnames, per mille; two-character surnames are rare.
    public static readonly Weighted<NamePart> Surnames = new(new NamePart[]
    {
        new("王", "Wang", 72), new("李", "Li", 72), new("张", "Zhang", 68), new("刘", "Liu", 54), new("陈", "Chen", 45),
        new("杨", "Yang", 31), new("黄", "Huang", 24), new("赵", "Zhao", 22), new("吴", "Wu", 20), new("周", "Zhou", 19),
        new("徐", "Xu", 15), new("孙", "Sun", 15), new("马", "Ma", 14), new("朱", "Zhu", 13), new("胡", "Hu", 12),
        new("郭", "Guo", 11), new("何", "He", 10), new("林", "Lin", 10), new("高", "Gao", 10), new("罗", "Luo", 9),
        new("郑", "Zheng", 9), new("梁", "Liang", 8), new("谢", "Xie", 7), new("宋", "Song", 6), new("唐", "Tang", 6),
        new("许", "Xu", 6), new("韩", "Han", 6), new("冯", "Feng", 5), new("邓", "Deng", 5), new("曹", "Cao", 5),
        new("彭", "Peng", 5), new("曾", "Zeng", 5), new("肖", "Xiao", 5), new("田", "Tian", 4), new("董", "Dong", 4),
        new("袁", "Yuan", 4), new("潘", "Pan", 4), new("蒋", "Jiang", 4), new("蔡", "Cai", 4), new("余", "Yu", 4),
        new("欧阳", "Ouyang", 1), new("诸葛", "Zhuge", 1),
    }.Select(n => (n, n.Weight)));

    public static readonly NamePart[] MaleGiven =
    [
        new("伟", "Wei", 1), new("强", "Qiang", 1), new("磊", "Lei", 1), new("军", "Jun", 1), new("洋", "Yang", 1),
        new("勇", "Yong", 1), new("杰", "Jie", 1), new("涛", "Tao", 1), new("明", "Ming", 1), new("超", "Chao", 1),
        new("浩", "Hao", 1), new("宇", "Yu", 1), new("鹏", "Peng", 1), new("俊", "Jun", 1), new("博", "Bo", 1),
        new("晨", "Chen", 1), new("子", "Zi", 1), new("轩", "Xuan", 1), new("文", "Wen", 1), new("斌", "Bin", 1),
        new("建", "Jian", 1), new("华", "Hua", 1), new("国", "Guo", 1), new("志", "Zhi", 1), new("嘉", "Jia", 1),
        new("睿", "Rui", 1), new("泽", "Ze", 1), new("辰", "Chen", 1), new("宏", "Hong", 1), new("凯", "Kai", 1),
    ];

    public static readonly NamePart[] FemaleGiven =
    [
        new("芳", "Fang", 1), new("娜", "Na", 1), new("敏", "Min", 1), new("静", "Jing", 1), new("丽", "Li", 1),
        new("艳", "Yan", 1), new("婷", "Ting", 1), new("雪", "Xue", 1), new("慧", "Hui", 1), new("玲", "Ling", 1),
        new("颖", "Ying", 1), new("欣", "Xin", 1), new("怡", "Yi", 1), new("佳", "Jia", 1), new("萱", "Xuan", 1),
        new("琳", "Lin", 1), new("晶", "Jing", 1), new("梅", "Mei", 1), new("霞", "Xia", 1), new("思", "Si", 1),
        new("雨", "Yu", 1), new("涵", "Han", 1), new("梓", "Zi", 1), new("诗", "Shi", 1), new("月", "Yue", 1),
        new("秀", "Xiu", 1), new("红", "Hong", 1), new("燕", "Yan", 1), new("悦", "Yue", 1), new("彤", "Tong", 1),
    ];

    private static readonly City Shanghai = new("上海", "Shanghai", 14), Beijing = new("北京", "Beijing", 13),
        Guangzhou = new("广州", "Guangzhou", 10), Shenzhen = new("深圳", "Shenzhen", 10), Hangzhou = new("杭州", "Hangzhou", 8),
        Chengdu = new("成都", "Chengdu", 8), Chongqing = new("重庆", "Chongqing", 7), Wuhan = new("武汉", "Wuhan", 7),
        Nanjing = new("南京", "Nanjing", 6), Xian = new("西安", "Xi'an", 6), Suzhou = new("苏州", "Suzhou", 6);

    public static readonly Weighted<City> Cities = new(new[]
    {
        Shanghai, Beijing, Guangzhou, Shenzhen, Hangzhou, Chengdu, Chongqing, Wuhan, Nanjing, Xian, Suzhou,
        new("天津", "Tianjin", 5), new("长沙", "Changsha", 5), new("郑州", "Zhengzhou", 4), new("青岛", "Qingdao", 4),
        new("厦门", "Xiamen", 3), new("宁波", "Ningbo", 3), new("合肥", "Hefei", 3), new("昆明", "Kunming", 3), new("沈阳", "Shenyang", 3),
    }.Select(c => (c, c.Weight)));

    // The full-price brand has stores in the big cities; the outlet brand has a few outlet malls.
    public static readonly Store[] DemoStores =
    [
        new("SH01", Shanghai), new("SH02", Shanghai), new("BJ01", Beijing), new("BJ02", Beijing), new("GZ01", Guangzhou),
        new("SZ01", Shenzhen), new("HZ01", Hangzhou), new("CD01", Chengdu), new("CQ01", Chongqing), new("WH01", Wuhan),
        new("NJ01", Nanjing), new("XA01", Xian), new("SU01", Suzhou),
    ];

    public static readonly Store[] OutletStores = [new("OSH1", Shanghai), new("OBJ1", Beijing), new("OSZ1", Shenzhen), new("OCD1", Chengdu)];

    public static readonly Category[] Categories =
    [
        new("AP", "apparel", ["T恤", "衬衫", "卫衣", "毛衣", "牛仔裤", "连衣裙", "外套", "羽绒服"], 99, 1299),
        new("SH", "shoes", ["运动鞋", "帆布鞋", "乐福鞋", "短靴", "凉鞋"], 199, 1599),
        new("BG", "bags", ["托特包", "双肩包", "斜挎包", "钱包"], 199, 2999),
        new("AC", "accessories", ["围巾", "棒球帽", "腰带", "太阳镜", "袜子"], 39, 699),
        new("BT", "beauty", ["口红", "面霜", "精华液", "香水", "面膜"], 89, 1299),
        new("HM", "home", ["香薰蜡烛", "马克杯", "抱枕", "毛巾"], 39, 499),
    ];

    public static readonly string[] Colours = ["黑色", "白色", "藏青", "燕麦色", "卡其", "酒红", "雾蓝", "灰色"];

    public static readonly string[] ReviewBodies =
    [
        "质量很好，很满意", "尺码偏小，建议拍大一码", "物流很快", "颜色和图片一样", "性价比高", "一般般", "包装精美，送人很合适",
        "面料舒服", "有色差", "第二次回购了",
    ];

    public static readonly (string Model, string Os, string OsVersion)[] IosDevices =
        [("iPhone14,5", "iOS", "17.5"), ("iPhone15,2", "iOS", "18.1"), ("iPhone16,1", "iOS", "18.3"), ("iPad13,18", "iPadOS", "17.6")];

    public static readonly (string Model, string Os, string OsVersion)[] AndroidDevices =
        [("HUAWEI Mate 60", "HarmonyOS", "4.2"), ("Xiaomi 14", "Android", "14"), ("OPPO Find X7", "Android", "14"), ("vivo X100", "Android", "14"), ("HONOR Magic6", "Android", "14")];

    // Mainland mobile number blocks of the three carriers; a number is one of these plus eight digits.
    public static readonly string[] MobilePrefixes =
    [
        "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156", "157",
        "158", "159", "166", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "198", "199",
    ];
}
