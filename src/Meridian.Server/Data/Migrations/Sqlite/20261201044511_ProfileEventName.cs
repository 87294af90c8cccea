using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
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
                type: "TEXT",
                maxLength: 500,
                nullable: true);

            // The timeline's copy of each event's name, for the events resolved before this migration.
            migrationBuilder.Sql("UPDATE profile_events SET name = (SELECT e.name FROM events e WHERE e.id = profile_events.event_id);");

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
