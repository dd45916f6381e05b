"""billing, part three: outbox messages may be `skipped` (a customer notice while no mail server is configured:
kept, and sent again by retryOutboxMessage once one is); order lines have a kind (`item`, or `fee`: a subscription's
setup fee); a subscription keeps its setup fee until it is paid; subscription plans in a cart
(cart_subscription_item, tenant-owned with RLS)

Revision ID: 0020
Revises: 0018 (chained at merge: 0019 → 0022 → 0018 → 0020)
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cityos.db import rls

revision: str = "0020"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enum's values as of this revision.
OUTBOX_STATUSES = ("pending", "sent", "dead", "skipped")
OLD_OUTBOX_STATUSES = ("pending", "sent", "dead")
ORDER_LINE_KINDS = ("item", "fee")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    op.drop_constraint(op.f("ck_outbox_status"), "outbox", type_="check")
    op.create_check_constraint(op.f("ck_outbox_status"), "outbox", _in("status", OUTBOX_STATUSES))
    op.add_column("order_line", sa.Column("kind", sa.String(10), server_default="item", nullable=False))
    op.create_check_constraint(op.f("ck_order_line_kind"), "order_line", _in("kind", ORDER_LINE_KINDS))
    op.add_column("customer_subscription", sa.Column("setup_fee", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint(op.f("ck_customer_subscription_setup_fee_not_negative"), "customer_subscription",
                               "setup_fee >= 0")
    op.create_table(
        "cart_subscription_item",
        sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("cart_id", sa.UUID(), nullable=False),
        sa.Column("plan_id", sa.UUID(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_cart_subscription_item")),
        sa.ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"], ondelete="CASCADE",
                                name=op.f("fk_cart_subscription_item_tenant_id_cart_id_cart")),
        sa.ForeignKeyConstraint(["tenant_id", "plan_id"], ["subscription_plan.tenant_id", "subscription_plan.id"],
                                ondelete="CASCADE",
                                name=op.f("fk_cart_subscription_item_tenant_id_plan_id_subscription_plan")),
        sa.UniqueConstraint("tenant_id", "cart_id", "plan_id",
                            name=op.f("uq_cart_subscription_item_tenant_id_cart_id_plan_id")),
        sa.CheckConstraint("quantity between 1 and 1000", name=op.f("ck_cart_subscription_item_quantity_range")),
    )
    rls.enable_tenant_rls("cart_subscription_item")


def downgrade() -> None:
    rls.disable_tenant_rls("cart_subscription_item")
    op.drop_table("cart_subscription_item")
    op.drop_constraint(op.f("ck_customer_subscription_setup_fee_not_negative"), "customer_subscription",
                       type_="check")
    op.drop_column("customer_subscription", "setup_fee")
    op.drop_constraint(op.f("ck_order_line_kind"), "order_line", type_="check")
    op.drop_column("order_line", "kind")
    op.execute("update outbox set status = 'dead' where status = 'skipped'")
    op.drop_constraint(op.f("ck_outbox_status"), "outbox", type_="check")
    op.create_check_constraint(op.f("ck_outbox_status"), "outbox", _in("status", OLD_OUTBOX_STATUSES))
