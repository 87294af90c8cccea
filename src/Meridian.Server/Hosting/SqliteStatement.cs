using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Meridian.Hosting;

/// <summary>
/// One prepared SQLite statement with parameters <c>@p0</c>..<c>@pN</c> (each once, in order), rebound by position
/// straight on the connection's handle for every row, for the bulk writers (<see cref="BulkInsert"/>,
/// <see cref="EntityRows"/>). Microsoft.Data.Sqlite binds each parameter by name (a native name search per value) and
/// builds a reader per execution: traced on the batch earn, binding and readers took more of the server's CPU than
/// SQLite's own work. Values are stored as Microsoft.Data.Sqlite stores them (<see cref="Bindable"/>); a row holding a
/// value of another type goes through a Microsoft.Data.Sqlite command on the same text instead. Runs in the
/// connection's open transaction, like any command on it.
/// </summary>
public sealed class SqliteStatement : IAsyncDisposable
{
    private const string DateTimeFormat = @"yyyy\-MM\-dd HH\:mm\:ss.FFFFFFF";
    private readonly DbTransaction tx;
    private readonly string sql;
    private readonly int parameters;
    private readonly sqlite3 db;
    private readonly sqlite3_stmt statement;
    private DbCommand? named;

    public SqliteStatement(DbTransaction tx, string sql, int parameters)
    {
        this.tx = tx;
        this.sql = sql;
        this.parameters = parameters;
        db = ((SqliteConnection)tx.Connection!).Handle ?? throw new InvalidOperationException("The SQLite connection is not open.");
        Check(raw.sqlite3_prepare_v2(db, sql, out statement));
    }

    /// <summary>The text of a statement's parameters: <c>@p0, @p1, ...</c>.</summary>
    public static string Parameters(int count) => string.Join(", ", Enumerable.Range(0, count).Select(c => "@p" + c));

    /// <summary>Runs the statement for one row; returns the rows it changed and, with <c>RETURNING</c>, the first column of its row.</summary>
    public async ValueTask<(int Changed, long? Returned)> ExecuteAsync(object?[] row, CancellationToken ct)
    {
        if (!row.All(Bindable)) return await ExecuteNamedAsync(row, ct);
        try
        {
            for (var i = 0; i < row.Length; i++) Check(Bind(i + 1, row[i]));
            long? returned = null;
            int rc;
            while ((rc = raw.sqlite3_step(statement)) == raw.SQLITE_ROW) returned ??= raw.sqlite3_column_int64(statement, 0);
            Check(rc);
            return (raw.sqlite3_changes(db), returned);
        }
        finally
        {
            raw.sqlite3_reset(statement);
        }
    }

    public async ValueTask DisposeAsync()
    {
        statement.Dispose();
        if (named is not null) await named.DisposeAsync();
    }

    private async Task<(int, long?)> ExecuteNamedAsync(object?[] row, CancellationToken ct)
    {
        if (named is null)
        {
            named = tx.Connection!.CreateCommand();
            named.Transaction = tx;
            named.CommandText = sql;
            for (var c = 0; c < parameters; c++) named.Parameters.Add(new SqliteParameter("@p" + c, null));
        }
        for (var c = 0; c < parameters; c++) named.Parameters[c].Value = row[c] ?? DBNull.Value;
        await using var reader = await named.ExecuteReaderAsync(ct);
        long? returned = await reader.ReadAsync(ct) ? reader.GetInt64(0) : null;
        while (await reader.ReadAsync(ct)) { }
        await reader.CloseAsync();
        return (reader.RecordsAffected, returned);
    }

    /// <summary>The types Microsoft.Data.Sqlite binds without a hint that are bound here, stored as it stores them.</summary>
    private static bool Bindable(object? value) => value is null or DBNull or string or long or int or short or byte or sbyte or ushort or uint or bool
        or double or float or DateTime;

    private int Bind(int index, object? value) => value switch
    {
        null or DBNull => raw.sqlite3_bind_null(statement, index),
        string text => raw.sqlite3_bind_text(statement, index, text),
        long number => raw.sqlite3_bind_int64(statement, index, number),
        int number => raw.sqlite3_bind_int64(statement, index, number),
        short number => raw.sqlite3_bind_int64(statement, index, number),
        byte number => raw.sqlite3_bind_int64(statement, index, number),
        sbyte number => raw.sqlite3_bind_int64(statement, index, number),
        ushort number => raw.sqlite3_bind_int64(statement, index, number),
        uint number => raw.sqlite3_bind_int64(statement, index, number),
        bool flag => raw.sqlite3_bind_int64(statement, index, flag ? 1 : 0),
        double number => raw.sqlite3_bind_double(statement, index, number),
        float number => raw.sqlite3_bind_double(statement, index, number),
        DateTime instant => raw.sqlite3_bind_text(statement, index, instant.ToString(DateTimeFormat, CultureInfo.InvariantCulture)),
        _ => throw new NotSupportedException($"{value.GetType().Name} is bound by Microsoft.Data.Sqlite."),
    };

    private void Check(int rc)
    {
        if (rc is raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW) return;
        throw new SqliteException(raw.sqlite3_errmsg(db).utf8_to_string(), rc, raw.sqlite3_extended_errcode(db));
    }
}
