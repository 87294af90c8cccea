using Meridian.Data;
using Meridian.Hosting;
using Meridian.Platform.Outbox;
using Meridian.Platform.Tenancy;
using Meridian.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Meridian.Tests.Platform;

/// <summary>
/// The bulk writers (<see cref="EntityRows"/>, <see cref="BulkInsert"/>) bypass EF's SaveChanges, and on SQLite also
/// Microsoft.Data.Sqlite's parameters (<see cref="SqliteStatement"/>). A row they write must be stored exactly as EF
/// stores it: the same storage class and text for every column (a date stored in another format would compare wrong).
/// Each test works in a transaction it rolls back.
/// </summary>
public abstract class BulkWriteTests(MeridianAppFixture app)
{
    private static readonly DateTime At = new(2026, 11, 30, 21, 5, 7, 123, 456, DateTimeKind.Utc);

    [Fact]
    public async Task A_row_inserted_and_updated_by_the_bulk_writers_is_stored_exactly_as_EF_stores_it()
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        await using var tx = await db.Database.BeginTransactionAsync();

        OutboxMessage Message() => new() { GroupId = 7, BrandId = null, Type = "test.bulk", Payload = "{\"é\":\"中台\"}", OccurredAt = At };
        var byEf = Message();
        db.Add(byEf);
        await db.SaveChangesAsync();
        var byRows = Message();
        await EntityRows.InsertAsync(db, [byRows], returnKeys: true, default);
        Assert.True(byRows.Id > byEf.Id);

        OutboxDelivery Delivery(long message) => new() { MessageId = message, Subscriber = "test", Target = "", Status = DeliveryStatus.Pending, NextAttemptAt = At };
        var deliveryByEf = Delivery(byEf.Id);
        db.Add(deliveryByEf);
        await db.SaveChangesAsync();
        var deliveryByRows = Delivery(byRows.Id);
        await EntityRows.InsertAsync(db, [deliveryByRows], returnKeys: false, default);
        var deliveryId = await db.Set<OutboxDelivery>().Where(d => d.MessageId == byRows.Id).Select(d => d.Id).SingleAsync();
        Assert.Equal(await StoredAsync(db, "outbox_messages", byEf.Id, "id"), await StoredAsync(db, "outbox_messages", byRows.Id, "id"));

