"""The request's database scope on the application engine: the tenant named with the transaction's BEGIN, and
an exhausted pool answered as UNAVAILABLE."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, text

from cityos.db.engines import create_app_engine
from cityos.db.request import RequestDatabase
from cityos.errors import Unavailable
from tests.conftest import TenantWorld


async def test_the_tenant_scope_costs_no_statement_of_its_own(database_url: str, world: TenantWorld) -> None:
    engine = create_app_engine(database_url, pool_size=1, max_overflow=0, timeout=5)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: statements.append(statement))
    try:
        db = RequestDatabase(engine)
        db.scope_to(world.tenant_id)
        rows = (await db.execute(text("select id, current_setting('app.tenant_id') as scope from store"))).all()
        await db.finish(commit=True)
        assert {row.id for row in rows} == {world.store_id}  # RLS: only the tenant's stores
        assert {row.scope for row in rows} == {str(world.tenant_id)}
        assert [statement for statement in statements if "set_config" in statement] == []
        unscoped = RequestDatabase(engine)  # the same pooled connection, no tenant: sees nothing
        assert (await unscoped.execute(text("select count(*) from store"))).scalar() == 0
        await unscoped.finish(commit=False)
        platform = RequestDatabase(engine)
        platform.scope_to(None, platform=True)
        assert (await platform.execute(text("select count(*) from store"))).scalar() >= 1
        await platform.finish(commit=False)
    finally:
        await engine.dispose()


async def test_an_exhausted_pool_is_unavailable_not_an_internal_error(database_url: str) -> None:
    engine = create_app_engine(database_url, pool_size=1, max_overflow=0, timeout=0.2)
    try:
        holder = RequestDatabase(engine)
        holder.scope_to(uuid.uuid4())
        await holder.execute(text("select 1"))  # keeps the only connection
        waiting = RequestDatabase(engine)
        with pytest.raises(Unavailable):
            await waiting.execute(text("select 1"))
        await holder.finish(commit=False)
    finally:
        await engine.dispose()
