using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class PartialReversalIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_loyalty_entries_reverses_entry_id",
                table: "loyalty_entries");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_reverses_entry_id",
                table: "loyalty_entries",
                column: "reverses_entry_id",
                filter: "reverses_entry_id IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_loyalty_entries_reverses_entry_id",
                table: "loyalty_entries");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_reverses_entry_id",
                table: "loyalty_entries",
                column: "reverses_entry_id");
        }
    }
}
