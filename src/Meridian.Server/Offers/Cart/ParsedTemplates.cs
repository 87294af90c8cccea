using System.Collections.Concurrent;
using Meridian.Offers.Data;

namespace Meridian.Offers.Cart;

/// <summary>
/// A template's rules for the engine, with its JSON (conditions, the templates it stacks with) parsed once per node
/// instead of on every cart: measured as the largest part of judging 50 coupons besides the search. An entry is used
/// only while the row's JSON is the text it was parsed from, so a template whose rules change is parsed again; its
/// status and budget are always those of the row just read.
/// </summary>
public sealed class ParsedTemplates
{
    private const int MaxEntries = 20_000;

    private sealed record Entry(string ConditionsJson, string StackWithJson, CouponConditions Conditions, IReadOnlySet<long> StackWith);

    private readonly ConcurrentDictionary<long, Entry> entries = new();

    public TemplateRules Rules(OfferTemplate t)
    {
        if (!entries.TryGetValue(t.Id, out var entry) || entry.ConditionsJson != t.Conditions || entry.StackWithJson != t.StackWith)
        {
            if (entries.Count >= MaxEntries) entries.Clear();
            entry = new Entry(t.Conditions, t.StackWith, TemplateRules.ParseConditions(t.Conditions), TemplateRules.ParseStackWith(t.StackWith));
            entries[t.Id] = entry;
        }
        return TemplateRules.From(t, entry.Conditions, entry.StackWith);
    }
}
