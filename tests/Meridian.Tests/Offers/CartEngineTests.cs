using Meridian.Offers.Cart;
using Meridian.Offers.Data;

namespace Meridian.Tests.Offers;

/// <summary>The cart rules as tables: one coupon alone (applies, discount, reason), then combinations (stacking, priority, explanations).</summary>
public sealed class CartEngineTests
{
    private static readonly DateTime Now = new(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);

    private static readonly Cart Basket = new("app",
    [
        new CartLine("SHIRT", "apparel", 2, 2500),   // 5,000
        new CartLine("WINE", "alcohol", 1, 3000),    // 3,000
        new CartLine("MUG", "home", 2, 1000),        // 2,000
    ], Shipping: 800);

    private static TemplateRules T(long id, CouponKind kind, long value = 0, long? cap = null, string? freeSku = null, long minSpend = 0,
        CouponConditions? conditions = null, StackingMode stacking = StackingMode.Exclusive, long[]? stackWith = null, int priority = 0,
        long? budgetLeft = null, TemplateStatus status = TemplateStatus.Active, string? name = null) =>
        new(id, name ?? $"T{id}", kind, value, cap, freeSku, minSpend, conditions ?? new CouponConditions(), stacking, (stackWith ?? []).ToHashSet(),
            priority, budgetLeft, status);

    private static Candidate C(long couponId, TemplateRules t, DateTime? from = null, DateTime? until = null) => new(couponId, $"CODE{couponId}", from, until, t);

    public static TheoryData<string, Candidate, long?, bool, long, string> Single => new()
    {
        { "amount off the whole cart", C(1, T(1, CouponKind.AmountOff, 2000)), null, true, 2000, "applies" },
        { "amount off never exceeds the cart", C(1, T(1, CouponKind.AmountOff, 50_000)), null, true, 10_000, "applies" },
        { "minimum spend met exactly", C(1, T(1, CouponKind.AmountOff, 1000, minSpend: 10_000)), null, true, 1000, "applies" },
        { "minimum spend not met", C(1, T(1, CouponKind.AmountOff, 1000, minSpend: 10_001)), null, false, 0, "min_spend_not_met" },
        { "minimum spend counts eligible lines only", C(1, T(1, CouponKind.AmountOff, 1000, minSpend: 8000,
            conditions: new CouponConditions { ExcludedCategories = ["alcohol"] })), null, false, 0, "min_spend_not_met" },
        { "percent off", C(1, T(1, CouponKind.PercentOff, 15)), null, true, 1500, "applies" },
        { "percent off with a cap", C(1, T(1, CouponKind.PercentOff, 15, cap: 600)), null, true, 600, "applies" },
        { "percent off of included products only", C(1, T(1, CouponKind.PercentOff, 10,
            conditions: new CouponConditions { IncludedProducts = ["SHIRT"] })), null, true, 500, "applies" },
        { "included categories or products", C(1, T(1, CouponKind.PercentOff, 10,
            conditions: new CouponConditions { IncludedProducts = ["MUG"], IncludedCategories = ["apparel"] })), null, true, 700, "applies" },
        { "an excluded product wins over its included category", C(1, T(1, CouponKind.PercentOff, 10,
            conditions: new CouponConditions { IncludedCategories = ["apparel"], ExcludedProducts = ["SHIRT"] })), null, false, 0, "no_eligible_items" },
        { "fixed price for the dearest eligible unit", C(1, T(1, CouponKind.FixedPrice, 990)), null, true, 2010, "applies" },
        { "fixed price above the unit price takes nothing", C(1, T(1, CouponKind.FixedPrice, 5000,
            conditions: new CouponConditions { IncludedProducts = ["MUG"] })), null, false, 0, "nothing_to_discount" },
        { "free item in the cart", C(1, T(1, CouponKind.FreeItem, freeSku: "MUG")), null, true, 1000, "applies" },
        { "free item not in the cart", C(1, T(1, CouponKind.FreeItem, freeSku: "HAT")), null, false, 0, "free_item_not_in_cart" },
        { "free shipping", C(1, T(1, CouponKind.FreeShipping)), null, true, 800, "applies" },
        { "channel not allowed", C(1, T(1, CouponKind.AmountOff, 100, conditions: new CouponConditions { Channels = ["store", "web"] })), null, false, 0, "channel_not_allowed" },
        { "channel allowed", C(1, T(1, CouponKind.AmountOff, 100, conditions: new CouponConditions { Channels = ["app"] })), null, true, 100, "applies" },
        { "tier required, customer has none", C(1, T(1, CouponKind.AmountOff, 100, conditions: new CouponConditions { TierIds = [7] })), null, false, 0, "tier_not_met" },
        { "tier required, customer has another", C(1, T(1, CouponKind.AmountOff, 100, conditions: new CouponConditions { TierIds = [7] })), 8, false, 0, "tier_not_met" },
        { "tier required, customer has it", C(1, T(1, CouponKind.AmountOff, 100, conditions: new CouponConditions { TierIds = [7, 8] })), 8, true, 100, "applies" },
        { "not yet valid", C(1, T(1, CouponKind.AmountOff, 100), from: Now.AddMinutes(1)), null, false, 0, "not_yet_valid" },
        { "expired at the instant", C(1, T(1, CouponKind.AmountOff, 100), until: Now), null, false, 0, "expired" },
        { "valid until just after now", C(1, T(1, CouponKind.AmountOff, 100), until: Now.AddTicks(10)), null, true, 100, "applies" },
        { "budget short of the discount", C(1, T(1, CouponKind.AmountOff, 2000, budgetLeft: 1999)), null, false, 0, "budget_exhausted" },
        { "budget just enough", C(1, T(1, CouponKind.AmountOff, 2000, budgetLeft: 2000)), null, true, 2000, "applies" },
        { "paused template", C(1, T(1, CouponKind.AmountOff, 100, status: TemplateStatus.Paused)), null, false, 0, "template_paused" },
    };

