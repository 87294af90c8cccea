using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class LoyaltyPendingAndEarningRules : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "combination",
                table: "loyalty_programmes",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<string>(
                name: "excluded_categories",
                table: "loyalty_programmes",
                type: "TEXT",
                maxLength: 20000,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "excluded_skus",
                table: "loyalty_programmes",
                type: "TEXT",
                maxLength: 20000,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<long>(
                name: "negative_limit",
                table: "loyalty_programmes",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<int>(
                name: "pending_days",
                table: "loyalty_programmes",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "refund_shortfall",
                table: "loyalty_programmes",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "rounding",
                table: "loyalty_programmes",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<long>(
                name: "owed",
                table: "loyalty_members",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<long>(
                name: "pending",
                table: "loyalty_members",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<DateTime>(
                name: "held_until",
                table: "loyalty_lots",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "earning_rule_id",
                table: "loyalty_entries",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "pending",
                table: "loyalty_entries",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.CreateTable(
                name: "loyalty_campaigns",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    programme_id = table.Column<long>(type: "INTEGER", nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    multiplier_percent = table.Column<int>(type: "INTEGER", nullable: false),
                    starts_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    ends_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    tier_id = table.Column<long>(type: "INTEGER", nullable: true),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_campaigns", x => x.id);
                    table.ForeignKey(
                        name: "fk_loyalty_campaigns_loyalty_programme_programme_id",
                        column: x => x.programme_id,
                        principalTable: "loyalty_programmes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_loyalty_campaigns_loyalty_tier_tier_id",
                        column: x => x.tier_id,
                        principalTable: "loyalty_tiers",
                        principalColumn: "id");
                });

            migrationBuilder.CreateTable(
                name: "loyalty_earning_rules",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    programme_id = table.Column<long>(type: "INTEGER", nullable: false),
                    @event = table.Column<string>(name: "event", type: "TEXT", maxLength: 200, nullable: false),
                    points = table.Column<long>(type: "INTEGER", nullable: false),
                    per_day_cap = table.Column<int>(type: "INTEGER", nullable: true),
                    per_member_cap = table.Column<int>(type: "INTEGER", nullable: true),
                    active = table.Column<bool>(type: "INTEGER", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_earning_rules", x => x.id);
                    table.ForeignKey(
                        name: "fk_loyalty_earning_rules_loyalty_programme_programme_id",
                        column: x => x.programme_id,
                        principalTable: "loyalty_programmes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.AddCheckConstraint(
                name: "ck_loyalty_members_owed",
                table: "loyalty_members",
                sql: "owed >= 0 AND (owed = 0 OR balance = 0)");

            migrationBuilder.AddCheckConstraint(
                name: "ck_loyalty_members_pending",
                table: "loyalty_members",
                sql: "pending >= 0");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_lots_held_until",
                table: "loyalty_lots",
                column: "held_until",
                filter: "held_until IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_member_id_earning_rule_id_created_at",
                table: "loyalty_entries",
                columns: new[] { "member_id", "earning_rule_id", "created_at" },
                filter: "earning_rule_id IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_campaigns_programme_id_ends_at",
                table: "loyalty_campaigns",
                columns: new[] { "programme_id", "ends_at" });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_campaigns_tier_id",
                table: "loyalty_campaigns",
                column: "tier_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_earning_rules_programme_id_event",
                table: "loyalty_earning_rules",
                columns: new[] { "programme_id", "event" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "loyalty_campaigns");

            migrationBuilder.DropTable(
                name: "loyalty_earning_rules");

            migrationBuilder.DropCheckConstraint(
                name: "ck_loyalty_members_owed",
                table: "loyalty_members");

            migrationBuilder.DropCheckConstraint(
                name: "ck_loyalty_members_pending",
                table: "loyalty_members");

            migrationBuilder.DropIndex(
                name: "ix_loyalty_lots_held_until",
                table: "loyalty_lots");

            migrationBuilder.DropIndex(
                name: "ix_loyalty_entries_member_id_earning_rule_id_created_at",
                table: "loyalty_entries");

            migrationBuilder.DropColumn(
                name: "combination",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "excluded_categories",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "excluded_skus",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "negative_limit",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "pending_days",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "refund_shortfall",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "rounding",
                table: "loyalty_programmes");

            migrationBuilder.DropColumn(
                name: "owed",
                table: "loyalty_members");

            migrationBuilder.DropColumn(
                name: "pending",
                table: "loyalty_members");

            migrationBuilder.DropColumn(
                name: "held_until",
                table: "loyalty_lots");

            migrationBuilder.DropColumn(
                name: "earning_rule_id",
                table: "loyalty_entries");

            migrationBuilder.DropColumn(
                name: "pending",
                table: "loyalty_entries");
        }
    }
}
