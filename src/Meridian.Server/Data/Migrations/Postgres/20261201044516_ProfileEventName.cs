using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class ProfileEventName : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "name",
                table: "profile_events",
                type: "character varying(500)",
                maxLength: 500,
                nullable: true);

            // The timeline's copy of each event's name, for the events resolved before this migration.
            migrationBuilder.Sql("UPDATE profile_events pe SET name = e.name FROM events e WHERE e.id = pe.event_id AND e.name IS NOT NULL;");

            migrationBuilder.CreateIndex(
                name: "ix_profile_events_profile_id_name_timestamp",
                table: "profile_events",
                columns: new[] { "profile_id", "name", "timestamp" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_profile_events_profile_id_name_timestamp",
                table: "profile_events");

            migrationBuilder.DropColumn(
                name: "name",
                table: "profile_events");
        }
    }
}