    [Theory]
    [MemberData(nameof(Single))]
    public void One_coupon_is_judged_with_its_discount_and_reason(string rule, Candidate coupon, long? tier, bool applies, long discount, string reason)
    {
        var verdict = CartEngine.Judge(coupon, Basket, tier, Now);
        Assert.True((applies, discount) == (verdict.Applies, verdict.Discount), $"{rule}: {string.Join("; ", verdict.Reasons)}");
        Assert.Contains(verdict.Reasons, r => r.Code == reason);
        Assert.All(verdict.Reasons, r => Assert.False(string.IsNullOrWhiteSpace(r.Message)));
    }

    [Fact]
    public void Every_reason_a_coupon_fails_is_listed_not_only_the_first()
    {
        var coupon = C(1, T(1, CouponKind.AmountOff, 100, minSpend: 1_000_000, conditions: new CouponConditions { Channels = ["store"] }), until: Now.AddDays(-1));
        var verdict = CartEngine.Judge(coupon, Basket, null, Now);
        Assert.Equal(["expired", "channel_not_allowed", "min_spend_not_met"], verdict.Reasons.Select(r => r.Code));
    }

    public static TheoryData<string, Candidate[], long[], long, (long Coupon, string Reason)[]> Combinations => new()
    {
        {
            "two stackable coupons beat an exclusive one that takes less than both",
            [C(1, T(1, CouponKind.AmountOff, 2500)), C(2, T(2, CouponKind.AmountOff, 2000, stacking: StackingMode.Any)), C(3, T(3, CouponKind.FreeShipping, stacking: StackingMode.Any))],
            [2, 3], 2800, [(1, "exclusive")]
        },
        {
            "an exclusive coupon that takes more than any combination is used alone",
            [C(1, T(1, CouponKind.AmountOff, 5000)), C(2, T(2, CouponKind.AmountOff, 2000, stacking: StackingMode.Any)), C(3, T(3, CouponKind.FreeShipping, stacking: StackingMode.Any))],
            [1], 5000, [(2, "does_not_stack"), (3, "does_not_stack")]
        },
        {
            "named stacking works when each names the other or accepts any",
            [C(1, T(1, CouponKind.AmountOff, 1000, stacking: StackingMode.Named, stackWith: [2])), C(2, T(2, CouponKind.FreeShipping, stacking: StackingMode.Any))],
            [1, 2], 1800, []
        },
        {
            "named stacking refuses a template it does not name",
            [C(1, T(1, CouponKind.AmountOff, 1000, stacking: StackingMode.Named, stackWith: [9])), C(2, T(2, CouponKind.FreeShipping, stacking: StackingMode.Any))],
            [1], 1000, [(2, "does_not_stack")]
        },
        {
            "a coupon that names another is refused by it when that one names someone else",
            [C(1, T(1, CouponKind.AmountOff, 1000, stacking: StackingMode.Named, stackWith: [2])), C(2, T(2, CouponKind.AmountOff, 900, stacking: StackingMode.Named, stackWith: [3]))],
            [1], 1000, [(2, "does_not_stack")]
        },
        {
            "priority decides the order: percent first, then the amount",
            [C(1, T(1, CouponKind.PercentOff, 10, stacking: StackingMode.Any, priority: 10)), C(2, T(2, CouponKind.AmountOff, 2000, stacking: StackingMode.Any))],
            [1, 2], 3000, []
        },
        {
            "priority decides the order: the amount first, then percent of what is left",
            [C(1, T(1, CouponKind.PercentOff, 10, stacking: StackingMode.Any)), C(2, T(2, CouponKind.AmountOff, 2000, stacking: StackingMode.Any, priority: 10))],
            [2, 1], 2800, []
        },
        {
            "of two coupons of one template the one expiring first is used",
            [C(1, T(1, CouponKind.AmountOff, 1000), until: Now.AddDays(9)), C(2, T(1, CouponKind.AmountOff, 1000), until: Now.AddDays(2))],
            [2], 1000, [(1, "same_template")]
        },
        {
            "a second free shipping adds nothing and is left out",
            [C(1, T(1, CouponKind.FreeShipping, stacking: StackingMode.Any)), C(2, T(2, CouponKind.FreeShipping, stacking: StackingMode.Any)), C(3, T(3, CouponKind.AmountOff, 100, stacking: StackingMode.Any))],
            [1, 3], 900, [(2, "adds_nothing")]
        },
        {
            "coupons that do not apply are never combined",
            [C(1, T(1, CouponKind.AmountOff, 1000, minSpend: 99_999, stacking: StackingMode.Any)), C(2, T(2, CouponKind.AmountOff, 500, stacking: StackingMode.Any))],
            [2], 500, []
        },
        {
            "discounts stop at the cart's value",
            [C(1, T(1, CouponKind.AmountOff, 8000, stacking: StackingMode.Any)), C(2, T(2, CouponKind.AmountOff, 8000, stacking: StackingMode.Any)), C(3, T(3, CouponKind.PercentOff, 50, stacking: StackingMode.Any))],
            [1, 2], 10_000, [(3, "adds_nothing")]
        },
    };

