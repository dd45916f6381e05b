"""the product listing walks (tenant_id, store_id, created_at, id) in order and stops after the page (#12); the
planner knows a store belongs to one tenant (functional-dependency statistics), so it estimates a store's products
right instead of as tenant share × store share

Revision ID: 0022
Revises: 0019
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_product_tenant_store_created", "product", ["tenant_id", "store_id", "created_at", "id"])
    op.execute("create statistics st_product_tenant_store (dependencies, ndistinct) on tenant_id, store_id "
               "from product")
    op.execute("analyze product")


def downgrade() -> None:
    op.execute("drop statistics if exists st_product_tenant_store")
    op.drop_index("ix_product_tenant_store_created", table_name="product")
