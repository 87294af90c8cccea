using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Loyalty : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "loyalty_idempotency",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    request_hash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    status_code = table.Column<int>(type: "INTEGER", nullable: false),
                    body = table.Column<string>(type: "TEXT", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_idempotency", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_jobs",
                columns: table => new
                {
                    name = table.Column<string>(type: "TEXT", maxLength: 50, nullable: false),
                    lease_owner = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "TEXT", nullable: true),
                    last_run_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    position_tx = table.Column<long>(type: "INTEGER", nullable: false),
                    position_id = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_jobs", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_programmes",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    group_id = table.Column<long>(type: "INTEGER", nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    expiry = table.Column<int>(type: "INTEGER", nullable: false),
                    expiry_days = table.Column<int>(type: "INTEGER", nullable: false),
                    expiring_notice_days = table.Column<int>(type: "INTEGER", nullable: false),
                    points_per_currency_unit = table.Column<long>(type: "INTEGER", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_programmes", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_tiers",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    programme_id = table.Column<long>(type: "INTEGER", nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    rank = table.Column<int>(type: "INTEGER", nullable: false),
                    qualifying_points = table.Column<long>(type: "INTEGER", nullable: false),
                    multiplier_percent = table.Column<int>(type: "INTEGER", nullable: false),
                    benefits = table.Column<string>(type: "TEXT", maxLength: 4000, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_tiers", x => x.id);
                    table.ForeignKey(
                        name: "fk_loyalty_tiers_loyalty_programmes_programme_id",
                        column: x => x.programme_id,
                        principalTable: "loyalty_programmes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_members",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    programme_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    tier_id = table.Column<long>(type: "INTEGER", nullable: true),
                    tier_floor_id = table.Column<long>(type: "INTEGER", nullable: true),
                    balance = table.Column<long>(type: "INTEGER", nullable: false),
                    qualifying_points = table.Column<long>(type: "INTEGER", nullable: false),
                    version = table.Column<long>(type: "INTEGER", nullable: false),
                    enrolled_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_members", x => x.id);
                    table.CheckConstraint("ck_loyalty_members_balance", "balance >= 0");
                    table.ForeignKey(
                        name: "fk_loyalty_members_loyalty_programmes_programme_id",
                        column: x => x.programme_id,
                        principalTable: "loyalty_programmes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_loyalty_members_loyalty_tiers_tier_floor_id",
                        column: x => x.tier_floor_id,
                        principalTable: "loyalty_tiers",
                        principalColumn: "id");
                    table.ForeignKey(
                        name: "fk_loyalty_members_loyalty_tiers_tier_id",
                        column: x => x.tier_id,
                        principalTable: "loyalty_tiers",
                        principalColumn: "id");
                });

            migrationBuilder.CreateTable(
                name: "loyalty_entries",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    programme_id = table.Column<long>(type: "INTEGER", nullable: false),
                    member_id = table.Column<long>(type: "INTEGER", nullable: false),
                    kind = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    points = table.Column<long>(type: "INTEGER", nullable: false),
                    account = table.Column<string>(type: "TEXT", maxLength: 50, nullable: false),
                    balance_after = table.Column<long>(type: "INTEGER", nullable: false),
                    reverses_entry_id = table.Column<long>(type: "INTEGER", nullable: true),
                    rule = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    base_points = table.Column<long>(type: "INTEGER", nullable: true),
                    reason = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    reference = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    source_key = table.Column<string>(type: "TEXT", maxLength: 250, nullable: true),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_entries", x => x.id);
                    table.ForeignKey(
                        name: "fk_loyalty_entries_loyalty_entries_reverses_entry_id",
                        column: x => x.reverses_entry_id,
                        principalTable: "loyalty_entries",
                        principalColumn: "id");
                    table.ForeignKey(
                        name: "fk_loyalty_entries_loyalty_members_member_id",
                        column: x => x.member_id,
                        principalTable: "loyalty_members",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_lots",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    member_id = table.Column<long>(type: "INTEGER", nullable: false),
                    entry_id = table.Column<long>(type: "INTEGER", nullable: false),
                    granted = table.Column<long>(type: "INTEGER", nullable: false),
                    remaining = table.Column<long>(type: "INTEGER", nullable: false),
                    expires_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    notice_sent_at = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_lots", x => x.id);
                    table.CheckConstraint("ck_loyalty_lots_remaining", "remaining >= 0 AND remaining <= granted");
                    table.ForeignKey(
                        name: "fk_loyalty_lots_loyalty_entries_entry_id",
                        column: x => x.entry_id,
                        principalTable: "loyalty_entries",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "loyalty_lot_draws",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    entry_id = table.Column<long>(type: "INTEGER", nullable: false),
                    lot_id = table.Column<long>(type: "INTEGER", nullable: false),
                    points = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_loyalty_lot_draws", x => x.id);
                    table.ForeignKey(
                        name: "fk_loyalty_lot_draws_loyalty_entries_entry_id",
                        column: x => x.entry_id,
                        principalTable: "loyalty_entries",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_loyalty_lot_draws_loyalty_lots_lot_id",
                        column: x => x.lot_id,
                        principalTable: "loyalty_lots",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_member_id_id",
                table: "loyalty_entries",
                columns: new[] { "member_id", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_member_id_source_key",
                table: "loyalty_entries",
                columns: new[] { "member_id", "source_key" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_entries_reverses_entry_id",
                table: "loyalty_entries",
                column: "reverses_entry_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_idempotency_tenant_id_key",
                table: "loyalty_idempotency",
                columns: new[] { "tenant_id", "key" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_lot_draws_entry_id",
                table: "loyalty_lot_draws",
                column: "entry_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_lot_draws_lot_id",
                table: "loyalty_lot_draws",
                column: "lot_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_lots_entry_id",
                table: "loyalty_lots",
                column: "entry_id",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_lots_expires_at",
                table: "loyalty_lots",
                column: "expires_at",
                filter: "remaining > 0");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_lots_member_id_expires_at",
                table: "loyalty_lots",
                columns: new[] { "member_id", "expires_at" });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_members_programme_id_profile_id",
                table: "loyalty_members",
                columns: new[] { "programme_id", "profile_id" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_members_tenant_id_profile_id",
                table: "loyalty_members",
                columns: new[] { "tenant_id", "profile_id" });

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_members_tier_floor_id",
                table: "loyalty_members",
                column: "tier_floor_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_members_tier_id",
                table: "loyalty_members",
                column: "tier_id");

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_programmes_tenant_id",
                table: "loyalty_programmes",
                column: "tenant_id",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_loyalty_tiers_programme_id_rank",
                table: "loyalty_tiers",
                columns: new[] { "programme_id", "rank" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "loyalty_idempotency");

            migrationBuilder.DropTable(
                name: "loyalty_jobs");

            migrationBuilder.DropTable(
                name: "loyalty_lot_draws");

            migrationBuilder.DropTable(
                name: "loyalty_lots");

            migrationBuilder.DropTable(
                name: "loyalty_entries");

            migrationBuilder.DropTable(
                name: "loyalty_members");

            migrationBuilder.DropTable(
                name: "loyalty_tiers");

            migrationBuilder.DropTable(
                name: "loyalty_programmes");
        }
    }
}
