using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
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
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "evaluated_at",
                table: "segments",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "rule_version",
                table: "segments",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<string>(
                name: "status",
                table: "segments",
                type: "TEXT",
                maxLength: 20,
                nullable: false,
                defaultValue: "Evaluating"); // existing segments are evaluated in full once

            migrationBuilder.CreateTable(
                name: "audience_jobs",
                columns: table => new
                {
                    name = table.Column<string>(type: "TEXT", maxLength: 50, nullable: false),
                    lease_owner = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "TEXT", nullable: true),
                    position_tx = table.Column<long>(type: "INTEGER", nullable: false),
                    position_id = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_audience_jobs", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "segment_dirty_profiles",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_segment_dirty_profiles", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "segment_members",
                columns: table => new
                {
                    segment_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    entered_at = table.Column<DateTime>(type: "TEXT", nullable: false)
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
                    segment_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    due_at = table.Column<DateTime>(type: "TEXT", nullable: false)
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
