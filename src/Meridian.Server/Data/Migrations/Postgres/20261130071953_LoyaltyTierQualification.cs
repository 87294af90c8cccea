using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class LoyaltyTierQualification : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "qualifying_spend",
                table: "loyalty_tiers",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<int>(
                name: "tier_basis",
                table: "loyalty_programmes",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "tier_downgrade",
                table: "loyalty_programmes",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "tier_review_days",
                table: "loyalty_programmes",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "tier_window",
                table: "loyalty_programmes",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "tier_window_days",
                table: "loyalty_programmes",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<DateTime>(
                name: "tier_reviewed_at",
                table: "loyalty_members",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "qualifying_spend",
                table: "loyalty_entries",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "qualifying_spend",
                table: "loyalty_tiers");

            migrationBuilder.DropColumn(
                name: "tier_basis",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "tier_downgrade",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "tier_review_days",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "tier_window",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "tier_window_days",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "tier_reviewed_at",
                table: "loyalty_members");

            migrationBuilder.DropColumn(
                name: "qualifying_spend",
                table: "loyalty_entries");
        }
    }
}
