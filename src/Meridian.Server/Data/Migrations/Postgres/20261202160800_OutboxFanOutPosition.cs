using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class OutboxFanOutPosition : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "outbox_positions",
                columns: table => new
                {
                    name = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    position_tx = table.Column<long>(type: "bigint", nullable: false),
                    position_id = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_outbox_positions", x => x.name);
                });

            // The fan-out reads in commit order (see OutboxDispatcher.ReadAfterAsync): each row records the transaction that
            // wrote it. The rows already here count as written by transaction 0, before every transaction since: they keep
            // their id order among themselves and stay behind every message written from now on.
            migrationBuilder.Sql("ALTER TABLE outbox_messages ADD COLUMN tx_id bigint NOT NULL DEFAULT 0;");
            migrationBuilder.Sql("ALTER TABLE outbox_messages ALTER COLUMN tx_id SET DEFAULT (pg_current_xact_id()::text::bigint);");
            migrationBuilder.Sql("CREATE INDEX ix_outbox_messages_tx_id_id ON outbox_messages (tx_id, id);");

            // The position starts just before the first message not fanned out yet, so that none is skipped, or after the last
            // message when all were fanned out. Those after it that were fanned out come round once more: their deliveries'
            // unique key makes that a no-op (but for a webhook endpoint added since, which then receives them).
            migrationBuilder.Sql("""
                INSERT INTO outbox_positions (name, position_tx, position_id)
                SELECT 'fan-out', 0, COALESCE((SELECT min(id) - 1 FROM outbox_messages WHERE fanned_out = FALSE), (SELECT max(id) FROM outbox_messages), 0);
                """);

            migrationBuilder.DropIndex(
                name: "ix_outbox_messages_fanned_out",
                table: "outbox_messages");

            migrationBuilder.DropColumn(
                name: "fanned_out",
                table: "outbox_messages");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "fanned_out",
                table: "outbox_messages",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.Sql("UPDATE outbox_messages SET fanned_out = TRUE WHERE (tx_id, id) <= (SELECT position_tx, position_id FROM outbox_positions WHERE name = 'fan-out');");

            migrationBuilder.CreateIndex(
                name: "ix_outbox_messages_fanned_out",
                table: "outbox_messages",
                column: "fanned_out",
                filter: "fanned_out = FALSE");

            migrationBuilder.Sql("DROP INDEX ix_outbox_messages_tx_id_id;");
            migrationBuilder.Sql("ALTER TABLE outbox_messages DROP COLUMN tx_id;");

            migrationBuilder.DropTable(
                name: "outbox_positions");
        }
    }
}
