using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class LoyaltyRejectedPostings : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "loyalty_rejected_postings",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    received_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    position = table.Column<int>(type: "INTEGER", nullable: false),
                    member_id = table.Column<long>(type: "INTEGER", nullable: true),
                    points = table.Column<long>(type: "INTEGER", nullable: true),
                    source_key = table.Column<string>(type: "TEXT", maxLength: 250, nullable: true),
                    reference = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    problem_type = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    detail = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_rejected_postings", x => x.id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_rejected_postings_tenant_id",
                table: "loyalty_rejected_postings",
                column: "tenant_id");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "loyalty_rejected_postings");
        }
    }
}
