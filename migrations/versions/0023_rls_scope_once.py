"""the tenant wall's settings read once per statement: every `tenant_isolation` policy compares with
`(select cityos_current_tenant())` and `(select cityos_platform_scope())`, InitPlans, instead of the inlined
`current_setting(…)` calls, which the planner evaluated at planning time (#12, `rls.once`). A compiled read sets its
tenant inside its own statement, after planning: with the setting still empty the planner estimated every RLS-guarded
scan at one row, and the category listing sorted the store's every product for a 24-row page instead of walking
(tenant_id, store_id, created_at, id) and stopping. Same rows visible, same checks on writes; each policy's text is
rewritten where it calls the functions bare (so policies already in this form, from `rls.enable_tenant_rls` on a
fresh database, are left as they are).

And the listing sorted by title walks (tenant_id, store_id, title, id) in order and stops after the page, as the newest
first walks 0022's (tenant_id, store_id, created_at, id); its totalCount reads the category's and the default channel's
product ids by index only: (tenant_id, category_id, product_id) replaces (tenant_id, category_id), and
(tenant_id, sales_channel_id, product_id) is new.

Revision ID: 0023
Revises: 0021
Create Date: 2026-11-27
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("cityos_current_tenant", "cityos_platform_scope")


def _policies() -> list[tuple[str, str, str | None]]:
    rows = op.get_bind().execute(sa.text(
        "select tablename, qual, with_check from pg_policies where schemaname = current_schema() "
        "and policyname = 'tenant_isolation' order by tablename"))
    return [(row.tablename, row.qual, row.with_check) for row in rows]


def _once(condition: str) -> str:
    for function in FUNCTIONS:  # a bare call, not one already inside `( SELECT f() AS f)`
        condition = re.sub(rf"(?<!SELECT ){function}\(\)", f"(select {function}())", condition)
    return condition


def _bare(condition: str) -> str:
    for function in FUNCTIONS:
        condition = re.sub(rf"\(\s*SELECT {function}\(\) AS {function}\)", f"{function}()", condition)
    return condition


def _rewrite(change: object) -> None:
    assert callable(change)
    for table, qual, with_check in _policies():
        check = f" with check ({change(with_check)})" if with_check is not None else ""
        op.execute(f"alter policy tenant_isolation on {table} using ({change(qual)}){check}")


def upgrade() -> None:
    _rewrite(_once)
    op.create_index("ix_product_tenant_store_title", "product", ["tenant_id", "store_id", "title", "id"])
    op.create_index("ix_product_category_category_product", "product_category",
                    ["tenant_id", "category_id", "product_id"])
    op.drop_index("ix_product_category_category", table_name="product_category")
    op.create_index("ix_product_sales_channel_channel", "product_sales_channel",
                    ["tenant_id", "sales_channel_id", "product_id"])


def downgrade() -> None:
    op.drop_index("ix_product_sales_channel_channel", table_name="product_sales_channel")
    op.create_index("ix_product_category_category", "product_category", ["tenant_id", "category_id"])
    op.drop_index("ix_product_category_category_product", table_name="product_category")
    op.drop_index("ix_product_tenant_store_title", table_name="product")
    _rewrite(_bare)
