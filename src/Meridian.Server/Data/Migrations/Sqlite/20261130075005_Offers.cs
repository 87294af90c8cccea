using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Meridian.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Offers : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "offer_jobs",
                columns: table => new
                {
                    name = table.Column<string>(type: "TEXT", maxLength: 50, nullable: false),
                    lease_owner = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "TEXT", nullable: true),
                    last_run_at = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_jobs", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "offer_redemptions",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    group_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    order_reference = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    idempotency_key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    request_hash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    total_discount = table.Column<long>(type: "INTEGER", nullable: false),
                    response = table.Column<string>(type: "TEXT", nullable: false),
                    status = table.Column<int>(type: "INTEGER", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    reversed_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    reverse_reason = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_redemptions", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "offer_templates",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    group_id = table.Column<long>(type: "INTEGER", nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    kind = table.Column<int>(type: "INTEGER", nullable: false),
                    value = table.Column<long>(type: "INTEGER", nullable: false),
                    cap = table.Column<long>(type: "INTEGER", nullable: true),
                    free_sku = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    min_spend = table.Column<long>(type: "INTEGER", nullable: false),
                    conditions = table.Column<string>(type: "TEXT", maxLength: 20000, nullable: false),
                    valid_from = table.Column<DateTime>(type: "TEXT", nullable: true),
                    valid_until = table.Column<DateTime>(type: "TEXT", nullable: true),
                    valid_days = table.Column<int>(type: "INTEGER", nullable: true),
                    stock = table.Column<long>(type: "INTEGER", nullable: true),
                    remaining = table.Column<long>(type: "INTEGER", nullable: false),
                    issued = table.Column<long>(type: "INTEGER", nullable: false),
                    per_customer_limit = table.Column<int>(type: "INTEGER", nullable: true),
                    per_day_limit = table.Column<int>(type: "INTEGER", nullable: true),
                    budget = table.Column<long>(type: "INTEGER", nullable: true),
                    budget_used = table.Column<long>(type: "INTEGER", nullable: false),
                    stacking = table.Column<int>(type: "INTEGER", nullable: false),
                    stack_with = table.Column<string>(type: "TEXT", maxLength: 4000, nullable: false),
                    priority = table.Column<int>(type: "INTEGER", nullable: false),
                    return_on_refund = table.Column<bool>(type: "INTEGER", nullable: false),
                    expiring_notice_days = table.Column<int>(type: "INTEGER", nullable: false),
                    status = table.Column<int>(type: "INTEGER", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_templates", x => x.id);
                    table.CheckConstraint("ck_offer_templates_budget", "budget IS NULL OR budget_used <= budget");
                    table.CheckConstraint("ck_offer_templates_remaining", "remaining >= 0");
                });

            migrationBuilder.CreateTable(
                name: "offer_coupons",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    template_id = table.Column<long>(type: "INTEGER", nullable: false),
                    code = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: true),
                    status = table.Column<int>(type: "INTEGER", nullable: false),
                    source = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    issue_key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    issue_hash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    issued_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    valid_from = table.Column<DateTime>(type: "TEXT", nullable: true),
                    valid_until = table.Column<DateTime>(type: "TEXT", nullable: true),
                    redemption_id = table.Column<long>(type: "INTEGER", nullable: true),
                    discount = table.Column<long>(type: "INTEGER", nullable: false),
                    redeemed_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    notice_sent_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_coupons", x => x.id);
                    table.ForeignKey(
                        name: "fk_offer_coupons_offer_templates_template_id",
                        column: x => x.template_id,
                        principalTable: "offer_templates",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "offer_customer_counts",
                columns: table => new
                {
                    template_id = table.Column<long>(type: "INTEGER", nullable: false),
                    profile_id = table.Column<long>(type: "INTEGER", nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    count = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_customer_counts", x => new { x.template_id, x.profile_id });
                    table.ForeignKey(
                        name: "fk_offer_customer_counts_offer_templates_template_id",
                        column: x => x.template_id,
                        principalTable: "offer_templates",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "offer_daily_counts",
                columns: table => new
                {
                    template_id = table.Column<long>(type: "INTEGER", nullable: false),
                    day = table.Column<int>(type: "INTEGER", nullable: false),
                    tenant_id = table.Column<long>(type: "INTEGER", nullable: false),
                    count = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_daily_counts", x => new { x.template_id, x.day });
                    table.ForeignKey(
                        name: "fk_offer_daily_counts_offer_templates_template_id",
                        column: x => x.template_id,
                        principalTable: "offer_templates",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_offer_coupons_profile_id_status",
                table: "offer_coupons",
                columns: new[] { "profile_id", "status" });

            migrationBuilder.CreateIndex(
                name: "ix_offer_coupons_redemption_id",
                table: "offer_coupons",
                column: "redemption_id");

            migrationBuilder.CreateIndex(
                name: "ix_offer_coupons_status_valid_until",
                table: "offer_coupons",
                columns: new[] { "status", "valid_until" });

            migrationBuilder.CreateIndex(
                name: "ix_offer_coupons_template_id_id",
                table: "offer_coupons",
                columns: new[] { "template_id", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_offer_coupons_tenant_id_code",
                table: "offer_coupons",
                columns: new[] { "tenant_id", "code" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_offer_coupons_tenant_id_issue_key",
                table: "offer_coupons",
                columns: new[] { "tenant_id", "issue_key" },
                unique: true,
                filter: "issue_key IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_offer_redemptions_tenant_id_idempotency_key",
                table: "offer_redemptions",
                columns: new[] { "tenant_id", "idempotency_key" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_offer_redemptions_tenant_id_order_reference",
                table: "offer_redemptions",
                columns: new[] { "tenant_id", "order_reference" });

            migrationBuilder.CreateIndex(
                name: "ix_offer_templates_tenant_id_id",
                table: "offer_templates",
                columns: new[] { "tenant_id", "id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "offer_coupons");

            migrationBuilder.DropTable(
                name: "offer_customer_counts");

            migrationBuilder.DropTable(
                name: "offer_daily_counts");

            migrationBuilder.DropTable(
                name: "offer_jobs");

            migrationBuilder.DropTable(
                name: "offer_redemptions");

            migrationBuilder.DropTable(
                name: "offer_templates");
        }
    }
}
