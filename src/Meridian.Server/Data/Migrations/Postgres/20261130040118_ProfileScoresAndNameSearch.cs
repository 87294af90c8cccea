using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class ProfileScoresAndNameSearch : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "frequency_score",
                table: "profiles",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "monetary_score",
                table: "profiles",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "recency_score",
                table: "profiles",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "rfm_segment",
                table: "profiles",
                type: "character varying(32)",
                maxLength: 32,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "search_name",
                table: "profiles",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true,
                collation: "C");

            migrationBuilder.AddColumn<int>(
                name: "value_score",
                table: "profiles",
                type: "integer",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "profile_scoring",
                columns: table => new
                {
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    scored_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    scored = table.Column<long>(type: "bigint", nullable: false),
                    lease_owner = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_profile_scoring", x => x.tenant_id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_profiles_tenant_id_search_name",
                table: "profiles",
                columns: new[] { "tenant_id", "search_name" });

            // Names already held become searchable (folded as ProfileNames does, except full-width forms and first/last names).
            migrationBuilder.Sql("""
                UPDATE profiles SET search_name = left(lower(btrim(traits::jsonb #>> '{name,v}')), 200) WHERE jsonb_typeof(traits::jsonb -> 'name' -> 'v') = 'string';
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "profile_scoring");

            migrationBuilder.DropIndex(
                name: "ix_profiles_tenant_id_search_name",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "frequency_score",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "monetary_score",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "recency_score",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "rfm_segment",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "search_name",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "value_score",
                table: "profiles");
        }
    }
}