    [Theory]
    [MemberData(nameof(Combinations))]
    public void The_best_combination_is_chosen_and_each_coupon_left_out_says_why(string rule, Candidate[] coupons, long[] used, long total, (long Coupon, string Reason)[] leftOut)
    {
        var verdicts = coupons.Select(c => CartEngine.Judge(c, Basket, null, Now)).ToList();
        var (best, why, exhaustive) = CartEngine.Best(verdicts, Basket);
        Assert.True(exhaustive, rule);
        Assert.True(used.SequenceEqual(best.Coupons.Select(c => c.Coupon.CouponId)), $"{rule}: used {string.Join(",", best.Coupons.Select(c => c.Coupon.CouponId))}");
        Assert.Equal(total, best.Total);
        Assert.Equal(total, best.Coupons.Sum(c => c.Discount));
        foreach (var (coupon, reason) in leftOut) Assert.True(why.TryGetValue(coupon, out var r) && r.Code == reason, $"{rule}: coupon {coupon}: {(why.TryGetValue(coupon, out var x) ? x : null)}");
        Assert.All(verdicts.Where(v => v.Applies && !used.Contains(v.Coupon.CouponId)), v => Assert.True(why.ContainsKey(v.Coupon.CouponId), $"{rule}: {v.Coupon.CouponId} left out without a reason"));
    }

