"""Migrations, seed data, and the tenancy services' typed errors against the real database."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import CheckConstraint, func, select, text

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from cityos.domain.commerce.models import Region, RegionState
from cityos.domain.tenancy import service as tenancy
from cityos.domain.tenancy.models import PublishableApiKey, SalesChannel, Store, StoreDomain, Tenant
from cityos.errors import BadUserInput, Conflict, NotFound
from cityos.seed import seed
from tests import infrastructure
from tests.conftest import TenantWorld


def test_migrations_upgrade_and_downgrade_cleanly_on_an_empty_database(postgres_admin_url: str) -> None:
    url = infrastructure.create_database(postgres_admin_url)
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    migrate.downgrade(url, "base")


def test_replicas_migrating_at_once_take_turns(postgres_admin_url: str) -> None:
    """Every API replica (and the Kubernetes migration Job) runs `upgrade` on start: started together on an empty
    database they take turns on the migration lock, and all end at head with each migration applied once."""
    import subprocess
    import sys

    url = infrastructure.create_database(postgres_admin_url)
    replicas = [subprocess.Popen([sys.executable, "-c", "import sys; from cityos.db import migrate; "
                                  "migrate.upgrade(sys.argv[1])", url], stderr=subprocess.PIPE) for _ in range(3)]
    for replica in replicas:
        _, errors = replica.communicate(timeout=240)
        assert replica.returncode == 0, errors.decode()

    async def heads() -> list[str]:
        engine = create_owner_engine(url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("select version_num from alembic_version"))).scalars().all()
        await engine.dispose()
        return list(rows)

    import asyncio

    from alembic.script import ScriptDirectory

    assert asyncio.run(heads()) == [ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()]


async def test_every_status_check_in_the_database_is_derived_from_its_enum(owner_engine) -> None:
    """The migrations leave the same CHECK constraints as the models derive from the domain's status enums (a
    status added to an enum without a migration fails here)."""
    import cityos.domain.models  # noqa: F401  (every table)
    from cityos.domain.base import Base

    expected = {(table.name, constraint.name): str(constraint.sqltext)
                for table in Base.metadata.tables.values() for constraint in table.constraints
                if isinstance(constraint, CheckConstraint) and constraint.name
                and str(constraint.name).endswith("_status")}
    assert {name[0] for name in expected} >= {"orders", "vendor_order", "cart", "shipment", "tracking_event",
                                              "payout", "outbox", "vendor"}
    async with owner_engine.connect() as connection:
        found = {(row.table, row.name): row.definition for row in (await connection.execute(text(
            "select conrelid::regclass::text as table, conname as name, pg_get_constraintdef(oid) as definition "
            "from pg_constraint where contype = 'c' and conname like 'ck\\_%\\_status' "
            "and connamespace = 'public'::regnamespace"))).all()}
    assert set(found) == set(expected)
    for key, check in expected.items():
        values = re.findall(r"'([^']*)'", check)
        assert re.findall(r"'([^']*)'::", found[key]) == values, (key, found[key])


async def test_seed_is_idempotent(database_url: str, tmp_path) -> None:
    engine = create_owner_engine(database_url)
    tables = (Tenant, Store, StoreDomain, SalesChannel, PublishableApiKey, Region, RegionState)
    try:
        first = await seed(engine, tmp_path)
        async with engine.connect() as connection:
            counts = [(await connection.execute(select(func.count()).select_from(t))).scalar_one() for t in tables]
        second = await seed(engine, tmp_path)
        async with engine.connect() as connection:
            again = [(await connection.execute(select(func.count()).select_from(t))).scalar_one() for t in tables]
            states = (await connection.execute(select(func.count()).select_from(RegionState)
                                               .where(RegionState.tenant_id == first.tenant_id))).scalar_one()
            providers = (await connection.execute(text("select id from payment_provider"))).scalars().all()
    finally:
        await engine.dispose()
    assert first == second
    assert counts == again
    assert states == 51
    assert providers == ["stripe"]
    assert (tmp_path / "demo-publishable-key").read_text().strip() == first.publishable_key


async def test_duplicates_are_conflicts_and_bad_input_is_typed(owner_engine, world: TenantWorld) -> None:
    async with owner_engine.begin() as connection:
        with pytest.raises(Conflict) as raised:
            await tenancy.create_store(connection, tenant_id=world.tenant_id, handle="store-0", name="Again")
        assert raised.value.extensions == {"code": "CONFLICT", "field": "handle"}
        with pytest.raises(Conflict):
            await tenancy.add_store_domain(connection, tenant_id=world.tenant_id, store_id=world.store_id,
                                           domain=world.domain.upper())
        with pytest.raises(Conflict):
            await tenancy.create_tenant(connection, slug=world.slug, name="Again")
        with pytest.raises(BadUserInput):
            await tenancy.create_store(connection, tenant_id=world.tenant_id, handle="ok", name="x",
                                       default_currency_code="xyz")
        with pytest.raises(NotFound):
            await tenancy.remove_store_domain(connection, domain_id=uuid.uuid4())
        # the transaction is still usable after the refused writes
        store = await tenancy.update_store(connection, store_id=world.store_id, name="Renamed")
        assert store.name == "Renamed"
