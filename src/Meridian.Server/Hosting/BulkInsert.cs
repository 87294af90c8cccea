using System.Data.Common;
using System.Text;

namespace Meridian.Hosting;

/// <summary>
/// Inserts many rows of one shape on a transaction's connection, for the write paths measured to need it (ingestion,
/// identity resolution): change tracking costs more there than the inserts themselves.
/// </summary>
public static class BulkInsert
{
    /// <summary>PostgreSQL: rows a statement as arrays (one parameter a column).</summary>
    private const int RowsPerStatement = 5000;

    /// <summary>PostgreSQL: rows a statement as values (one parameter a value; a statement takes at most 65,535).</summary>
    private const int RowsPerValuesStatement = 200;

    /// <summary>
    /// Inserts the rows and returns how many were written (<paramref name="suffix"/> may skip conflicting rows).
    /// SQLite: one prepared single-row statement, rebound by position for every row (<see cref="SqliteStatement"/>).
    /// Binding by name finds each name by a linear search, so one statement with hundreds of parameters costs time
    /// quadratic in its rows (measured: the largest single cost of a 200-row insert), while a rebound statement costs no
    /// round trip in an embedded database. PostgreSQL: one statement per 5,000 rows, each column one typed array parameter
    /// (<see cref="PostgresArrays"/>).
    /// </summary>
    public static async Task<int> InsertAsync(DbTransaction tx, string table, string[] columns, IEnumerable<object?[]> rows, string suffix,
        CancellationToken ct)
    {
        var connection = tx.Connection!;
        var insert = $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ";
        var written = 0;
        if (connection is Microsoft.Data.Sqlite.SqliteConnection)
        {
            await using var statement = new SqliteStatement(tx, insert + "(" + SqliteStatement.Parameters(columns.Length) + ")" + suffix, columns.Length);
            foreach (var row in rows) written += (await statement.ExecuteAsync(row, ct)).Changed;
            return written;
        }
        foreach (var chunk in rows.Chunk(RowsPerStatement))
            written += await PostgresArrays.InsertAsync(tx, table, columns, chunk, suffix, ct) ?? await InsertValuesAsync(tx, insert, columns, chunk, suffix, ct);
        return written;
    }

    /// <summary>PostgreSQL, for a chunk <see cref="PostgresArrays"/> cannot take: multi-row statements of positional parameters.</summary>
    private static async Task<int> InsertValuesAsync(DbTransaction tx, string insert, string[] columns, object?[][] chunk, string suffix, CancellationToken ct)
    {
        var written = 0;
        foreach (var rows in chunk.Chunk(Math.Min(RowsPerValuesStatement, ushort.MaxValue / columns.Length)))
        {
            await using var command = tx.Connection!.CreateCommand();
            command.Transaction = tx;
            var sql = new StringBuilder(insert);
            for (var r = 0; r < rows.Length; r++)
            {
                sql.Append(r == 0 ? "(" : ", (");
                for (var c = 0; c < columns.Length; c++)
                {
                    sql.Append(c == 0 ? "$" : ", $").Append(r * columns.Length + c + 1);
                    var parameter = command.CreateParameter();
                    parameter.Value = rows[r][c] ?? DBNull.Value;
                    command.Parameters.Add(parameter);
                }
                sql.Append(')');
            }
            command.CommandText = sql.Append(suffix).ToString();
            written += await command.ExecuteNonQueryAsync(ct);
        }
        return written;
    }
}
