"""a vendor's own shipping in the commission ledger (a `shipping` entry per vendor order that shipped with its own
option; its reversals and restorations per refund), and the restock a refund failing later takes back

Revision ID: 0019
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen as of this revision.
KINDS = "kind in ('sale', 'shipping', 'reversal', 'restored')"
OLD_KINDS = "kind in ('sale', 'reversal', 'restored')"
LINE_OF_KIND = ("case kind when 'sale' then order_line_id is not null when 'shipping' then order_line_id is null "
                "else true end")


def upgrade() -> None:
    # The vendor order's shipping_total is the vendor's own (its own option priced it), not a share of the store's.
    op.add_column("vendor_order", sa.Column("own_shipping", sa.Boolean(), nullable=False,
                                            server_default=sa.false()))
    # Orders placed before: their checkout's snapshot names the vendors that shipped with their own option. (Their
    # ledger gets no shipping entry: it was not paid out then, and a later refund of it reverses nothing.)
    op.execute("update vendor_order vo set own_shipping = true from checkout_attempt a "
               "where a.tenant_id = vo.tenant_id and a.order_id = vo.order_id and vo.vendor_id is not null "
               "and a.status = 'ordered' and coalesce(a.snapshot -> 'vendor_shipping', '{}'::jsonb) ? "
               "vo.vendor_id::text")

    # Shipping entries have no order line: one per vendor order (and kind), one per refund and vendor order.
    op.alter_column("commission_transaction", "order_line_id", existing_type=sa.UUID(), nullable=True)
    op.drop_constraint("ck_commission_transaction_kind", "commission_transaction")
    op.create_check_constraint(op.f("ck_commission_transaction_kind"), "commission_transaction", KINDS)
    op.create_check_constraint(op.f("ck_commission_transaction_line_of_kind"), "commission_transaction",
                               LINE_OF_KIND)
    op.create_index("uq_commission_transaction_shipping_kind", "commission_transaction",
                    ["tenant_id", "vendor_order_id", "kind"], unique=True,
                    postgresql_where=sa.text("order_line_id is null and refund_id is null"))
    op.create_index("uq_commission_transaction_refund_shipping_kind", "commission_transaction",
                    ["tenant_id", "refund_id", "vendor_order_id", "kind"], unique=True,
                    postgresql_where=sa.text("order_line_id is null and refund_id is not null"))

    # A restock given back when the refund failed later: units taken out of stock again, units already sold.
    op.add_column("refund_line", sa.Column("unstocked", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("refund_line", sa.Column("unstock_shortfall", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint(op.f("ck_refund_line_unstock_within_restock"), "refund_line",
                               "unstocked >= 0 and unstock_shortfall >= 0 and unstocked + unstock_shortfall <= "
                               "quantity")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_refund_line_unstock_within_restock"), "refund_line")
    op.drop_column("refund_line", "unstock_shortfall")
    op.drop_column("refund_line", "unstocked")
    op.drop_index("uq_commission_transaction_refund_shipping_kind", table_name="commission_transaction")
    op.drop_index("uq_commission_transaction_shipping_kind", table_name="commission_transaction")
    op.execute("delete from payout_transaction_link l using commission_transaction t where l.tenant_id = t.tenant_id "
               "and l.transaction_id = t.id and t.order_line_id is null")
    op.execute("delete from commission_transaction where order_line_id is null")
    op.drop_constraint(op.f("ck_commission_transaction_line_of_kind"), "commission_transaction")
    op.drop_constraint(op.f("ck_commission_transaction_kind"), "commission_transaction")
    op.create_check_constraint(op.f("ck_commission_transaction_kind"), "commission_transaction", OLD_KINDS)
    op.alter_column("commission_transaction", "order_line_id", existing_type=sa.UUID(), nullable=False)
    op.drop_column("vendor_order", "own_shipping")
