using System.Text.Json;
using Meridian.Audiences;
using Meridian.Hosting;
using Meridian.Offers.Data;

namespace Meridian.Offers.Cart;

/// <summary>A cart line: <c>unitPrice</c> in minor units.</summary>
public sealed record CartLine(string Sku, string? Category, int Quantity, long UnitPrice)
{
    public long Amount => Quantity * UnitPrice;
}

public sealed record Cart(string Channel, IReadOnlyList<CartLine> Lines, long Shipping)
{
    public long Subtotal => Lines.Sum(l => l.Amount);
}

/// <summary>Why a coupon does or does not apply, as a stable code and a sentence.</summary>
public sealed record Reason(string Code, string Message);

/// <summary>A coupon the customer holds, with the template it was issued from.</summary>
public sealed record Candidate(long CouponId, string Code, DateTime? ValidFrom, DateTime? ValidUntil, TemplateRules Template);

/// <summary>A template's rules as the engine needs them (parsed once, not per cart).</summary>
public sealed record TemplateRules(long Id, string Name, CouponKind Kind, long Value, long? Cap, string? FreeSku, long MinSpend,
    CouponConditions Conditions, StackingMode Stacking, IReadOnlySet<long> StackWith, int Priority, long? BudgetLeft, TemplateStatus Status)
{
    internal static TemplateRules From(OfferTemplate t, CouponConditions conditions, IReadOnlySet<long> stackWith) => new(t.Id, t.Name, t.Kind, t.Value, t.Cap,
        t.FreeSku, t.MinSpend, conditions, t.Stacking, stackWith, t.Priority, t.Budget is { } b ? b - t.BudgetUsed : null, t.Status);

    internal static CouponConditions ParseConditions(string json) => JsonSerializer.Deserialize<CouponConditions>(json, MeridianJson.Options) ?? new CouponConditions();

    internal static IReadOnlySet<long> ParseStackWith(string json) => (JsonSerializer.Deserialize<List<long>>(json) ?? []).ToHashSet();

    public bool Admits(CartLine line)
    {
        var c = Conditions;
        if (c.ExcludedProducts.Contains(line.Sku) || (line.Category is { } ex && c.ExcludedCategories.Contains(ex))) return false;
        if (c.IncludedProducts.Count == 0 && c.IncludedCategories.Count == 0) return true;
        return c.IncludedProducts.Contains(line.Sku) || (line.Category is { } cat && c.IncludedCategories.Contains(cat));
    }

    /// <summary>Whether coupons of the two templates may be used together (each must accept the other).</summary>
    public bool StacksWith(TemplateRules other) =>
        Stacking != StackingMode.Exclusive && other.Stacking != StackingMode.Exclusive
        && (Stacking == StackingMode.Any || StackWith.Contains(other.Id))
        && (other.Stacking == StackingMode.Any || other.StackWith.Contains(Id));
}

/// <summary>One coupon on its own: whether it applies to the cart, what it would take off, and why.</summary>
public sealed record Verdict(Candidate Coupon, bool Applies, long Discount, IReadOnlyList<Reason> Reasons);

/// <summary>Coupons used together, in the order they apply, each with the discount it adds after those before it.</summary>
public sealed record Combination(IReadOnlyList<(Candidate Coupon, long Discount)> Coupons, long Total);

/// <summary>
/// Decides which coupons apply to a cart and which combination takes off the most. Pure: no database, no clock of its
/// own, so its rules are tested as tables. Coupons of a combination apply in priority order (higher first), each to
/// what the coupons before it left of its eligible lines (or of the shipping); minimum spend is judged on the eligible
/// lines at full price.
/// </summary>
public static class CartEngine
{
    /// <summary>Combinations examined at the most before the best found so far is returned (50 coupons have 2^50 subsets).</summary>
    public const int SearchBudget = 20_000;

