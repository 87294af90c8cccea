using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class AudienceMembership : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "segment_id",
                table: "tags",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "evaluated_at",
                table: "segments",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "rule_version",
                table: "segments",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<string>(
                name: "status",
                table: "segments",
                type: "character varying(20)",
                maxLength: 20,
                nullable: false,
                defaultValue: "Evaluating"); // existing segments are evaluated in full once

            migrationBuilder.CreateTable(
                name: "audience_jobs",
                columns: table => new
                {
                    name = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: false),
                    lease_owner = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    position_tx = table.Column<long>(type: "bigint", nullable: false),
                    position_id = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_audience_jobs", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "segment_dirty_profiles",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_segment_dirty_profiles", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "segment_members",
                columns: table => new
                {
                    segment_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    entered_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_segment_members", x => new { x.segment_id, x.profile_id });
                    table.ForeignKey(
                        name: "fk_segment_members_segments_segment_id",
                        column: x => x.segment_id,
                        principalTable: "segments",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "segment_rechecks",
                columns: table => new
                {
                    segment_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false),
                    due_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_segment_rechecks", x => new { x.segment_id, x.profile_id });
                    table.ForeignKey(
                        name: "fk_segment_rechecks_segments_segment_id",
                        column: x => x.segment_id,
                        principalTable: "segments",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_tags_segment_id",
                table: "tags",
                column: "segment_id");

            migrationBuilder.CreateIndex(
                name: "ix_segment_members_profile_id",
                table: "segment_members",
                column: "profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_segment_rechecks_due_at",
                table: "segment_rechecks",
                column: "due_at");

            migrationBuilder.AddForeignKey(
                name: "fk_tags_segments_segment_id",
                table: "tags",
                column: "segment_id",
                principalTable: "segments",
                principalColumn: "id",
                onDelete: ReferentialAction.Restrict);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "fk_tags_segments_segment_id",
                table: "tags");

            migrationBuilder.DropTable(
                name: "audience_jobs");

            migrationBuilder.DropTable(
                name: "segment_dirty_profiles");

            migrationBuilder.DropTable(
                name: "segment_members");

            migrationBuilder.DropTable(
                name: "segment_rechecks");

            migrationBuilder.DropIndex(
                name: "ix_tags_segment_id",
                table: "tags");

            migrationBuilder.DropColumn(
                name: "segment_id",
                table: "tags");

            migrationBuilder.DropColumn(
                name: "evaluated_at",
                table: "segments");

            migrationBuilder.DropColumn(
                name: "rule_version",
                table: "segments");

            migrationBuilder.DropColumn(
                name: "status",
                table: "segments");
        }
    }
}
