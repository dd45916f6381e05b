"""Migration 0023 (#12): every tenant_isolation policy reads the tenant and the platform scope through scalar
sub-selects (InitPlans: once per statement, unknown to the planner), goes back to the bare calls on downgrade, and is
not wrapped twice when upgraded again."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from tests import infrastructure

POLICIES = """
select count(*),
       count(*) filter (where qual ~ '(?<!SELECT )cityos_current_tenant\\(\\)'
                           or coalesce(with_check, '') ~ '(?<!SELECT )cityos_current_tenant\\(\\)'
                           or qual ~ '(?<!SELECT )cityos_platform_scope\\(\\)'),
       count(*) filter (where qual like '%SELECT cityos_current_tenant() AS cityos_current_tenant%'
                          and qual like '%SELECT cityos_platform_scope() AS cityos_platform_scope%'
                          and coalesce(with_check, qual) like '%SELECT cityos_current_tenant() AS%'),
       count(*) filter (where qual like '%SELECT ( SELECT%')
from pg_policies where schemaname = 'public' and policyname = 'tenant_isolation'
"""


async def policies(url: str) -> tuple[int, int, int, int]:
    """(policies, with a bare call, read once in both the check and the condition, wrapped twice)"""
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            total, bare, once, twice = (await connection.execute(text(POLICIES))).one()
            return int(total), int(bare), int(once), int(twice)
    finally:
        await engine.dispose()


async def test_the_tenant_wall_is_read_once_per_statement(postgres_admin_url: str) -> None:
    url = await asyncio.to_thread(infrastructure.create_database, postgres_admin_url)
    await asyncio.to_thread(migrate.upgrade, url)
    total, bare, once, twice = await policies(url)
    assert total > 50 and (bare, once, twice) == (0, total, 0), (total, bare, once, twice)
    await asyncio.to_thread(migrate.downgrade, url, "0021")
    assert await policies(url) == (total, total, 0, 0)
    await asyncio.to_thread(migrate.upgrade, url)
    assert await policies(url) == (total, 0, total, 0)