    /// <summary>
    /// Judges one coupon. <paramref name="segments"/>: the customer's memberships of the segments its coupons' templates
    /// name (none given: the customer is in none of them).
    /// </summary>
    public static Verdict Judge(Candidate coupon, Cart cart, long? tierId, DateTime now, SegmentMemberships? segments = null)
    {
        var t = coupon.Template;
        var reasons = new List<Reason>();
        if (t.Status != TemplateStatus.Active) reasons.Add(new("template_paused", $"'{t.Name}' is paused."));
        if (coupon.ValidFrom is { } from && now < from) reasons.Add(new("not_yet_valid", $"Valid from {from:u}."));
        if (coupon.ValidUntil is { } until && now >= until) reasons.Add(new("expired", $"Expired at {until:u}."));
        if (t.Conditions.Channels.Count > 0 && !t.Conditions.Channels.Contains(cart.Channel))
            reasons.Add(new("channel_not_allowed", $"Only for {string.Join(", ", t.Conditions.Channels)}; this order is {cart.Channel}."));
        if (t.Conditions.TierIds.Count > 0 && (tierId is null || !t.Conditions.TierIds.Contains(tierId.Value)))
            reasons.Add(new("tier_not_met", tierId is null ? "Only for loyalty members of certain tiers; the customer has no tier." : "Only for other loyalty tiers than the customer's."));
        if (t.Conditions.SegmentIds.Count > 0 && !(segments ?? SegmentMemberships.None).AnyIn(t.Conditions.SegmentIds))
            reasons.Add(SegmentNotMet(t.Conditions, segments ?? SegmentMemberships.None));
        var lines = Eligible(t, cart);
        var eligible = 0L;
        foreach (var i in lines) eligible += cart.Lines[i].Amount;
        if (t.Kind is not CouponKind.FreeShipping and not CouponKind.FreeItem && eligible == 0)
            reasons.Add(new("no_eligible_items", "No item in the cart is one the coupon covers."));
        else if (eligible < t.MinSpend)
            reasons.Add(new("min_spend_not_met", $"Needs {t.MinSpend} of eligible items; the cart has {eligible}."));

        var amounts = Amounts(cart);
        var shipping = cart.Shipping;
        var discount = reasons.Count == 0 ? Apply(t, cart, lines, amounts, ref shipping, reasons) : 0;
        if (reasons.Count == 0 && discount == 0) reasons.Add(new("nothing_to_discount", "The coupon takes nothing off this cart."));
        if (reasons.Count == 0 && t.BudgetLeft is { } left && left < discount)
            reasons.Add(new("budget_exhausted", $"The promotion's budget has {left} left; this coupon would take {discount}."));
        if (reasons.Count == 0) reasons.Add(new("applies", $"Takes {discount} off."));
        var applies = reasons is [{ Code: "applies" }];
        return new Verdict(coupon, applies, applies ? discount : 0, reasons);
    }

    /// <summary>Why a customer outside every segment the conditions name may not use (or claim) the coupon.</summary>
    public static Reason SegmentNotMet(CouponConditions conditions, SegmentMemberships segments) => new("segment_not_met",
        $"Only for customers in {string.Join(" or ", conditions.SegmentIds.Select(id => $"'{segments.NameOf(id)}'"))}; the customer is in none of them.");

    /// <summary>
    /// Applies the template to what is left of each line (and of the shipping), lowering those amounts; returns the
    /// discount. Amount and percent discounts are shared over the eligible lines in proportion to what is left of them.
    /// </summary>
    private static long Apply(TemplateRules t, Cart cart, int[] eligible, long[] left, ref long shipping, List<Reason>? reasons)
    {
        var pool = 0L;
        foreach (var i in eligible) pool += left[i];
        switch (t.Kind)
        {
            case CouponKind.AmountOff:
                return Share(left, eligible, Math.Min(t.Value, pool));
            case CouponKind.PercentOff:
                var off = pool * t.Value / 100;
                return Share(left, eligible, t.Cap is { } cap ? Math.Min(cap, off) : off);
            case CouponKind.FixedPrice:
            {
                // One unit of the dearest eligible item for the fixed price.
                var best = eligible.Where(i => left[i] > 0).OrderByDescending(i => Math.Min(cart.Lines[i].UnitPrice, left[i])).ThenBy(i => i).FirstOrDefault(-1);
                if (best < 0) return 0;
                var d = Math.Max(0, Math.Min(cart.Lines[best].UnitPrice, left[best]) - t.Value);
                left[best] -= d;
                return d;
            }
            case CouponKind.FreeItem:
            {
                var line = Enumerable.Range(0, cart.Lines.Count).Where(i => cart.Lines[i].Sku == t.FreeSku && left[i] > 0).FirstOrDefault(-1);
                if (line < 0)
                {
                    reasons?.Add(new("free_item_not_in_cart", $"The free item {t.FreeSku} is not in the cart."));
                    return 0;
                }
                var d = Math.Min(cart.Lines[line].UnitPrice, left[line]);
                left[line] -= d;
                return d;
            }
            case CouponKind.FreeShipping:
            {
                var d = shipping;
                shipping = 0;
                return d;
            }
            default:
                throw new InvalidOperationException($"Unknown coupon kind {t.Kind}.");
        }
    }

