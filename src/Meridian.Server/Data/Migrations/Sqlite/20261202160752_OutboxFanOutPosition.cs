using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
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
                    name = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    position_tx = table.Column<long>(type: "INTEGER", nullable: false),
                    position_id = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_outbox_positions", x => x.name);
                });

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
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.Sql("UPDATE outbox_messages SET fanned_out = TRUE WHERE id <= (SELECT position_id FROM outbox_positions WHERE name = 'fan-out');");

            migrationBuilder.CreateIndex(
                name: "ix_outbox_messages_fanned_out",
                table: "outbox_messages",
                column: "fanned_out",
                filter: "fanned_out = FALSE");

            migrationBuilder.DropTable(
                name: "outbox_positions");
        }
    }
}
