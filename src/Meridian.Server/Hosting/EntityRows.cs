using System.Data.Common;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Meridian.Hosting;

/// <summary>
/// Inserts and updates untracked entities of one type with SQL built from the EF model (table, columns, value
/// converters), for a write path measured to need it: identity resolution, where EF's SaveChanges (change detection,
/// command batching, a topological sort of every row) cost more than the writes themselves.
/// </summary>
public static class EntityRows
{
    /// <summary>
    /// Inserts the entities in the current transaction. A key the database generates is left to it; with
    /// <paramref name="returnKeys"/> each entity gets its new key (a single <c>long</c>): SQLite returns it row by row
    /// from one rebound statement, PostgreSQL hands out the keys from the table's sequence in one call and the rows go
    /// in many to a statement.
    /// </summary>
    public static async Task InsertAsync<T>(DbContext db, IReadOnlyCollection<T> entities, bool returnKeys, CancellationToken ct) where T : class
    {
        if (entities.Count == 0) return;
        var type = db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not mapped.");
        var key = type.FindPrimaryKey()!.Properties.Single();
        var tx = db.Database.CurrentTransaction!.GetDbTransaction();
        var table = type.GetTableName()!;
        var generated = key.ValueGenerated != ValueGenerated.Never;
        if (!generated || !returnKeys)
        {
            var written = type.GetProperties().Where(p => !generated || p != key).ToArray();
            await BulkInsert.InsertAsync(tx, table, [.. written.Select(Column)], entities.Select(e => Values(written, e)), "", ct);
            return;
        }

        var columns = type.GetProperties().Where(p => p != key).ToArray();
        if (tx.Connection is Microsoft.Data.Sqlite.SqliteConnection)
        {
            await using var statement = new SqliteStatement(tx,
                $"INSERT INTO {table} ({string.Join(", ", columns.Select(Column))}) VALUES ({SqliteStatement.Parameters(columns.Length)}) RETURNING {Column(key)}", columns.Length);
            foreach (var entity in entities) key.PropertyInfo!.SetValue(entity, (await statement.ExecuteAsync(Values(columns, entity), ct)).Returned!.Value);
            return;
        }

        await using (var next = tx.Connection!.CreateCommand())
        {
            next.Transaction = tx;
            // The sequence named once (OFFSET 0 keeps the subquery apart): named in the select list, it was looked up for
            // every row, 5 times the cost of the numbers themselves.
            next.CommandText = $"SELECT nextval(q.s) FROM (SELECT pg_get_serial_sequence('{table}', '{Column(key)}')::regclass AS s OFFSET 0) q CROSS JOIN generate_series(1, {entities.Count})";
            await using var reader = await next.ExecuteReaderAsync(ct);
            foreach (var entity in entities)
            {
                await reader.ReadAsync(ct);
                key.PropertyInfo!.SetValue(entity, reader.GetInt64(0));
            }
        }
        var withKey = type.GetProperties().ToArray();
        await BulkInsert.InsertAsync(tx, table, [.. withKey.Select(Column)], entities.Select(e => Values(withKey, e)), "", ct);
    }

    /// <summary>
    /// Writes the named properties of each entity, by key, in the current transaction. With a concurrency token
    /// (<paramref name="token"/> gives each row's value as it was read) a row changed meanwhile fails the whole write
    /// with <see cref="DbUpdateConcurrencyException"/>, as SaveChanges would.
    /// </summary>
    public static async Task UpdateAsync<T>(DbContext db, IReadOnlyCollection<T> entities, string[] properties, Func<T, object>? token,
        CancellationToken ct) where T : class
    {
        if (entities.Count == 0) return;
        var type = db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not mapped.");
        var key = type.FindPrimaryKey()!.Properties.Single();
        var set = properties.Select(name => type.FindProperty(name) ?? throw new InvalidOperationException($"{typeof(T).Name}.{name} is not mapped.")).ToArray();
        var tokenProperty = token is null ? null : type.GetProperties().Single(p => p.IsConcurrencyToken);
        var tx = db.Database.CurrentTransaction!.GetDbTransaction();
        var sqlite = tx.Connection is Microsoft.Data.Sqlite.SqliteConnection;
        string P(int i) => sqlite ? "@p" + i : "$" + (i + 1);
        var sql = new StringBuilder($"UPDATE {type.GetTableName()} SET ");
        for (var c = 0; c < set.Length; c++) sql.Append(c == 0 ? "" : ", ").Append(Column(set[c])).Append(" = ").Append(P(c));
        sql.Append(" WHERE ").Append(Column(key)).Append(" = ").Append(P(set.Length));
        if (tokenProperty is not null) sql.Append(" AND ").Append(Column(tokenProperty)).Append(" = ").Append(P(set.Length + 1));
        var parameterCount = set.Length + (tokenProperty is null ? 1 : 2);

        object?[] Row(T entity)
        {
            var row = new object?[parameterCount];
            Values(set, entity).CopyTo(row, 0);
            row[set.Length] = key.GetGetter().GetClrValueUsingContainingEntity(entity);
            if (tokenProperty is not null) row[set.Length + 1] = token!(entity);
            return row;
        }

        var stale = 0;
        if (sqlite)
        {
            await using var statement = new SqliteStatement(tx, sql.ToString(), parameterCount);
            foreach (var entity in entities)
                if ((await statement.ExecuteAsync(Row(entity), ct)).Changed != 1) stale++;
        }
        else
        {
            foreach (var chunk in entities.Chunk(200))
            {
                await using var batch = tx.Connection!.CreateBatch();
                batch.Transaction = tx;
                foreach (var entity in chunk)
                {
                    var command = batch.CreateBatchCommand();
                    command.CommandText = sql.ToString();
                    foreach (var value in Row(entity))
                    {
                        var parameter = command.CreateParameter();
                        parameter.Value = value ?? DBNull.Value;
                        command.Parameters.Add(parameter);
                    }
                    batch.BatchCommands.Add(command);
                }
                await batch.ExecuteNonQueryAsync(ct);
                stale += batch.BatchCommands.Count(c => c.RecordsAffected != 1);
            }
        }
        if (stale > 0 && tokenProperty is not null)
            throw new DbUpdateConcurrencyException($"{stale} {typeof(T).Name} row(s) changed since they were read.");
    }

    private static string Column(IProperty property) => property.GetColumnName();

    private static object?[] Values(IProperty[] properties, object entity)
    {
        var values = new object?[properties.Length];
        for (var i = 0; i < properties.Length; i++)
        {
            var value = properties[i].GetGetter().GetClrValueUsingContainingEntity(entity);
            var converter = properties[i].GetTypeMapping().Converter;
            values[i] = value is not null && converter is not null ? converter.ConvertToProvider(value) : value;
        }
        return values;
    }
}
