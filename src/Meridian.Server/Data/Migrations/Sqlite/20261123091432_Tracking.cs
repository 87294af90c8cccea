using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Tracking : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_sources_tenant_id",
                table: "sources");

            migrationBuilder.CreateTable(
                name: "events",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    source_id = table.Column<long>(type: "INTEGER", nullable: false),
                    message_id = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    type = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    user_id = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    anonymous_id = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    timestamp = table.Column<DateTime>(type: "TEXT", nullable: false),
                    received_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    payload = table.Column<string>(type: "TEXT", nullable: false),
                    batch_context = table.Column<string>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_events", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "rejected_events",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    source_id = table.Column<long>(type: "INTEGER", nullable: false),
                    received_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    reason = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    detail = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: false),
                    message_id = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    batch_index = table.Column<int>(type: "INTEGER", nullable: true),
                    payload = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_rejected_events", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "source_daily_rejections",
                columns: table => new
                {
                    source_id = table.Column<long>(type: "INTEGER", nullable: false),
                    day = table.Column<string>(type: "TEXT", maxLength: 10, nullable: false),
                    reason = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    count = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_source_daily_rejections", x => new { x.source_id, x.day, x.reason });
                    table.ForeignKey(
                        name: "fk_source_daily_rejections_sources_source_id",
                        column: x => x.source_id,
                        principalTable: "sources",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "source_daily_stats",
                columns: table => new
                {
                    source_id = table.Column<long>(type: "INTEGER", nullable: false),
                    day = table.Column<string>(type: "TEXT", maxLength: 10, nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    accepted = table.Column<long>(type: "INTEGER", nullable: false),
                    duplicates = table.Column<long>(type: "INTEGER", nullable: false),
                    rejected = table.Column<long>(type: "INTEGER", nullable: false),
                    last_event_at = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_source_daily_stats", x => new { x.source_id, x.day });
                    table.ForeignKey(
                        name: "fk_source_daily_stats_sources_source_id",
                        column: x => x.source_id,
                        principalTable: "sources",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_events_source_id_message_id",
                table: "events",
                columns: new[] { "source_id", "message_id" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_rejected_events_source_id_id",
                table: "rejected_events",
                columns: new[] { "source_id", "id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "events");

            migrationBuilder.DropTable(
                name: "rejected_events");

            migrationBuilder.DropTable(
                name: "source_daily_rejections");

            migrationBuilder.DropTable(
                name: "source_daily_stats");

            migrationBuilder.CreateIndex(
                name: "ix_sources_tenant_id",
                table: "sources",
                column: "tenant_id");
        }
    }
}
