using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class LoyaltyCheckoutRate : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "checkout_points_per_currency_unit",
                table: "loyalty_programmes",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "checkout_points_per_currency_unit",
                table: "loyalty_programmes");
        }
    }
}
