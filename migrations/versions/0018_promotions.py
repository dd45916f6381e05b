"""promotions: a store's promotions (codes and automatic ones), the store setting that vendors' promotions need
approval, codes applied to carts, redemptions (a use per order, released on cancel), each order line's part of a
promotion and who funds it, a subscription's promotion for N renewals; order lines and the commission ledger
record the promotion discount and its funding

Revision ID: 0018
Revises: 0022 (written on 0014; re-chained at merge)
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0018"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enums' values as of this revision.
PROMOTION_STATUS = ("pending_approval", "active", "archived")
PROMOTION_ACTION = ("order_percent", "order_fixed", "lines_percent", "lines_fixed", "free_shipping", "buy_x_get_y",
                    "tiered")
STACKING = ("exclusive", "combinable")
FUNDING = ("platform", "vendor", "split")
REDEMPTION_STATUS = ("active", "released")
TABLES = ("promotion", "promotion_settings", "cart_promotion", "promotion_redemption", "order_line_promotion",
          "subscription_promotion")
AUDITED = ("promotion", "promotion_settings", "subscription_promotion")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _owned() -> list[sa.Column[object]]:
    return [sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


def _tenant_fk(table: str, columns: list[str], target: str, target_columns: list[str],
               ondelete: str | None = "CASCADE") -> sa.ForeignKeyConstraint:
    name = f"fk_{table}_{'_'.join(columns)}_{target}"
    return sa.ForeignKeyConstraint(columns, [f"{target}.{column}" for column in target_columns], name=name,
                                   ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "promotion", *_owned(),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), server_default="active", nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stacking", sa.String(20), server_default="combinable", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("percent", sa.Numeric(7, 4), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("currency_code", sa.String(3), nullable=True),
        sa.Column("buy_quantity", sa.Integer(), nullable=True),
        sa.Column("get_quantity", sa.Integer(), nullable=True),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("conditions", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("funding", sa.String(20), server_default="platform", nullable=False),
        sa.Column("vendor_share_percent", sa.Numeric(7, 4), server_default="0", nullable=False),
        sa.Column("max_cycles", sa.Integer(), nullable=True),
        sa.Column("approved_by", sa.String(200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk("promotion", ["tenant_id", "store_id"], "store", ["tenant_id", "id"]),
        _tenant_fk("promotion", ["tenant_id", "vendor_id"], "vendor", ["tenant_id", "id"]),
        sa.ForeignKeyConstraint(["currency_code"], ["currency.code"], name="fk_promotion_currency_code_currency"),
        sa.CheckConstraint(_in("status", PROMOTION_STATUS), name=op.f("ck_promotion_status")),
        sa.CheckConstraint(_in("action", PROMOTION_ACTION), name=op.f("ck_promotion_action")),
        sa.CheckConstraint(_in("stacking", STACKING), name=op.f("ck_promotion_stacking")),
        sa.CheckConstraint(_in("funding", FUNDING), name=op.f("ck_promotion_funding")),
        sa.CheckConstraint("percent is null or (percent >= 0 and percent <= 100)", name=op.f("ck_promotion_percent_range")),
        sa.CheckConstraint("vendor_share_percent >= 0 and vendor_share_percent <= 100",
                           name=op.f("ck_promotion_vendor_share_range")),
        sa.CheckConstraint("amount is null or amount >= 0", name=op.f("ck_promotion_amount_not_negative")),
        sa.CheckConstraint("times_used >= 0 and (usage_limit is null or times_used <= usage_limit)",
                           name=op.f("ck_promotion_uses_within_limit")),
        sa.CheckConstraint("starts_at is null or ends_at is null or starts_at < ends_at",
                           name=op.f("ck_promotion_dates_in_order")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_promotion"))
    op.create_index("uq_promotion_tenant_store_code", "promotion", ["tenant_id", "store_id", sa.text("lower(code)")],
                    unique=True, postgresql_where=sa.text("code is not null"))
    op.create_index("ix_promotion_tenant_store", "promotion", ["tenant_id", "store_id", "created_at", "id"])
    op.create_index("ix_promotion_tenant_vendor", "promotion", ["tenant_id", "vendor_id", "created_at", "id"])

    op.create_table(
        "promotion_settings", *_owned(),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("vendor_approval_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        _tenant_fk("promotion_settings", ["tenant_id", "store_id"], "store", ["tenant_id", "id"]),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_promotion_settings"),
        sa.UniqueConstraint("tenant_id", "store_id", name="uq_promotion_settings_tenant_id_store_id"))

    op.create_table(
        "cart_promotion", *_owned(),
        sa.Column("cart_id", sa.UUID(), nullable=False),
        sa.Column("promotion_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        _tenant_fk("cart_promotion", ["tenant_id", "cart_id"], "cart", ["tenant_id", "id"]),
        _tenant_fk("cart_promotion", ["tenant_id", "promotion_id"], "promotion", ["tenant_id", "id"]),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_cart_promotion"),
        sa.UniqueConstraint("tenant_id", "cart_id", "promotion_id",
                            name="uq_cart_promotion_tenant_id_cart_id_promotion_id"))

    op.create_table(
        "promotion_redemption", *_owned(),
        sa.Column("promotion_id", sa.UUID(), nullable=False),
        sa.Column("order_id", sa.UUID(), nullable=False),
        sa.Column("customer_key", sa.String(320), nullable=True),
        sa.Column("status", sa.String(20), server_default="active", nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("shipping_amount", sa.Integer(), server_default="0", nullable=False),
        sa.Column("order_total", sa.Integer(), server_default="0", nullable=False),
        _tenant_fk("promotion_redemption", ["tenant_id", "promotion_id"], "promotion", ["tenant_id", "id"]),
        _tenant_fk("promotion_redemption", ["tenant_id", "order_id"], "orders", ["tenant_id", "id"]),
        sa.CheckConstraint(_in("status", REDEMPTION_STATUS), name=op.f("ck_promotion_redemption_status")),
        sa.CheckConstraint("amount >= 0 and shipping_amount >= 0", name=op.f("ck_promotion_redemption_amounts_not_negative")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_promotion_redemption"),
        sa.UniqueConstraint("tenant_id", "promotion_id", "order_id",
                            name="uq_promotion_redemption_tenant_id_promotion_id_order_id"))
    op.create_index("ix_promotion_redemption_tenant_customer", "promotion_redemption",
                    ["tenant_id", "promotion_id", "customer_key"])
    op.create_index("ix_promotion_redemption_tenant_order", "promotion_redemption", ["tenant_id", "order_id"])

    op.create_table(
        "order_line_promotion", *_owned(),
        sa.Column("order_id", sa.UUID(), nullable=False),
        sa.Column("vendor_order_id", sa.UUID(), nullable=True),
        sa.Column("order_line_id", sa.UUID(), nullable=False),
        sa.Column("promotion_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("platform_amount", sa.Integer(), nullable=False),
        sa.Column("vendor_amount", sa.Integer(), nullable=False),
        _tenant_fk("order_line_promotion", ["tenant_id", "order_line_id"], "order_line", ["tenant_id", "id"]),
        _tenant_fk("order_line_promotion", ["tenant_id", "promotion_id"], "promotion", ["tenant_id", "id"]),
        sa.CheckConstraint("amount = platform_amount + vendor_amount and platform_amount >= 0 and vendor_amount >= 0",
                           name=op.f("ck_order_line_promotion_funding_adds_up")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_order_line_promotion"),
        sa.UniqueConstraint("tenant_id", "order_line_id", "promotion_id",
                            name="uq_order_line_promotion_tenant_id_order_line_id_promotion_id"))
    op.create_index("ix_order_line_promotion_tenant_promotion", "order_line_promotion", ["tenant_id", "promotion_id"])
    op.create_index("ix_order_line_promotion_tenant_order", "order_line_promotion", ["tenant_id", "order_id"])

    op.create_table(
        "subscription_promotion", *_owned(),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("promotion_id", sa.UUID(), nullable=False),
        sa.Column("cycles", sa.Integer(), nullable=True),
        sa.Column("cycles_used", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "subscription_id"],
                                ["customer_subscription.tenant_id", "customer_subscription.id"],
                                name="fk_subscription_promotion_subscription", ondelete="CASCADE"),
        _tenant_fk("subscription_promotion", ["tenant_id", "promotion_id"], "promotion", ["tenant_id", "id"]),
        sa.CheckConstraint("cycles_used >= 0 and (cycles is null or cycles_used <= cycles)",
                           name=op.f("ck_subscription_promotion_cycles_in_range")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_subscription_promotion"),
        sa.UniqueConstraint("tenant_id", "subscription_id", name="uq_subscription_promotion_tenant_id_subscription_id"))

    # Order lines and the commission ledger: the promotion discount and who funds it (additive columns).
    op.add_column("order_line", sa.Column("promotion_discount", sa.Integer(), server_default="0", nullable=False))
    op.add_column("order_line", sa.Column("promotion_vendor_funded", sa.Integer(), server_default="0",
                                          nullable=False))
    op.add_column("commission_transaction", sa.Column("gross_amount", sa.Integer(), nullable=True))
    for column in ("discount_amount", "platform_discount", "vendor_discount"):
        op.add_column("commission_transaction", sa.Column(column, sa.Integer(), server_default="0", nullable=False))

    for name in TABLES:
        rls.enable_tenant_rls(name)
    for name in AUDITED:
        rls.audit_table(name)


def downgrade() -> None:
    for name in AUDITED:
        rls.unaudit_table(name)
    for name in TABLES:
        rls.disable_tenant_rls(name)
    for column in ("vendor_discount", "platform_discount", "discount_amount", "gross_amount"):
        op.drop_column("commission_transaction", column)
    op.drop_column("order_line", "promotion_vendor_funded")
    op.drop_column("order_line", "promotion_discount")
    for name in reversed(TABLES):
        op.drop_table(name)
