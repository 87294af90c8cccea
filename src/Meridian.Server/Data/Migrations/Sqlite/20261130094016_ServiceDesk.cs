using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ServiceDesk : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "service_agents",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    queue = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    active = table.Column<bool>(type: "INTEGER", nullable: false),
                    open_tickets = table.Column<int>(type: "INTEGER", nullable: false),
                    last_assigned_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_service_agents", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "service_tickets",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    subject = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    note = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: true),
                    queue = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    status = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    agent_id = table.Column<long>(type: "INTEGER", nullable: true),
                    origin = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    idempotency_key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    assigned_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    closed_at = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_service_tickets", x => x.id);
                    table.ForeignKey(
                        name: "fk_service_tickets_service_agents_agent_id",
                        column: x => x.agent_id,
                        principalTable: "service_agents",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateIndex(
                name: "ix_service_agents_tenant_id_queue_active",
                table: "service_agents",
                columns: new[] { "tenant_id", "queue", "active" });

            migrationBuilder.CreateIndex(
                name: "ix_service_tickets_agent_id_status",
                table: "service_tickets",
                columns: new[] { "agent_id", "status" });

            migrationBuilder.CreateIndex(
                name: "ix_service_tickets_tenant_id_idempotency_key",
                table: "service_tickets",
                columns: new[] { "tenant_id", "idempotency_key" },
                unique: true,
                filter: "idempotency_key IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_service_tickets_tenant_id_profile_id",
                table: "service_tickets",
                columns: new[] { "tenant_id", "profile_id" });

            migrationBuilder.CreateIndex(
                name: "ix_service_tickets_tenant_id_queue_status_id",
                table: "service_tickets",
                columns: new[] { "tenant_id", "queue", "status", "id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "service_tickets");

            migrationBuilder.DropTable(
                name: "service_agents");
        }
    }
}
