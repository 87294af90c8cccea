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

    [RegularExpression("^[0-9]{1,19}$", ErrorMessage = "The cursor is not one this API returned.")]
    [Microsoft.AspNetCore.Mvc.FromQuery(Name = "cursor")]
    public string? Cursor { get; init; }

    public int Take => Limit ?? 50;
    public long After => Cursor is null ? 0 : long.Parse(Cursor, System.Globalization.CultureInfo.InvariantCulture);

    public Page<T> ToPage<T>(List<T> rowsPlusOne, Func<T, long> id) =>
        rowsPlusOne.Count > Take
            ? new Page<T>(rowsPlusOne[..Take], id(rowsPlusOne[Take - 1]).ToString(System.Globalization.CultureInfo.InvariantCulture))
            : new Page<T>(rowsPlusOne, null);
}
