using System.Data.Common;
using System.Globalization;
using Meridian.Hosting;

namespace Meridian.Bench;

/// <summary>
/// A statement or a scalar read on an open connection, for the bench's set-up, seeds and checks (not for what it
/// times). <c>args</c> are name/value pairs (<c>["brand", 1, "since", at]</c>), the names without the <c>@</c>; a
/// name the statement does not use is left out, so that one set of pairs can serve several statements.
/// <c>timeoutSeconds</c>: 0 waits for ever; null keeps the driver's default (30 s).
/// </summary>
internal static class Sql
{
    public static async Task<int> ExecuteAsync(DbConnection db, string sql, CancellationToken ct, DbTransaction? tx = null, object?[]? args = null,
        int? timeoutSeconds = null)
    {
        await using var command = Command(db, sql, tx, args, timeoutSeconds);
        return await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The first column of the first row, converted to <typeparamref name="T"/> (a count as <c>long</c>, whatever type the database answers with).</summary>
    public static async Task<T> ScalarAsync<T>(DbConnection db, string sql, CancellationToken ct, DbTransaction? tx = null, object?[]? args = null,
        int? timeoutSeconds = null)
    {
        await using var command = Command(db, sql, tx, args, timeoutSeconds);
        return (T)Convert.ChangeType(await command.ExecuteScalarAsync(ct), typeof(T), CultureInfo.InvariantCulture)!;
    }

    /// <summary>A statement run synchronously, for the set-up of the synchronous SQLite baselines.</summary>
    public static void Execute(DbConnection db, string sql)
    {
        using var command = Command(db, sql, null, null, null);
        command.ExecuteNonQuery();
    }

    private static DbCommand Command(DbConnection db, string sql, DbTransaction? tx, object?[]? args, int? timeoutSeconds)
    {
        var command = db.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        if (timeoutSeconds is { } seconds) command.CommandTimeout = seconds;
        for (var i = 0; args is not null && i < args.Length; i += 2)
        {
            var name = (string)args[i]!;
            if (sql.Contains("@" + name, StringComparison.Ordinal)) command.AddParameter(name, args[i + 1]);
        }
        return command;
    }
}
