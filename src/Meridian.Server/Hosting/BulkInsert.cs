using System.Data.Common;
using System.Text;

namespace Meridian.Hosting;

/// <summary>
/// Inserts many rows of one shape on a transaction's connection, for the write paths measured to need it (ingestion,
/// identity resolution): change tracking costs more there than the inserts themselves.
/// </summary>
public static class BulkInsert
{
    private const int RowsPerStatement = 200;

    /// <summary>
    /// Inserts the rows and returns how many were written (<paramref name="suffix"/> may skip conflicting rows).
    /// SQLite: one prepared single-row statement, rebound for every row. Binding there is by name and SQLite finds each
    /// name by a linear search, so one statement with hundreds of parameters costs time quadratic in its rows (measured:
    /// the largest single cost of a 200-row insert), while a rebound statement costs no round trip in an embedded
    /// database. PostgreSQL: multi-row statements of positional parameters, one round trip per 200 rows.
    /// </summary>
    public static async Task<int> InsertAsync(DbTransaction tx, string table, string[] columns, IEnumerable<object?[]> rows, string suffix,
        CancellationToken ct)
    {
        var connection = tx.Connection!;
        var insert = $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ";
        var written = 0;
        if (connection is Microsoft.Data.Sqlite.SqliteConnection)
        {
            await using var command = connection.CreateCommand();
            command.Transaction = tx;
            command.CommandText = insert + "(" + string.Join(", ", columns.Select((_, c) => "@p" + c)) + ")" + suffix;
            for (var c = 0; c < columns.Length; c++)
            {
                var parameter = command.CreateParameter();
                parameter.ParameterName = "@p" + c;
                command.Parameters.Add(parameter);
            }
            foreach (var row in rows)
            {
                for (var c = 0; c < columns.Length; c++) command.Parameters[c].Value = row[c] ?? DBNull.Value;
                written += await command.ExecuteNonQueryAsync(ct);
            }
            return written;
        }
        foreach (var chunk in rows.Chunk(RowsPerStatement))
        {
            await using var command = connection.CreateCommand();
            command.Transaction = tx;
            var sql = new StringBuilder(insert);
            for (var r = 0; r < chunk.Length; r++)
            {
                sql.Append(r == 0 ? "(" : ", (");
                for (var c = 0; c < columns.Length; c++)
                {
                    sql.Append(c == 0 ? "$" : ", $").Append(r * columns.Length + c + 1);
                    var parameter = command.CreateParameter();
                    parameter.Value = chunk[r][c] ?? DBNull.Value;
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
