"""b2b gaps: a company buyer's cart order waits in pending_approval (approval requests name a quote or an order,
carts wait in awaiting_approval), orders on account await payment (a status of their own until the invoice is
paid), overdue invoices, invitations of an email into a company, companies restricted to a list of stores (the
single store column's data moved into company_store)

Revision ID: 0021
Revises: 0020 (chained at merge: 0019 → 0022 → 0018 → 0020 → 0021)
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cityos.db import rls

revision: str = "0021"
down_revision: str | None = "0020"
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
INVITATION_STATUSES = ("pending", "accepted", "revoked")
COMPANY_ROLES = ("company_admin", "company_buyer", "approver")
SPENDING_PERIODS = ("month", "quarter")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _status_check(table: str, values: Sequence[str]) -> None:
    op.drop_constraint(op.f(f"ck_{table}_status"), table, type_="check")
    op.create_check_constraint(op.f(f"ck_{table}_status"), table, _in("status", values))


def _owned() -> list[sa.Column[object]]:
    return [sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


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

    # Invitations by email (the token's SHA-256 only).
    op.create_table(
        "company_invitation", *_owned(),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("order_limit", sa.Integer(), nullable=True),
        sa.Column("period_limit", sa.Integer(), nullable=True),
        sa.Column("limit_period", sa.String(10), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invited_by", sa.String(200), nullable=False),
        sa.Column("accepted_by", sa.String(200), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_company_invitation_tenant_id_tenant"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "company_id"], ["company.tenant_id", "company.id"],
                                name=op.f("fk_company_invitation_company"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_company_invitation")),
        sa.UniqueConstraint("tenant_id", "company_id", "email", name=op.f("uq_company_invitation_tenant_id_company_id_email")),
        sa.UniqueConstraint("tenant_id", "token_hash", name=op.f("uq_company_invitation_tenant_id_token_hash")),
        sa.CheckConstraint(_in("status", INVITATION_STATUSES), name=op.f("ck_company_invitation_status")),
        sa.CheckConstraint(_in("role", COMPANY_ROLES), name=op.f("ck_company_invitation_role")),
        sa.CheckConstraint(_in("limit_period", SPENDING_PERIODS), name=op.f("ck_company_invitation_limit_period")),
        sa.CheckConstraint("order_limit is null or order_limit > 0", name=op.f("ck_company_invitation_order_limit_positive")),
        sa.CheckConstraint("period_limit is null or period_limit > 0",
                           name=op.f("ck_company_invitation_period_limit_positive")),
        sa.CheckConstraint("(period_limit is null) = (limit_period is null)",
                           name=op.f("ck_company_invitation_period_limit_has_period")))
    rls.enable_tenant_rls("company_invitation")
    rls.audit_table("company_invitation")

    # A company restricted to a list of stores: company_store, and company.store_ids for the policies.
    op.create_table(
        "company_store", *_owned(),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "company_id"], ["company.tenant_id", "company.id"],
                                name=op.f("fk_company_store_company"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"],
                                name=op.f("fk_company_store_tenant_id_store_id_store"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_company_store")),
        sa.UniqueConstraint("tenant_id", "company_id", "store_id",
                            name=op.f("uq_company_store_tenant_id_company_id_store_id")))
    op.create_index("ix_company_store_tenant_store", "company_store", ["tenant_id", "store_id"])
    rls.enable_tenant_rls("company_store")
    rls.audit_table("company_store")
    op.execute("insert into company_store (tenant_id, id, company_id, store_id) "
               "select tenant_id, gen_random_uuid(), id, store_id from company where store_id is not null")
    op.add_column("company", sa.Column("store_ids", sa.String(4000), server_default="", nullable=False))
    op.execute("update company set store_ids = store_id::text where store_id is not null")
    op.drop_constraint("fk_company_tenant_id_store_id_store", "company", type_="foreignkey")
    op.drop_column("company", "store_id")


def downgrade() -> None:
    op.add_column("company", sa.Column("store_id", sa.UUID(), nullable=True))
    op.execute("update company c set store_id = (select s.store_id from company_store s where s.tenant_id = "
               "c.tenant_id and s.company_id = c.id order by s.store_id limit 1)")  # the first of its stores
    op.create_foreign_key("fk_company_tenant_id_store_id_store", "company", "store", ["tenant_id", "store_id"],
                          ["tenant_id", "id"], ondelete="CASCADE")
    op.drop_column("company", "store_ids")
    rls.unaudit_table("company_store")
    rls.disable_tenant_rls("company_store")
    op.drop_index("ix_company_store_tenant_store", table_name=op.f("company_store"))
    op.drop_table("company_store")
    rls.unaudit_table("company_invitation")
    rls.disable_tenant_rls("company_invitation")
    op.drop_table("company_invitation")
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
    op.drop_index("ix_invoice_tenant_status_due", table_name=op.f("invoice"))
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
