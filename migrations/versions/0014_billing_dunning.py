"""billing, part two: renewal orders (cart, order and snapshot of a cycle), skipped cycles, dunning (attempt rows,
retry times, SCA), customer self-service (cancel at period end, pause, skip, proration credit, shipping address)
and the per-tenant dunning policy

Revision ID: 0014
Revises: 0017 (re-chained after b2b's 0015 and store setup's 0017 reached main first; number kept)
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0014"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enums' values as of this revision.
CYCLE_STATUSES = ("pending", "charging", "paid", "failed", "skipped")
OLD_CYCLE_STATUSES = ("pending", "charging", "paid", "failed")
ATTEMPT_OUTCOMES = ("succeeded", "declined", "action_required")
FINAL_ACTIONS = ("cancel", "pause")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _owned() -> list[sa.Column[object]]:
    return [sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.add_column("customer_subscription", sa.Column("cancel_at_period_end", sa.Boolean(), server_default="false",
                                                     nullable=False))
    op.add_column("customer_subscription", sa.Column("paused_at", ts, nullable=True))
    op.add_column("customer_subscription", sa.Column("skip_period_index", sa.Integer(), nullable=True))
    op.add_column("customer_subscription", sa.Column("credit_balance", sa.Integer(), server_default="0",
                                                     nullable=False))
    op.add_column("customer_subscription", sa.Column("shipping_address", jsonb, nullable=True))
    op.create_check_constraint(op.f("ck_customer_subscription_credit_not_negative"), "customer_subscription",
                               "credit_balance >= 0")

    op.add_column("billing_cycle", sa.Column("cart_id", sa.UUID(), nullable=True))
    op.add_column("billing_cycle", sa.Column("order_id", sa.UUID(), nullable=True))
    op.add_column("billing_cycle", sa.Column("snapshot", jsonb, nullable=True))
    op.add_column("billing_cycle", sa.Column("credit_applied", sa.Integer(), server_default="0", nullable=False))
    op.add_column("billing_cycle", sa.Column("skip_reason", sa.String(500), nullable=True))
    op.add_column("billing_cycle", sa.Column("failed_at", ts, nullable=True))
    op.add_column("billing_cycle", sa.Column("next_retry_at", ts, nullable=True))
    op.add_column("billing_cycle", sa.Column("action_required", sa.Boolean(), server_default="false",
                                             nullable=False))
    op.create_check_constraint(op.f("ck_billing_cycle_credit_applied_not_negative"), "billing_cycle",
                               "credit_applied >= 0")
    op.drop_constraint(op.f("ck_billing_cycle_status"), "billing_cycle", type_="check")
    op.create_check_constraint(op.f("ck_billing_cycle_status"), "billing_cycle", _in("status", CYCLE_STATUSES))
    op.create_index("ix_billing_cycle_tenant_retry", "billing_cycle", ["tenant_id", "status", "next_retry_at"])

    op.create_table(
        "billing_attempt", *_owned(),
        sa.Column("cycle_id", sa.UUID(), nullable=False),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("payment_intent_id", sa.String(255), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("code", sa.String(100), nullable=True),
        sa.Column("decline_code", sa.String(100), nullable=True),
        sa.Column("message", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_billing_attempt")),
        sa.ForeignKeyConstraint(["tenant_id", "cycle_id"], ["billing_cycle.tenant_id", "billing_cycle.id"],
                                name=op.f("fk_billing_attempt_cycle"), ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "payment_intent_id", "outcome",
                            name=op.f("uq_billing_attempt_tenant_id_payment_intent_id_outcome")),
        sa.CheckConstraint(_in("outcome", ATTEMPT_OUTCOMES), name=op.f("ck_billing_attempt_outcome")),
    )
    op.create_index("ix_billing_attempt_tenant_cycle", "billing_attempt", ["tenant_id", "cycle_id", "created_at"])

    op.create_table(
        "billing_settings", *_owned(),
        sa.Column("retry_days", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("final_action", sa.String(10), server_default="cancel", nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_billing_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_billing_settings_tenant_id")),
        sa.CheckConstraint(_in("final_action", FINAL_ACTIONS), name=op.f("ck_billing_settings_final_action")),
        sa.CheckConstraint("cardinality(retry_days) between 1 and 10",
                           name=op.f("ck_billing_settings_retry_days_count")),
    )
    for table in ("billing_attempt", "billing_settings"):
        rls.enable_tenant_rls(table)
    rls.audit_table("billing_settings")  # the tenant's dunning policy (setDunningPolicy); attempts are the job's


def downgrade() -> None:
    rls.unaudit_table("billing_settings")
    for table in ("billing_settings", "billing_attempt"):
        rls.disable_tenant_rls(table)
        op.drop_table(table)
    op.drop_index("ix_billing_cycle_tenant_retry", table_name="billing_cycle")
    op.execute("update billing_cycle set status = 'failed' where status = 'skipped'")
    op.drop_constraint(op.f("ck_billing_cycle_status"), "billing_cycle", type_="check")
    op.create_check_constraint(op.f("ck_billing_cycle_status"), "billing_cycle", _in("status", OLD_CYCLE_STATUSES))
    op.drop_constraint(op.f("ck_billing_cycle_credit_applied_not_negative"), "billing_cycle", type_="check")
    for column in ("action_required", "next_retry_at", "failed_at", "skip_reason", "credit_applied", "snapshot",
                   "order_id", "cart_id"):
        op.drop_column("billing_cycle", column)
    op.drop_constraint(op.f("ck_customer_subscription_credit_not_negative"), "customer_subscription", type_="check")
    for column in ("shipping_address", "credit_balance", "skip_period_index", "paused_at", "cancel_at_period_end"):
        op.drop_column("customer_subscription", column)
