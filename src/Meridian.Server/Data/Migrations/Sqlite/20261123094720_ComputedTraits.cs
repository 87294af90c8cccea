using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ComputedTraits : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTime>(
                name: "first_order_at",
                table: "profiles",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "last_order_at",
                table: "profiles",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "order_count",
                table: "profiles",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<DateTime>(
                name: "previous_order_at",
                table: "profiles",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "total_spend_minor",
                table: "profiles",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "first_order_at",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "last_order_at",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "order_count",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "previous_order_at",
                table: "profiles");

            migrationBuilder.DropColumn(
                name: "total_spend_minor",
                table: "profiles");
        }
    }
}
