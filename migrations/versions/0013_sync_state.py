"""sync state: Payload content beside our objects, per-tenant sync cursors (Payload, ERPNext)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of ContentKind as of this revision.
KINDS = ("product", "category", "vendor", "store")


def upgrade() -> None:
    op.create_table(
        "content",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.UUID(), nullable=False),
        sa.Column("payload_id", sa.String(length=100), nullable=True),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("payload_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind in ({})".format(", ".join(f"'{kind}'" for kind in KINDS)),
                           name=op.f("ck_content_kind")),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "object_id", name=op.f("pk_content")),
    )
    op.create_index("ix_content_tenant_payload", "content", ["tenant_id", "kind", "payload_id"], unique=False)
    op.create_table(
        "sync_cursor",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("position_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position_id", sa.String(length=100), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "stream", name=op.f("pk_sync_cursor")),
    )
    for table in ("content", "sync_cursor"):
        rls.enable_tenant_rls(table)
    # Payload documents name our object and a tenant; which tenant really owns the object is checked here (a
    # document naming another tenant's product is refused).
    op.execute("""
        create function cityos_tenant_of_object(p_kind text, p_id uuid) returns uuid
        language sql stable security definer set search_path = public, pg_temp as
        $$ select case p_kind
             when 'product' then (select tenant_id from product where id = p_id)
             when 'category' then (select tenant_id from category where id = p_id)
             when 'vendor' then (select tenant_id from vendor where id = p_id)
             when 'store' then (select tenant_id from store where id = p_id)
           end $$""")
    op.execute("revoke all on function cityos_tenant_of_object(text, uuid) from public")
    op.execute(f"grant execute on function cityos_tenant_of_object(text, uuid) to {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute("drop function if exists cityos_tenant_of_object(text, uuid)")
    for table in ("sync_cursor", "content"):
        rls.disable_tenant_rls(table)
    op.drop_table("sync_cursor")
    op.drop_index("ix_content_tenant_payload", table_name="content")
    op.drop_table("content")