    [Fact]
    public void Fifty_coupons_are_searched_to_the_end_and_the_result_never_exceeds_the_cart()
    {
        var coupons = Enumerable.Range(1, 50).Select(i => C(i, T(i, i % 2 == 0 ? CouponKind.AmountOff : CouponKind.PercentOff, i % 2 == 0 ? 100 * i : i % 30 + 1,
            stacking: i % 7 == 0 ? StackingMode.Exclusive : StackingMode.Any, priority: i % 5))).ToList();
        var verdicts = coupons.Select(c => CartEngine.Judge(c, Basket, null, Now)).ToList();
        var (best, _, exhaustive) = CartEngine.Best(verdicts, Basket);
        Assert.True(exhaustive);
        Assert.InRange(best.Total, verdicts.Max(v => v.Discount), Basket.Subtotal + Basket.Shipping);
        // Every stackable coupon that still adds something is in: the exclusive ones each take less than all of them together.
        Assert.All(best.Coupons, c => Assert.NotEqual(StackingMode.Exclusive, c.Coupon.Template.Stacking));
        Assert.All(best.Coupons, c => Assert.True(c.Discount > 0));
    }

    [Fact]
    public void The_search_finds_the_same_best_total_as_trying_every_subset_on_random_coupons()
    {
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var count = random.Next(1, 9);
            var coupons = Enumerable.Range(1, count).Select(i =>
            {
                var kind = (CouponKind)random.Next(5);
                var stacking = (StackingMode)random.Next(3);
                var named = stacking == StackingMode.Named ? Enumerable.Range(1, count).Where(_ => random.Next(2) == 0).Select(x => (long)x).ToArray() : null;
                var value = kind switch { CouponKind.PercentOff => random.Next(1, 60), CouponKind.FixedPrice => random.Next(0, 3000), _ => random.Next(50, 6000) };
                var conditions = random.Next(3) == 0 ? new CouponConditions { ExcludedCategories = ["alcohol"] } : null;
                return C(i, T(i, kind, value, cap: kind == CouponKind.PercentOff && random.Next(2) == 0 ? random.Next(100, 2000) : null,
                    freeSku: new[] { "SHIRT", "MUG", "HAT" }[random.Next(3)], conditions: conditions, stacking: stacking, stackWith: named, priority: random.Next(3)));
            }).ToList();
            var verdicts = coupons.Select(c => CartEngine.Judge(c, Basket, null, Now)).ToList();
            var applicable = verdicts.Where(v => v.Applies).ToList();
            var brute = 0L;
            for (var mask = 1; mask < 1 << applicable.Count; mask++)
            {
                var subset = applicable.Where((_, i) => (mask & 1 << i) != 0).ToList();
                if (subset.Any(a => subset.Any(b => a != b && !a.Coupon.Template.StacksWith(b.Coupon.Template)))) continue;
                brute = Math.Max(brute, CartEngine.Together(CartEngine.InApplyOrder(subset), Basket).Total);
            }
            var (best, _, exhaustive) = CartEngine.Best(verdicts, Basket);
            Assert.True(exhaustive);
            Assert.True(brute == best.Total, $"seed {seed}: every subset's best {brute}, the search's {best.Total}");
            Assert.Equal(best.Total, CartEngine.Together(CartEngine.InApplyOrder(applicable.Where(v => best.Coupons.Any(c => c.Coupon.CouponId == v.Coupon.CouponId))), Basket).Total);
        }
    }
}
