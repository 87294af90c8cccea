using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Journeys : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "journey_jobs",
                columns: table => new
                {
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    lease_owner = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    position_tx = table.Column<long>(type: "bigint", nullable: false),
                    position_id = table.Column<long>(type: "bigint", nullable: false),
                    last_day = table.Column<string>(type: "character varying(10)", maxLength: 10, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_journey_jobs", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "journey_steps",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    journey_id = table.Column<long>(type: "bigint", nullable: false),
                    instance_id = table.Column<long>(type: "bigint", nullable: false),
                    step = table.Column<int>(type: "integer", nullable: false),
                    node = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    outcome = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    detail = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: true),
                    by = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_journey_steps", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "journeys",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    status = table.Column<int>(type: "integer", nullable: false),
                    draft = table.Column<string>(type: "text", nullable: false),
                    current_version_id = table.Column<long>(type: "bigint", nullable: true),
                    latest_version = table.Column<int>(type: "integer", nullable: false),
                    created_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    updated_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_journeys", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "journey_versions",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    journey_id = table.Column<long>(type: "bigint", nullable: false),
                    version = table.Column<int>(type: "integer", nullable: false),
                    graph = table.Column<string>(type: "text", nullable: false),
                    published_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_journey_versions", x => x.id);
                    table.ForeignKey(
                        name: "fk_journey_versions_journeys_journey_id",
                        column: x => x.journey_id,
                        principalTable: "journeys",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "journey_instances",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    journey_id = table.Column<long>(type: "bigint", nullable: false),
                    version_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false),
                    entry_key = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    state = table.Column<int>(type: "integer", nullable: false),
                    current_node = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    step = table.Column<int>(type: "integer", nullable: false),
                    due_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    lease_owner = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    attempts = table.Column<int>(type: "integer", nullable: false),
                    wait_event = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    event_arrived = table.Column<bool>(type: "boolean", nullable: false),
                    context = table.Column<string>(type: "text", nullable: false),
                    entered_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    finished_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_journey_instances", x => x.id);
                    table.ForeignKey(
                        name: "fk_journey_instances_journey_versions_version_id",
                        column: x => x.version_id,
                        principalTable: "journey_versions",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_journey_instances_journeys_journey_id",
                        column: x => x.journey_id,
                        principalTable: "journeys",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_journey_instances_due_at",
                table: "journey_instances",
                column: "due_at",
                filter: "state IN (0, 1)");

            migrationBuilder.CreateIndex(
                name: "ix_journey_instances_journey_id_profile_id_entry_key",
                table: "journey_instances",
                columns: new[] { "journey_id", "profile_id", "entry_key" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_journey_instances_journey_id_state_current_node",
                table: "journey_instances",
                columns: new[] { "journey_id", "state", "current_node" });

            migrationBuilder.CreateIndex(
                name: "ix_journey_instances_profile_id_wait_event",
                table: "journey_instances",
                columns: new[] { "profile_id", "wait_event" },
                filter: "wait_event IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_journey_instances_version_id",
                table: "journey_instances",
                column: "version_id");

            migrationBuilder.CreateIndex(
                name: "ix_journey_steps_instance_id_step",
                table: "journey_steps",
                columns: new[] { "instance_id", "step" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_journey_steps_journey_id_node",
                table: "journey_steps",
                columns: new[] { "journey_id", "node" });

            migrationBuilder.CreateIndex(
                name: "ix_journey_versions_journey_id_version",
                table: "journey_versions",
                columns: new[] { "journey_id", "version" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_journeys_tenant_id_name",
                table: "journeys",
                columns: new[] { "tenant_id", "name" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "journey_instances");

            migrationBuilder.DropTable(
                name: "journey_jobs");

            migrationBuilder.DropTable(
                name: "journey_steps");

            migrationBuilder.DropTable(
                name: "journey_versions");

            migrationBuilder.DropTable(
                name: "journeys");
        }
    }
}
