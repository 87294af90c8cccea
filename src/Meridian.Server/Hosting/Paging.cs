using System.ComponentModel.DataAnnotations;

namespace Meridian.Hosting;

/// <summary>A page of a list; pass <see cref="NextCursor"/> back as <c>cursor</c> for the next one (null: no more).</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);

/// <summary>Cursor paging over an ascending id: stable while rows are added, and an index seek at any depth.</summary>
public sealed record PageRequest
{
    [Range(1, 200)]
    [Microsoft.AspNetCore.Mvc.FromQuery(Name = "limit")]
    public int? Limit { get; init; }

    [Cursor]
    [Microsoft.AspNetCore.Mvc.FromQuery(Name = "cursor")]
    public string? Cursor { get; init; }

    public int Take => Limit ?? 50;
    public long After => Cursor is null ? 0 : CursorAttribute.Parse(Cursor) ?? 0;

    public Page<T> ToPage<T>(List<T> rowsPlusOne, Func<T, long> id) =>
        rowsPlusOne.Count > Take
            ? new Page<T>(rowsPlusOne[..Take], id(rowsPlusOne[Take - 1]).ToString(System.Globalization.CultureInfo.InvariantCulture))
            : new Page<T>(rowsPlusOne, null);
}

/// <summary>A cursor is the id this API returned as <c>nextCursor</c>: a non-negative 64-bit number.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter)]
public sealed class CursorAttribute : ValidationAttribute
{
    public CursorAttribute() : base("The cursor is not one this API returned.") { }

    public override bool IsValid(object? value) => value is null || (value is string s && Parse(s) is not null);

    public static long? Parse(string cursor) =>
        long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;
}
