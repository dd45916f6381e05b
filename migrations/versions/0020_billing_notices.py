"""billing, part three: outbox messages may be `skipped` (a customer notice while no mail server is configured:
kept, and sent again by retryOutboxMessage once one is)

Revision ID: 0020
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enum's values as of this revision.
OUTBOX_STATUSES = ("pending", "sent", "dead", "skipped")
OLD_OUTBOX_STATUSES = ("pending", "sent", "dead")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    op.drop_constraint(op.f("ck_outbox_status"), "outbox", type_="check")
    op.create_check_constraint(op.f("ck_outbox_status"), "outbox", _in("status", OUTBOX_STATUSES))


def downgrade() -> None:
    op.execute("update outbox set status = 'dead' where status = 'skipped'")
    op.drop_constraint(op.f("ck_outbox_status"), "outbox", type_="check")
    op.create_check_constraint(op.f("ck_outbox_status"), "outbox", _in("status", OLD_OUTBOX_STATUSES))
