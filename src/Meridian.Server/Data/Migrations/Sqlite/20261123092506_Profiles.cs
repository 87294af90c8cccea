using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Profiles : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "identifier_types",
                columns: table => new
                {
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    priority = table.Column<int>(type: "INTEGER", nullable: false),
                    max_per_profile = table.Column<int>(type: "INTEGER", nullable: false),
                    normalizer = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    paths = table.Column<string>(type: "TEXT", nullable: false),
                    blocked_values = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_identifier_types", x => new { x.tenant_id, x.name });
                    table.ForeignKey(
                        name: "fk_identifier_types_brands_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "brands",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "profiles",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    merged_into_id = table.Column<long>(type: "INTEGER", nullable: true),
                    traits = table.Column<string>(type: "TEXT", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    updated_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    first_seen_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    last_seen_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    event_count = table.Column<long>(type: "INTEGER", nullable: false),
                    erased_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    version = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_profiles", x => x.id);
                    table.ForeignKey(
                        name: "fk_profiles_profiles_merged_into_id",
                        column: x => x.merged_into_id,
                        principalTable: "profiles",
                        principalColumn: "id");
                });

            migrationBuilder.CreateTable(
                name: "projector_state",
                columns: table => new
                {
                    name = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    position_tx = table.Column<long>(type: "INTEGER", nullable: false),
                    position_id = table.Column<long>(type: "INTEGER", nullable: false),
                    lease_owner = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_projector_state", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "identity_conflicts",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    event_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    other_profile_id = table.Column<long>(type: "INTEGER", nullable: true),
                    identifier_type = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    identifier_value = table.Column<string>(type: "TEXT", maxLength: 500, nullable: false),
                    reason = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_identity_conflicts", x => x.id);
                    table.ForeignKey(
                        name: "fk_identity_conflicts_profiles_other_profile_id",
                        column: x => x.other_profile_id,
                        principalTable: "profiles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_identity_conflicts_profiles_profile_id",
                        column: x => x.profile_id,
                        principalTable: "profiles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "identity_merges",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    kept_profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    merged_profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    event_id = table.Column<long>(type: "INTEGER", nullable: true),
                    identifier_type = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    identifier_value = table.Column<string>(type: "TEXT", maxLength: 500, nullable: false),
                    kept_snapshot = table.Column<string>(type: "TEXT", nullable: false),
                    merged_snapshot = table.Column<string>(type: "TEXT", nullable: false),
                    merged_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    undone_at = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_identity_merges", x => x.id);
                    table.ForeignKey(
                        name: "fk_identity_merges_profiles_kept_profile_id",
                        column: x => x.kept_profile_id,
                        principalTable: "profiles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_identity_merges_profiles_merged_profile_id",
                        column: x => x.merged_profile_id,
                        principalTable: "profiles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "profile_events",
                columns: table => new
                {
                    event_id = table.Column<long>(type: "INTEGER", nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    attributed_profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    timestamp = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_profile_events", x => x.event_id);
                    table.ForeignKey(
                        name: "fk_profile_events_profiles_profile_id",
                        column: x => x.profile_id,
                        principalTable: "profiles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "profile_identifiers",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    type = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    value = table.Column<string>(type: "TEXT", maxLength: 500, nullable: false),
                    source_id = table.Column<long>(type: "INTEGER", nullable: false),
                    first_seen_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    last_seen_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_profile_identifiers", x => x.id);
                    table.ForeignKey(
                        name: "fk_profile_identifiers_profiles_profile_id",
                        column: x => x.profile_id,
                        principalTable: "profiles",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_identity_conflicts_other_profile_id",
                table: "identity_conflicts",
                column: "other_profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_identity_conflicts_profile_id",
                table: "identity_conflicts",
                column: "profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_identity_conflicts_tenant_id_id",
                table: "identity_conflicts",
                columns: new[] { "tenant_id", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_identity_merges_kept_profile_id",
                table: "identity_merges",
                column: "kept_profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_identity_merges_merged_profile_id",
                table: "identity_merges",
                column: "merged_profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_identity_merges_tenant_id_id",
                table: "identity_merges",
                columns: new[] { "tenant_id", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_profile_events_profile_id_timestamp",
                table: "profile_events",
                columns: new[] { "profile_id", "timestamp" });

            migrationBuilder.CreateIndex(
                name: "ix_profile_identifiers_profile_id",
                table: "profile_identifiers",
                column: "profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_profile_identifiers_tenant_id_type_value",
                table: "profile_identifiers",
                columns: new[] { "tenant_id", "type", "value" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_profiles_merged_into_id",
                table: "profiles",
                column: "merged_into_id");

            migrationBuilder.CreateIndex(
                name: "ix_profiles_tenant_id",
                table: "profiles",
                column: "tenant_id");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "identifier_types");

            migrationBuilder.DropTable(
                name: "identity_conflicts");

            migrationBuilder.DropTable(
                name: "identity_merges");

            migrationBuilder.DropTable(
                name: "profile_events");

            migrationBuilder.DropTable(
                name: "profile_identifiers");

            migrationBuilder.DropTable(
                name: "projector_state");

            migrationBuilder.DropTable(
                name: "profiles");
        }
    }
}