    private static long[] Amounts(Cart cart)
    {
        var amounts = new long[cart.Lines.Count];
        for (var i = 0; i < amounts.Length; i++) amounts[i] = cart.Lines[i].Amount;
        return amounts;
    }

    /// <summary>The indexes of the cart's lines the template covers.</summary>
    private static int[] Eligible(TemplateRules t, Cart cart)
    {
        var lines = new List<int>(cart.Lines.Count);
        for (var i = 0; i < cart.Lines.Count; i++) if (t.Admits(cart.Lines[i])) lines.Add(i);
        return [.. lines];
    }

    /// <summary>Takes <paramref name="discount"/> off the lines in proportion to what is left of them (largest remainder).</summary>
    private static long Share(long[] left, int[] lines, long discount)
    {
        var pool = 0L;
        foreach (var i in lines) pool += left[i];
        if (discount <= 0 || pool == 0) return 0;
        var given = 0L;
        var parts = lines.Select(i => (Line: i, Part: (long)((Int128)discount * left[i] / pool), Remainder: (long)((Int128)discount * left[i] % pool))).ToList();
        foreach (var p in parts)
        {
            left[p.Line] -= p.Part;
            given += p.Part;
        }
        foreach (var p in parts.OrderByDescending(p => p.Remainder).ThenBy(p => p.Line))
        {
            if (given == discount) break;
            if (left[p.Line] == 0) continue;
            left[p.Line]--;
            given++;
        }
        return given;
    }

    /// <summary>The order coupons apply in: priority, then the larger discount on its own, then the older coupon.</summary>
    public static List<Verdict> InApplyOrder(IEnumerable<Verdict> verdicts) =>
        verdicts.OrderByDescending(v => v.Coupon.Template.Priority).ThenByDescending(v => v.Discount).ThenBy(v => v.Coupon.CouponId).ToList();

    /// <summary>The discounts of coupons applied together in <see cref="InApplyOrder"/>.</summary>
    public static Combination Together(IReadOnlyList<Verdict> ordered, Cart cart)
    {
        var left = Amounts(cart);
        var shipping = cart.Shipping;
        var applied = new List<(Candidate, long)>(ordered.Count);
        var total = 0L;
        foreach (var v in ordered)
        {
            var d = Apply(v.Coupon.Template, cart, Eligible(v.Coupon.Template, cart), left, ref shipping, null);
            applied.Add((v.Coupon, d));
            total += d;
        }
        return new Combination(applied, total);
    }