        // An update by EF and the same update by EntityRows.UpdateAsync (the other row, untracked).
        deliveryByEf.Status = DeliveryStatus.Delivered;
        deliveryByEf.Attempts = 3;
        deliveryByEf.DeliveredAt = At.AddDays(1);
        deliveryByEf.LeaseUntil = null;
        deliveryByEf.LastError = "’quoted’";
        await db.SaveChangesAsync();
        var untracked = await db.Set<OutboxDelivery>().AsNoTracking().SingleAsync(d => d.Id == deliveryId);
        untracked.Status = DeliveryStatus.Delivered;
        untracked.Attempts = 3;
        untracked.DeliveredAt = At.AddDays(1);
        untracked.LastError = "’quoted’";
        await EntityRows.UpdateAsync(db, [untracked], ["Status", "Attempts", "DeliveredAt", "LeaseUntil", "LastError"], null, default);
        Assert.Equal(await StoredAsync(db, "outbox_deliveries", deliveryByEf.Id, "id", "message_id"),
            await StoredAsync(db, "outbox_deliveries", deliveryId, "id", "message_id"));
        await tx.RollbackAsync();
    }

    [Fact]
    public async Task BulkInsert_writes_rows_mixing_values_it_binds_itself_with_values_the_driver_binds_and_counts_the_conflicts_it_skips()
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        await using var tx = await db.Database.BeginTransactionAsync();
        var sqlite = db.Database.IsSqlite();
        await db.Database.ExecuteSqlRawAsync(sqlite
            ? "CREATE TEMP TABLE bulk_test (k INTEGER PRIMARY KEY, amount NUMERIC, note TEXT)"
            : "CREATE TEMP TABLE bulk_test (k bigint PRIMARY KEY, amount numeric, note text) ON COMMIT DROP");
        object?[][] rows = [[1L, 12.5m, "decimal: the driver binds it"], [2L, null, "plain"], [3L, 7, null], [1L, 1, "a repeat"]];
        var written = await BulkInsert.InsertAsync(tx.GetDbTransaction(), "bulk_test", ["k", "amount", "note"], rows, " ON CONFLICT (k) DO NOTHING", default);
        Assert.Equal(3, written);
        var stored = await db.Database.SqlQueryRaw<string>(sqlite
            ? "SELECT k || '|' || coalesce(CAST(amount AS TEXT), '-') || '|' || coalesce(note, '-') AS \"Value\" FROM bulk_test ORDER BY k"
            : "SELECT k || '|' || coalesce(amount::text, '-') || '|' || coalesce(note, '-') AS \"Value\" FROM bulk_test ORDER BY k").ToListAsync();
        Assert.Equal(["1|12.5|decimal: the driver binds it", "2|-|plain", "3|7|-"], stored);
        await tx.RollbackAsync();
    }

    [Fact]
    public async Task BulkInsert_writes_thousands_of_wide_rows_the_driver_binds_value_by_value()
    {
        await using var scope = app.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<TenantScope>().RunAsSystem();
        var db = scope.ServiceProvider.GetRequiredService<MeridianDb>();
        await using var tx = await db.Database.BeginTransactionAsync();
        var sqlite = db.Database.IsSqlite();
        // 20 columns, one mixing decimals and integers (so PostgreSQL takes values, not arrays): 6,000 rows are 120,000
        // values, past the 65,535 parameters a PostgreSQL statement takes.
        var columns = new[] { "k", "amount" }.Concat(Enumerable.Range(1, 18).Select(i => "c" + i)).ToArray();
        await db.Database.ExecuteSqlRawAsync(sqlite
            ? $"CREATE TEMP TABLE bulk_wide (k INTEGER PRIMARY KEY, amount NUMERIC, {string.Join(", ", columns[2..].Select(c => c + " TEXT"))})"
            : $"CREATE TEMP TABLE bulk_wide (k bigint PRIMARY KEY, amount numeric, {string.Join(", ", columns[2..].Select(c => c + " text"))}) ON COMMIT DROP");
        var rows = Enumerable.Range(1, 6000)
            .Select(k => new object?[] { (long)k, k % 2 == 0 ? k + 0.5m : (object)k }.Concat(columns[2..].Select(c => (object?)$"{c}-{k}")).ToArray());
        var written = await BulkInsert.InsertAsync(tx.GetDbTransaction(), "bulk_wide", columns, rows, "", default);
        Assert.Equal(6000, written);
        var stored = await db.Database.SqlQueryRaw<string>(
            "SELECT CAST(count(*) AS TEXT) || '|' || CAST(sum(amount) AS TEXT) || '|' || max(c18) AS \"Value\" FROM bulk_wide").SingleAsync();
        Assert.Equal($"6000|{Enumerable.Range(1, 6000).Sum(k => k % 2 == 0 ? k + 0.5m : k)}|c18-999", stored);
        await tx.RollbackAsync();
    }

    /// <summary>Every column of the row but those named, as its storage class and text (SQLite) or its text (PostgreSQL).</summary>
    private static async Task<List<string>> StoredAsync(MeridianDb db, string table, long id, params string[] except)
    {
        var connection = db.Database.GetDbConnection();
        await using var command = connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction!.GetDbTransaction();
        command.CommandText = $"SELECT * FROM {table} WHERE id = {id}";
        var columns = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            for (var i = 0; i < reader.FieldCount; i++)
                if (!except.Contains(reader.GetName(i))) columns.Add(reader.GetName(i));
        }
        var values = new List<string>();
        foreach (var column in columns)
        {
            command.CommandText = db.Database.IsSqlite()
                ? $"SELECT typeof({column}) || ':' || coalesce(CAST({column} AS TEXT), 'NULL') FROM {table} WHERE id = {id}"
                : $"SELECT coalesce(CAST({column} AS text), 'NULL') FROM {table} WHERE id = {id}";
            values.Add($"{column}={await command.ExecuteScalarAsync()}");
        }
        return values;
    }
}

public sealed class BulkWriteTestsOnSqlite(SqliteApp app) : BulkWriteTests(app), IClassFixture<SqliteApp>;

public sealed class BulkWriteTestsOnPostgres(PostgresApp app) : BulkWriteTests(app), IClassFixture<PostgresApp>;
