using System.Collections.Concurrent;
using System.Data.Common;
using System.Text;

namespace Meridian.Hosting;

/// <summary>
/// Inserts rows into a PostgreSQL table as one statement with one typed array parameter per column:
/// <c>INSERT INTO t (a, b) SELECT u.a::bigint, u.b::jsonb FROM unnest($1, $2) AS u(a, b)</c>. A multi-row
/// <c>VALUES</c> list costs a parameter (type resolution, conversion, a place in the plan) for every value: traced on
/// the batch earn, 500 entries of 17 columns were its largest cost. Each value is cast to its column's type, so the
/// columns' rules (lengths, checks, JSON validity) apply as in any insert.
/// </summary>
public static class PostgresArrays
{
    private static readonly ConcurrentDictionary<string, Dictionary<string, string>> Types = new();

    /// <summary>The rows written, or null when a column's values are not of one type this class takes (the caller inserts them another way).</summary>
    public static async Task<int?> InsertAsync(DbTransaction tx, string table, string[] columns, object?[][] rows, string suffix, CancellationToken ct)
    {
        var arrays = new Array[columns.Length];
        for (var c = 0; c < columns.Length; c++)
            if (ArrayOf(rows, c) is { } array) arrays[c] = array;
            else return null;
        var types = await ColumnTypesAsync(tx, table, ct);
        var sql = new StringBuilder($"INSERT INTO {table} ({string.Join(", ", columns)}) SELECT ");
        for (var c = 0; c < columns.Length; c++)
        {
            if (!types.TryGetValue(columns[c], out var type)) throw new InvalidOperationException($"{table} has no column {columns[c]}.");
            sql.Append(c == 0 ? "" : ", ").Append("u.c").Append(c).Append("::").Append(type);
        }
        sql.Append(" FROM unnest(").AppendJoin(", ", columns.Select((_, c) => "$" + (c + 1))).Append(") AS u(")
            .AppendJoin(", ", columns.Select((_, c) => "c" + c)).Append(')').Append(suffix);
        await using var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql.ToString();
        foreach (var array in arrays)
        {
            var parameter = command.CreateParameter();
            parameter.Value = array;
            command.Parameters.Add(parameter);
        }
        return await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Column <paramref name="c"/> as a typed array (<c>long[]</c>, <c>long?[]</c> with nulls, <c>string?[]</c>...), or
    /// null when its values mix types, or are of a type not taken here, or are dates of mixed kinds.
    /// </summary>
    private static Array? ArrayOf(object?[][] rows, int c)
    {
        Type? type = null;
        var nulls = false;
        DateTimeKind? kind = null;
        foreach (var row in rows)
        {
            var value = row[c];
            if (value is null or DBNull)
            {
                nulls = true;
                continue;
            }
            if (type is null) type = value.GetType();
            else if (type != value.GetType()) return null;
            if (value is DateTime instant && (kind ??= instant.Kind) != instant.Kind) return null;
        }
        type ??= typeof(string);
        if (type != typeof(string) && type != typeof(byte[]) && !IsTaken(type)) return null;
        var element = nulls && type.IsValueType ? typeof(Nullable<>).MakeGenericType(type) : type;
        var array = Array.CreateInstance(element, rows.Length);
        for (var r = 0; r < rows.Length; r++)
            if (rows[r][c] is { } value and not DBNull) array.SetValue(value, r);
        return array;
    }

    private static bool IsTaken(Type type) => type == typeof(long) || type == typeof(int) || type == typeof(short) || type == typeof(bool)
        || type == typeof(double) || type == typeof(float) || type == typeof(decimal) || type == typeof(DateTime) || type == typeof(DateTimeOffset)
        || type == typeof(Guid);

    /// <summary>The table's columns and their types (no length: a value too long fails as in any insert); kept for tables that are not temporary.</summary>
    private static async Task<Dictionary<string, string>> ColumnTypesAsync(DbTransaction tx, string table, CancellationToken ct)
    {
        if (Types.TryGetValue(table, out var known)) return known;
        await using var command = tx.Connection!.CreateCommand();
        command.Transaction = tx;
        command.CommandText = """
            SELECT a.attname, format_type(a.atttypid, NULL), c.relpersistence = 'p'
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            """;
        var name = command.CreateParameter();
        name.Value = table;
        command.Parameters.Add(name);
        var types = new Dictionary<string, string>();
        var permanent = false;
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
            {
                types[reader.GetString(0)] = reader.GetString(1);
                permanent = reader.GetBoolean(2);
            }
        if (permanent) Types[table] = types;
        return types;
    }
}
