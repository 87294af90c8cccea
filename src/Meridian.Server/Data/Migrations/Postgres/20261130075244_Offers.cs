using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Meridian.Data.Migrations.Postgres
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
                    name = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: false),
                    lease_owner = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    lease_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    last_run_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_jobs", x => x.name);
                });

            migrationBuilder.CreateTable(
                name: "offer_redemptions",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    group_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false),
                    order_reference = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    idempotency_key = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    request_hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    total_discount = table.Column<long>(type: "bigint", nullable: false),
                    response = table.Column<string>(type: "text", nullable: false),
                    status = table.Column<int>(type: "integer", nullable: false),
                    created_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    reversed_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    reverse_reason = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_offer_redemptions", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "offer_templates",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    group_id = table.Column<long>(type: "bigint", nullable: false),
                    name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    kind = table.Column<int>(type: "integer", nullable: false),
                    value = table.Column<long>(type: "bigint", nullable: false),
                    cap = table.Column<long>(type: "bigint", nullable: true),
                    free_sku = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    min_spend = table.Column<long>(type: "bigint", nullable: false),
                    conditions = table.Column<string>(type: "character varying(20000)", maxLength: 20000, nullable: false),
                    valid_from = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    valid_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    valid_days = table.Column<int>(type: "integer", nullable: true),
                    stock = table.Column<long>(type: "bigint", nullable: true),
                    remaining = table.Column<long>(type: "bigint", nullable: false),
                    issued = table.Column<long>(type: "bigint", nullable: false),
                    per_customer_limit = table.Column<int>(type: "integer", nullable: true),
                    per_day_limit = table.Column<int>(type: "integer", nullable: true),
                    budget = table.Column<long>(type: "bigint", nullable: true),
                    budget_used = table.Column<long>(type: "bigint", nullable: false),
                    stacking = table.Column<int>(type: "integer", nullable: false),
                    stack_with = table.Column<string>(type: "character varying(4000)", maxLength: 4000, nullable: false),
                    priority = table.Column<int>(type: "integer", nullable: false),
                    return_on_refund = table.Column<bool>(type: "boolean", nullable: false),
                    expiring_notice_days = table.Column<int>(type: "integer", nullable: false),
                    status = table.Column<int>(type: "integer", nullable: false),
                    created_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
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
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    template_id = table.Column<long>(type: "bigint", nullable: false),
                    code = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: true),
                    status = table.Column<int>(type: "integer", nullable: false),
                    source = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    issue_key = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    issue_hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    issued_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    valid_from = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    valid_until = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    redemption_id = table.Column<long>(type: "bigint", nullable: true),
                    discount = table.Column<long>(type: "bigint", nullable: false),
                    redeemed_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    notice_sent_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    created_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
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
                    template_id = table.Column<long>(type: "bigint", nullable: false),
                    profile_id = table.Column<long>(type: "bigint", nullable: false),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    count = table.Column<int>(type: "integer", nullable: false)
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
                    template_id = table.Column<long>(type: "bigint", nullable: false),
                    day = table.Column<int>(type: "integer", nullable: false),
                    tenant_id = table.Column<long>(type: "bigint", nullable: false),
                    count = table.Column<int>(type: "integer", nullable: false)
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