    /// <summary>
    /// The combination of applicable coupons that takes off the most (ties: fewer coupons), at most one coupon per
    /// template, each pair allowed to stack. Adding a coupon to a combination never lowers its total (each kind takes at
    /// most what it lowers the later coupons' base by), so only the largest sets of coupons that may all stack together
    /// need to be tried: a search that, while some candidates still exclude each other, branches on the first of them
    /// (with it, or without it only if it excludes another), and once the remaining candidates all stack, takes them all.
    /// Coupons are applied in apply order as the search goes, so no combination is evaluated twice from scratch; a bound
    /// (what is left of the cart, and the remaining coupons' own discounts) cuts branches that cannot win.
    /// Also says why each applicable coupon was left out.
    /// </summary>
    public static (Combination Best, Dictionary<long, Reason> LeftOut, bool Exhaustive) Best(IReadOnlyList<Verdict> verdicts, Cart cart)
    {
        var leftOut = new Dictionary<long, Reason>();
        var perTemplate = new List<Verdict>();
        foreach (var group in verdicts.Where(v => v.Applies).GroupBy(v => v.Coupon.Template.Id))
        {
            // Coupons of one template are alike but for their dates: use the one that expires first.
            var ordered = group.OrderBy(v => v.Coupon.ValidUntil ?? DateTime.MaxValue).ThenBy(v => v.Coupon.CouponId).ToList();
            perTemplate.Add(ordered[0]);
            foreach (var other in ordered.Skip(1))
                leftOut[other.Coupon.CouponId] = new("same_template", $"Coupon {ordered[0].Coupon.Code} of the same promotion is used instead (it expires first).");
        }
        var candidates = InApplyOrder(perTemplate);
        var n = candidates.Count;
        var stacks = new bool[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                stacks[i, j] = i != j && candidates[i].Coupon.Template.StacksWith(candidates[j].Coupon.Template);
        // Which lines each candidate covers does not change during the search: worked out once, not at every step.
        var eligible = candidates.Select(v => Eligible(v.Coupon.Template, cart)).ToArray();
        bool AllStack(List<int> open)
        {
            for (var a = 0; a < open.Count; a++)
                for (var b = a + 1; b < open.Count; b++)
                    if (!stacks[open[a], open[b]]) return false;
            return true;
        }

        var best = new Combination([], 0);
        var examined = 0;
        var chosen = new List<(Candidate Coupon, long Discount)>();
        void Offer(long total)
        {
            if (total > best.Total || (total == best.Total && chosen.Count < best.Coupons.Count)) best = new Combination([.. chosen], total);
        }
        (long[] Left, long Shipping, long Discount) Step(int i, long[] left, long shipping)
        {
            var after = (long[])left.Clone();
            var d = Apply(candidates[i].Coupon.Template, cart, eligible[i], after, ref shipping, null);
            return (after, shipping, d);
        }
        void Search(List<int> open, long[] left, long shipping, long total)
        {
            Offer(total);
            if (open.Count == 0 || ++examined > SearchBudget) return;
            var rest = shipping;
            foreach (var amount in left) rest += amount;
            var alone = 0L;
            foreach (var i in open) alone += candidates[i].Discount;
            if (total + Math.Min(alone, rest) <= best.Total) return;
            var first = open[0];
            // Without the first candidate is worth trying only when it excludes another: else adding it never lowers the total.
            var conflicts = false;
            for (var k = 1; k < open.Count && !conflicts; k++) conflicts = !stacks[first, open[k]];
            if (AllStack(open))
            {
                // All the rest stack together: take them all, in order (those that add nothing stay out).
                var added = 0;
                foreach (var i in open)
                {
                    var (after, shippingAfter, d) = Step(i, left, shipping);
                    if (d == 0) continue;
                    (left, shipping, total) = (after, shippingAfter, total + d);
                    chosen.Add((candidates[i].Coupon, d));
                    added++;
                }
                Offer(total);
                chosen.RemoveRange(chosen.Count - added, added);
                return;
            }
            var (with, withShipping, discount) = Step(first, left, shipping);
            if (discount > 0)
            {
                chosen.Add((candidates[first].Coupon, discount));
                Search(open.Skip(1).Where(j => stacks[first, j]).ToList(), with, withShipping, total + discount);
                chosen.RemoveAt(chosen.Count - 1);
            }
            if (conflicts || discount == 0) Search(open.Skip(1).ToList(), left, shipping, total);
        }
        Search(Enumerable.Range(0, n).ToList(), Amounts(cart), cart.Shipping, 0);

        var used = best.Coupons.Select(c => c.Coupon.CouponId).ToHashSet();
        foreach (var v in perTemplate.Where(v => !used.Contains(v.Coupon.CouponId)))
        {
            var blockers = best.Coupons.Where(c => !c.Coupon.Template.StacksWith(v.Coupon.Template)).Select(c => c.Coupon).ToList();
            leftOut[v.Coupon.CouponId] = v.Coupon.Template.Stacking == StackingMode.Exclusive
                ? new("exclusive", $"Cannot be combined with other coupons, and the best combination takes off {best.Total} against its {v.Discount}.")
                : blockers.Count > 0
                    ? new("does_not_stack", $"Does not stack with {string.Join(", ", blockers.Select(b => $"'{b.Template.Name}'"))}, which together take off more.")
                    : new("adds_nothing", "Adds nothing once the coupons of the best combination have applied.");
        }
        return (best, leftOut, examined <= SearchBudget);
    }
}
