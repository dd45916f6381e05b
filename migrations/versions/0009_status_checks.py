"""status CHECK constraints for the vendor, outbox and tracking_event tables, derived like the others from the
domain's status enums (VendorStatus, OutboxStatus, ShipmentStatus); the values themselves are unchanged

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the enums' values as of this revision (a migration must not change when the code does).
CHECKS = {
    "vendor": ("pending", "active", "suspended"),
    "outbox": ("pending", "sent", "dead"),
    "tracking_event": ("created", "picked_up", "in_transit", "delivered", "failed", "canceled"),
}


def upgrade() -> None:
    for table, values in CHECKS.items():
        op.create_check_constraint(op.f(f"ck_{table}_status"), table,
                                   "status in ({})".format(", ".join(f"'{value}'" for value in values)))


def downgrade() -> None:
    for table in reversed(CHECKS):
        op.drop_constraint(op.f(f"ck_{table}_status"), table, type_="check")
