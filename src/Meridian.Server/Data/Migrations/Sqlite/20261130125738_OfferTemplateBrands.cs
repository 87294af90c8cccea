using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class OfferTemplateBrands : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "offer_template_brands",
                columns: table => new
                {
                    template_id = table.Column<long>(type: "INTEGER", nullable: false),
                    brand_id = table.Column<long>(type: "INTEGER", nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_template_brands", x => new { x.template_id, x.brand_id });
                    table.ForeignKey(
                        name: "fk_offer_template_brands_offer_templates_template_id",
                        column: x => x.template_id,
                        principalTable: "offer_templates",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_offer_template_brands_brand_id_tenant_id",
                table: "offer_template_brands",
                columns: new[] { "brand_id", "tenant_id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "offer_template_brands");
        }
    }
}
