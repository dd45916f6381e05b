"""`cityos backup` and `cityos restore` round trip: the test database (every other test's data) is backed up by the
CLI, restored into a fresh database, and each table's row count and checksum are compared; the restored database
keeps the tenant wall (row-level security for the app role). A restore never overwrites a database in use."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from cityos.db.backup import table_fingerprints
from cityos.db.engines import create_owner_engine
from tests import infrastructure
from tests.conftest import TenantWorld


def cli(*arguments: str, database_url: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "cityos", *arguments], env=environment, capture_output=True,
                          text=True, timeout=300)


def test_backup_restores_every_table_exactly(database_url: str, postgres_admin_url: str, tmp_path: Path,
                                                  world: TenantWorld) -> None:
    async def with_catalog() -> None:
        from cityos.seed import seed_catalog, seed_region

        engine = create_owner_engine(database_url)
        try:
            async with engine.begin() as connection:
                await seed_region(connection, world.tenant_id)
                await seed_catalog(connection, world.tenant_id, world.store_id)
        finally:
            await engine.dispose()

    asyncio.run(with_catalog())
    backup_file = tmp_path / "cityos.dump"
    made = cli("backup", str(backup_file), database_url=database_url)
    assert made.returncode == 0, made.stderr
    assert backup_file.stat().st_size > 0 and not list(tmp_path.glob("*.partial"))
    source = asyncio.run(table_fingerprints(database_url))

    target = infrastructure.create_database(postgres_admin_url)
    restored = cli("restore", str(backup_file), database_url=target)
    assert restored.returncode == 0, restored.stderr
    copy = asyncio.run(table_fingerprints(target))
    assert copy == source
    assert source["product"][0] > 0 and source["tenant"][0] > 0 and source["alembic_version"][0] == 1

    async def store_counts() -> tuple[int, int]:
        engine = create_owner_engine(target)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("set role cityos_app"))
                unscoped = (await connection.execute(text("select count(*) from store"))).scalar_one()
                await connection.execute(text("select set_config('app.tenant_id', :t, false)"),
                                         {"t": str(world.tenant_id)})
                scoped = (await connection.execute(text("select count(*) from store"))).scalar_one()
        finally:
            await engine.dispose()
        return unscoped, scoped

    assert asyncio.run(store_counts()) == (0, 1)  # the tenant wall came back with the data

    again = cli("restore", str(backup_file), database_url=target)
    assert again.returncode == 1 and "already has the CityOS schema" in again.stderr
    assert asyncio.run(table_fingerprints(target)) == source  # nothing overwritten
    missing = cli("restore", str(tmp_path / "nothing.dump"), database_url=infrastructure.create_database(
        postgres_admin_url))
    assert missing.returncode == 1 and "no backup file" in missing.stderr
