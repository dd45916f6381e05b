"""checkout attempts (a paid payment ends as an order or a refund), order access tokens, tenant-scoped webhook inbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkout_attempt",
        sa.Column("cart_id", sa.UUID(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("order_id", sa.UUID(), nullable=True),
        sa.Column("refund_id", sa.String(length=100), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status in ('pending', 'superseded', 'canceled', 'ordered', 'refund_pending', "
                           "'refunded')", name=op.f("ck_checkout_attempt_status")),
        sa.ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"],
                                name=op.f("fk_checkout_attempt_tenant_id_cart_id_cart"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_checkout_attempt")),
        sa.UniqueConstraint("tenant_id", "payment_intent_id",
                            name=op.f("uq_checkout_attempt_tenant_id_payment_intent_id")),
    )
    op.create_index("ix_checkout_attempt_tenant_cart", "checkout_attempt", ["tenant_id", "cart_id", "created_at"])
    op.create_index("ix_checkout_attempt_tenant_status", "checkout_attempt", ["tenant_id", "status", "created_at"])
    rls.enable_tenant_rls("checkout_attempt")

    op.add_column("cart", sa.Column("access_token_hash", sa.String(length=64), nullable=True))
    op.add_column("orders", sa.Column("access_token_hash", sa.String(length=64), nullable=True))

    # The inbox learns the tenant of an event once it is known (metadata, or the connected account). Rows whose
    # tenant is still unknown (null) stay writable so the event can be recorded before anyone knows its tenant;
    # every read the API makes filters on the caller's tenant, and RLS hides other tenants' rows.
    op.add_column("webhook_inbox", sa.Column("tenant_id", sa.UUID(), nullable=True))
    op.add_column("webhook_inbox", sa.Column("status", sa.String(length=20), server_default="processed",
                                             nullable=False))
    op.add_column("webhook_inbox", sa.Column("attempts", sa.Integer(), server_default="1", nullable=False))
    op.execute("update webhook_inbox set tenant_id = nullif(payload->'data'->'object'->'metadata'->>'tenant_id', "
               "'')::uuid where payload->'data'->'object'->'metadata'->>'tenant_id' ~ "
               "'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'")
    op.execute("update webhook_inbox set status = 'refused' where error like 'refused%'")
    op.create_check_constraint(op.f("ck_webhook_inbox_status"), "webhook_inbox",
                               "status in ('processed', 'ignored', 'refused', 'failed')")
    op.create_index("ix_webhook_inbox_tenant_status", "webhook_inbox", ["tenant_id", "status", "received_at"])
    op.execute("alter table webhook_inbox enable row level security")
    condition = f"tenant_id is null or tenant_id = {rls.CURRENT_TENANT} or {rls.PLATFORM_SCOPE}"
    op.execute(f"create policy tenant_isolation on webhook_inbox using ({condition}) with check ({condition})")


def downgrade() -> None:
    op.execute("drop policy if exists tenant_isolation on webhook_inbox")
    op.execute("alter table webhook_inbox disable row level security")
    op.drop_index("ix_webhook_inbox_tenant_status", table_name="webhook_inbox")
    op.drop_constraint(op.f("ck_webhook_inbox_status"), "webhook_inbox", type_="check")
    op.drop_column("webhook_inbox", "attempts")
    op.drop_column("webhook_inbox", "status")
    op.drop_column("webhook_inbox", "tenant_id")
    op.drop_column("orders", "access_token_hash")
    op.drop_column("cart", "access_token_hash")
    rls.disable_tenant_rls("checkout_attempt")
    op.drop_index("ix_checkout_attempt_tenant_status", table_name="checkout_attempt")
    op.drop_index("ix_checkout_attempt_tenant_cart", table_name="checkout_attempt")
    op.drop_table("checkout_attempt")
