"""indexes for the nested reads (products by vendor), found by the PostGraphile benchmark

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_product_tenant_vendor", "product", ["tenant_id", "vendor_id", "created_at", "id"])
    op.create_index("ix_vendor_tenant_store", "vendor", ["tenant_id", "store_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_vendor_tenant_store", table_name="vendor")
    op.drop_index("ix_product_tenant_vendor", table_name="product")
