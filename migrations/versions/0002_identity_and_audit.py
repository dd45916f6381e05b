"""identity lookups and audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target_kind", sa.String(length=50), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_tenant_created", "audit_log", ["tenant_id", "created_at"], unique=False)
    # Append-only for the app: it may add and read (its own tenant's, or platform-wide in platform scope).
    op.execute(f"grant select, insert on table audit_log to {rls.APP_ROLE}")
    op.execute("alter table audit_log enable row level security")
    op.execute(f"create policy tenant_isolation on audit_log using "
               f"(tenant_id = {rls.CURRENT_TENANT} or {rls.PLATFORM_SCOPE}) "
               f"with check (tenant_id = {rls.CURRENT_TENANT} or {rls.PLATFORM_SCOPE})")
    # A token names its tenant by id or slug; this resolves it before the request knows its tenant.
    op.execute("""
        create function cityos_tenant_by_ref(p_ref text)
        returns table (id uuid, slug text)
        language sql stable security definer set search_path = public, pg_temp as
        $$ select t.id, t.slug::text from tenant t where t.slug = p_ref or t.id::text = p_ref limit 1 $$""")
    op.execute("revoke all on function cityos_tenant_by_ref(text) from public")
    op.execute(f"grant execute on function cityos_tenant_by_ref(text) to {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute("drop function if exists cityos_tenant_by_ref(text)")
    op.execute("drop policy if exists tenant_isolation on audit_log")
    op.execute(f"revoke all on table audit_log from {rls.APP_ROLE}")
    op.drop_index("ix_audit_log_tenant_created", table_name="audit_log")
    op.drop_table("audit_log")
