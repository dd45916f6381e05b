"""billing: subscription plans and their prices, customer subscriptions, billing cycles (unique per subscription
and period start: the exactly-once claim of a renewal)

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cityos.db import rls

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enums' values as of this revision.
INTERVALS = ("day", "week", "month", "year")
PLAN_STATUSES = ("active", "archived")
SUBSCRIPTION_STATUSES = ("incomplete", "trialing", "active", "past_due", "paused", "canceled", "expired")
CYCLE_STATUSES = ("pending", "charging", "paid", "failed")
TABLES = ("subscription_plan", "subscription_plan_price", "customer_subscription", "billing_cycle")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _owned() -> list[sa.Column[object]]:
    return [sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


def _fk(table: str, columns: list[str], target: str, target_columns: list[str], **kw: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_{'_'.join(columns)}_{target}")
    return sa.ForeignKeyConstraint(columns, [f"{target}.{c}" for c in target_columns], name=name, **kw)


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "subscription_plan", *_owned(),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("variant_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("interval", sa.String(10), nullable=False),
        sa.Column("interval_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("trial_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(20), server_default="active", nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_subscription_plan")),
        _fk("subscription_plan", ["tenant_id", "store_id"], "store", ["tenant_id", "id"], ondelete="CASCADE"),
        _fk("subscription_plan", ["tenant_id", "product_id"], "product", ["tenant_id", "id"], ondelete="CASCADE"),
        _fk("subscription_plan", ["tenant_id", "variant_id"], "variant", ["tenant_id", "id"], ondelete="CASCADE"),
        _fk("subscription_plan", ["tenant_id", "vendor_id"], "vendor", ["tenant_id", "id"]),
        sa.CheckConstraint(_in("interval", INTERVALS), name=op.f("ck_subscription_plan_interval")),
        sa.CheckConstraint(_in("status", PLAN_STATUSES), name=op.f("ck_subscription_plan_status")),
        sa.CheckConstraint("interval_count between 1 and 366", name=op.f("ck_subscription_plan_interval_count_range")),
        sa.CheckConstraint("trial_days between 0 and 730", name=op.f("ck_subscription_plan_trial_days_range")),
    )
    op.create_index("ix_subscription_plan_tenant_store", "subscription_plan",
                    ["tenant_id", "store_id", "created_at", "id"])
    op.create_index("ix_subscription_plan_tenant_vendor", "subscription_plan",
                    ["tenant_id", "vendor_id", "created_at", "id"])
    op.create_table(
        "subscription_plan_price", *_owned(),
        sa.Column("plan_id", sa.UUID(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("setup_fee", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_subscription_plan_price")),
        _fk("subscription_plan_price", ["tenant_id", "plan_id"], "subscription_plan", ["tenant_id", "id"],
            ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["currency_code"], ["currency.code"],
                                name=op.f("fk_subscription_plan_price_currency_code_currency")),
        sa.UniqueConstraint("tenant_id", "plan_id", "currency_code",
                            name=op.f("uq_subscription_plan_price_tenant_id_plan_id_currency_code")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_subscription_plan_price_amount_positive")),
        sa.CheckConstraint("setup_fee >= 0", name=op.f("ck_subscription_plan_price_setup_fee_not_negative")),
    )
    op.create_table(
        "customer_subscription", *_owned(),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("plan_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(20), server_default="incomplete", nullable=False),
        sa.Column("anchor", ts, nullable=False),
        sa.Column("periods_billed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("current_period_start", ts, nullable=False),
        sa.Column("current_period_end", ts, nullable=False),
        sa.Column("trial_end", ts, nullable=True),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True),
        sa.Column("stripe_payment_method_id", sa.String(255), nullable=True),
        sa.Column("setup_intent_id", sa.String(255), nullable=True),
        sa.Column("first_payment_intent_id", sa.String(255), nullable=True),
        sa.Column("last_decline_code", sa.String(100), nullable=True),
        sa.Column("last_payment_error", sa.String(1000), nullable=True),
        sa.Column("canceled_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_customer_subscription")),
        _fk("customer_subscription", ["tenant_id", "plan_id"], "subscription_plan", ["tenant_id", "id"]),
        _fk("customer_subscription", ["tenant_id", "store_id"], "store", ["tenant_id", "id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["currency_code"], ["currency.code"],
                                name=op.f("fk_customer_subscription_currency_code_currency")),
        sa.CheckConstraint(_in("status", SUBSCRIPTION_STATUSES), name=op.f("ck_customer_subscription_status")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_customer_subscription_quantity_positive")),
        sa.CheckConstraint("current_period_end > current_period_start", name=op.f("ck_customer_subscription_period_order")),
    )
    op.create_index("ix_customer_subscription_tenant_customer", "customer_subscription",
                    ["tenant_id", "customer_id", "created_at", "id"])
    op.create_index("ix_customer_subscription_due", "customer_subscription",
                    ["tenant_id", "status", "current_period_end"])
    op.create_index("ix_customer_subscription_tenant_plan", "customer_subscription", ["tenant_id", "plan_id"])
    op.create_table(
        "billing_cycle", *_owned(),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column("period_start", ts, nullable=False),
        sa.Column("period_end", ts, nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_until", ts, nullable=True),
        sa.Column("payment_intent_id", sa.String(255), nullable=True),
        sa.Column("charge_id", sa.String(255), nullable=True),
        sa.Column("decline_code", sa.String(100), nullable=True),
        sa.Column("failure_message", sa.String(1000), nullable=True),
        sa.Column("charged_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_billing_cycle")),
        sa.ForeignKeyConstraint(["tenant_id", "subscription_id"], ["customer_subscription.tenant_id",
                                                                   "customer_subscription.id"],
                                name=op.f("fk_billing_cycle_subscription"), ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "subscription_id", "period_start",
                            name=op.f("uq_billing_cycle_tenant_id_subscription_id_period_start")),
        sa.CheckConstraint(_in("status", CYCLE_STATUSES), name=op.f("ck_billing_cycle_status")),
        sa.CheckConstraint("period_end > period_start", name=op.f("ck_billing_cycle_period_order")),
    )
    op.create_index("ix_billing_cycle_tenant_status", "billing_cycle", ["tenant_id", "status", "lease_until"])
    for table in TABLES:
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        rls.disable_tenant_rls(table)
        op.drop_table(table)
