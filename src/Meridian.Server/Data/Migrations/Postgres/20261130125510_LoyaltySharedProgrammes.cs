using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class LoyaltySharedProgrammes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_loyalty_programmes_tenant_id",
                table: "loyalty_programmes");

            migrationBuilder.AddColumn<bool>(
                name: "shared",
                table: "loyalty_programmes",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<long>(
                name: "brand_id",
                table: "loyalty_entries",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.CreateTable(
                name: "loyalty_member_profiles",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    programme_id = table.Column<long>(type: "bigint", nullable: false),
                    member_id = table.Column<long>(type: "bigint", nullable: false),
                    brand_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false),
                    linked_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_member_profiles", x => x.id);
                    table.ForeignKey(
                        name: "fk_loyalty_member_profiles_loyalty_members_member_id",
                        column: x => x.member_id,
                        principalTable: "loyalty_members",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_programme_brands",
                columns: table => new
                {
                    programme_id = table.Column<long>(type: "bigint", nullable: false),
                    brand_id = table.Column<long>(type: "bigint", nullable: false),
                    owner_brand_id = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_programme_brands", x => new { x.programme_id, x.brand_id });
                    table.ForeignKey(
                        name: "fk_loyalty_programme_brands_loyalty_programmes_programme_id",
                        column: x => x.programme_id,
                        principalTable: "loyalty_programmes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_programmes_tenant_id",
                table: "loyalty_programmes",
                column: "tenant_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_programme_id_created_at_brand_id",
                table: "loyalty_entries",
                columns: new[] { "programme_id", "created_at", "brand_id" });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_member_profiles_brand_id_profile_id",
                table: "loyalty_member_profiles",
                columns: new[] { "brand_id", "profile_id" });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_member_profiles_member_id_brand_id",
                table: "loyalty_member_profiles",
                columns: new[] { "member_id", "brand_id" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_member_profiles_profile_id",
                table: "loyalty_member_profiles",
                column: "profile_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_member_profiles_programme_id_profile_id",
                table: "loyalty_member_profiles",
                columns: new[] { "programme_id", "profile_id" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_programme_brands_brand_id",
                table: "loyalty_programme_brands",
                column: "brand_id",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_programme_brands_owner_brand_id_brand_id",
                table: "loyalty_programme_brands",
                columns: new[] { "owner_brand_id", "brand_id" });

            // Every programme lists its brands (a per-brand programme: its own), every member its profile at its brand,
            // every entry the brand where it happened: before this migration, each programme was one brand's.
            migrationBuilder.Sql("INSERT INTO loyalty_programme_brands (programme_id, brand_id, owner_brand_id) SELECT id, tenant_id, tenant_id FROM loyalty_programmes;");
            migrationBuilder.Sql("INSERT INTO loyalty_member_profiles (tenant_id, programme_id, member_id, brand_id, profile_id, linked_at) SELECT tenant_id, programme_id, id, tenant_id, profile_id, enrolled_at FROM loyalty_members;");
            migrationBuilder.Sql("UPDATE loyalty_entries SET brand_id = tenant_id;");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "loyalty_member_profiles");

            migrationBuilder.DropTable(
                name: "loyalty_programme_brands");

            migrationBuilder.DropIndex(
                name: "ix_loyalty_programmes_tenant_id",
                table: "loyalty_programmes");

            migrationBuilder.DropIndex(
                name: "ix_loyalty_entries_programme_id_created_at_brand_id",
                table: "loyalty_entries");

            migrationBuilder.DropColumn(
                name: "shared",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "brand_id",
                table: "loyalty_entries");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_programmes_tenant_id",
                table: "loyalty_programmes",
                column: "tenant_id",
                unique: true);
        }
    }
}
