"""Row-level security is the second wall: the app role sees only its tenant's rows, whatever the SQL says."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cityos.db.engines import create_app_engine, tenant_transaction
from cityos.domain.models import TENANT_OWNED_TABLES
from tests.conftest import TenantWorld


async def test_a_query_without_a_tenant_filter_sees_only_its_tenant(database_url: str, world: TenantWorld,
                                                                     other_world: TenantWorld) -> None:
    engine = create_app_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:  # a rolled-back first use must not undo the role
            await connection.execute(text("select 1"))
            await connection.rollback()
        async with tenant_transaction(engine, world.tenant_id) as connection:
            store_tenants = set((await connection.execute(text("select tenant_id from store"))).scalars())
            tenants = set((await connection.execute(text("select id from tenant"))).scalars())
            role = (await connection.execute(text("select current_user"))).scalar_one()
        assert store_tenants == {world.tenant_id}
        assert tenants == {world.tenant_id}
        assert role == "cityos_app"
        async with tenant_transaction(engine, None) as connection:
            assert (await connection.execute(text("select count(*) from store"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_the_app_role_cannot_write_into_another_tenant(database_url: str, world: TenantWorld,
                                                             other_world: TenantWorld) -> None:
    engine = create_app_engine(database_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with tenant_transaction(engine, world.tenant_id) as connection:
                await connection.execute(text(
                    "insert into store (tenant_id, id, handle, name) values (:t, gen_random_uuid(), 'x', 'x')"),
                    {"t": other_world.tenant_id})
        async with tenant_transaction(engine, world.tenant_id) as connection:
            updated = await connection.execute(text("update store set name = 'hijacked' where tenant_id = :t"),
                                               {"t": other_world.tenant_id})
            assert updated.rowcount == 0
    finally:
        await engine.dispose()


async def test_every_tenant_owned_table_has_rls_and_the_role_cannot_bypass_it(owner_engine) -> None:
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text(
            "select relname, relrowsecurity from pg_class where relname = any(:names)"),
            {"names": [*TENANT_OWNED_TABLES, "tenant"]})).all()
        bypass = (await connection.execute(text(
            "select rolbypassrls or rolsuper from pg_roles where rolname = 'cityos_app'"))).scalar_one()
    assert len(rows) == len(TENANT_OWNED_TABLES) + 1
    assert all(secured for _, secured in rows)
    assert bypass is False
