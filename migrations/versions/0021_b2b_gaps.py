"""b2b gaps: a company buyer's cart order waits in pending_approval (approval requests name a quote or an order,
carts wait in awaiting_approval), orders on account await payment (a status of their own until the invoice is
paid), overdue invoices

Revision ID: 0021
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enums' values as of this revision.
ORDER_STATUSES = ("pending", "paid", "fulfilled", "completed", "canceled", "refunded")
NEW_ORDER_STATUSES = (*ORDER_STATUSES, "pending_approval", "awaiting_payment")
CART_STATUSES = ("open", "completed")
NEW_CART_STATUSES = ("open", "completed", "awaiting_approval")
INVOICE_STATUSES = ("open", "paid")
NEW_INVOICE_STATUSES = ("open", "paid", "overdue")
PAYMENT_METHODS = ("card", "on_account")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _status_check(table: str, values: Sequence[str]) -> None:
    op.drop_constraint(op.f(f"ck_{table}_status"), table, type_="check")
    op.create_check_constraint(op.f(f"ck_{table}_status"), table, _in("status", values))


def upgrade() -> None:
    for table in ("orders", "vendor_order"):
        _status_check(table, NEW_ORDER_STATUSES)
    _status_check("cart", NEW_CART_STATUSES)
    _status_check("invoice", NEW_INVOICE_STATUSES)
    op.add_column("invoice", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("invoice", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_invoice_tenant_status_due", "invoice", ["tenant_id", "status", "due_at"])

    # Approval requests: of a quote (its version) or of a cart order.
    op.alter_column("approval_request", "quote_id", nullable=True)
    op.alter_column("approval_request", "quote_version", nullable=True)
    op.add_column("approval_request", sa.Column("order_id", sa.UUID(), nullable=True))
    op.add_column("approval_request", sa.Column("payment_method", sa.String(20), nullable=True))
    op.create_foreign_key(op.f("fk_approval_request_tenant_id_order_id_orders"), "approval_request", "orders",
                          ["tenant_id", "order_id"], ["tenant_id", "id"], ondelete="CASCADE")
    op.create_unique_constraint(op.f("uq_approval_request_tenant_id_order_id"), "approval_request",
                                ["tenant_id", "order_id"])
    op.create_check_constraint(op.f("ck_approval_request_payment_method"), "approval_request",
                               _in("payment_method", PAYMENT_METHODS))
    op.create_check_constraint(op.f("ck_approval_request_quote_or_order"), "approval_request",
                               "(quote_id is null) <> (order_id is null) and (quote_id is null) = "
                               "(quote_version is null)")


def downgrade() -> None:
    op.execute("delete from approval_request where order_id is not null")
    op.drop_constraint(op.f("ck_approval_request_quote_or_order"), "approval_request", type_="check")
    op.drop_constraint(op.f("ck_approval_request_payment_method"), "approval_request", type_="check")
    op.drop_constraint(op.f("uq_approval_request_tenant_id_order_id"), "approval_request", type_="unique")
    op.drop_constraint(op.f("fk_approval_request_tenant_id_order_id_orders"), "approval_request",
                       type_="foreignkey")
    op.drop_column("approval_request", "payment_method")
    op.drop_column("approval_request", "order_id")
    op.alter_column("approval_request", "quote_version", nullable=False)
    op.alter_column("approval_request", "quote_id", nullable=False)
    op.drop_index("ix_invoice_tenant_status_due", table_name="invoice")
    op.drop_column("invoice", "reminded_at")
    op.drop_column("invoice", "overdue_at")
    op.execute("update invoice set status = 'open' where status = 'overdue'")
    _status_check("invoice", INVOICE_STATUSES)
    op.execute("update cart set status = 'open' where status = 'awaiting_approval'")
    _status_check("cart", CART_STATUSES)
    for table in ("orders", "vendor_order"):
        op.execute(f"update {table} set status = 'canceled' where status = 'pending_approval'")
        op.execute(f"update {table} set status = 'paid' where status = 'awaiting_payment'")
        _status_check(table, ORDER_STATUSES)
