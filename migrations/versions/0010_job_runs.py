"""job runs: one row per run of a scheduled job (claimed by its unique (job, scheduled_for)), and one per tenant
of a per-tenant job's run, visible to that tenant's admins

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of JobOutcome's values as of this revision.
OUTCOMES = ("running", "ok", "failed", "timeout")


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("trigger", sa.String(length=20), server_default="schedule", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), server_default="running", nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("error", sa.String(length=4000), nullable=True),
        sa.CheckConstraint("outcome in ({})".format(", ".join(f"'{value}'" for value in OUTCOMES)),
                           name=op.f("ck_job_run_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
    )
    # The claim: one run row per (job, tick), whichever replica inserts it first.
    op.create_index("uq_job_run_job_scheduled_for", "job_run", ["job", "scheduled_for"], unique=True,
                    postgresql_where=sa.text("tenant_id is null"))
    op.create_index("uq_job_run_job_scheduled_for_tenant", "job_run", ["job", "scheduled_for", "tenant_id"],
                    unique=True, postgresql_where=sa.text("tenant_id is not null"))
    op.create_index("ix_job_run_tenant_started", "job_run", ["tenant_id", "started_at"])
    op.create_index("ix_job_run_job_started", "job_run", ["job", "started_at"])
    # Tenant rows for their tenant; run rows (tenant_id null) in platform scope only (the scheduler's, a
    # super_admin's read).
    rls.enable_tenant_rls("job_run")


def downgrade() -> None:
    rls.disable_tenant_rls("job_run")
    op.drop_index("ix_job_run_job_started", table_name="job_run")
    op.drop_index("ix_job_run_tenant_started", table_name="job_run")
    op.drop_index("uq_job_run_job_scheduled_for_tenant", table_name="job_run")
    op.drop_index("uq_job_run_job_scheduled_for", table_name="job_run")
    op.drop_table("job_run")
