"""Real servers for the test session: embedded Postgres, the Cerbos binary, a redis-server.

Each is started here unless its URL is given (TEST_DATABASE_URL, CERBOS_URL, REDIS_URL).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.embedded.process import ChildProcess, free_port, tcp_port_open

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """Yields the URL of a superuser connection to the `postgres` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cityos.embedded.postgres import EmbeddedPostgres
    server = EmbeddedPostgres(root, fast_and_unsafe=True)
    server.start()
    try:
        yield server.url("postgres")
    finally:
        server.stop()


def create_database(admin_url: str) -> str:
    """A fresh database on the server of admin_url; returns its URL."""
    import asyncio

    import asyncpg

    name = f"cityos_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(f'create database "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    head, _, _ = admin_url.rpartition("/")
    return f"{head}/{name}"


@contextmanager
def redis_server(work_dir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
    port = free_port()
    child = ChildProcess("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(work_dir)],
                         log_path=work_dir / "redis.log")
    child.start()
    child.wait_ready(lambda: tcp_port_open("127.0.0.1", port), timeout=20)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        child.stop()


@contextmanager
def cerbos_server(work_dir: Path, policy_dir: Path = PROJECT_ROOT / "policies") -> Iterator[object]:
    from cityos.embedded.cerbos import EmbeddedCerbos

    pdp = EmbeddedCerbos(policy_dir, work_dir)
    pdp.start()
    try:
        yield pdp
    finally:
        pdp.stop()


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True)


async def insert_old_store(connection: AsyncConnection, tenant: uuid.UUID, store: uuid.UUID) -> None:
    """A tenant with one store, in raw SQL that any migrated revision takes (migration tests fill a database at an
    older revision, before the models' current shape)."""
    await connection.execute(text("insert into currency (code, name, symbol) values ('usd', 'US dollar', '$') "
                                  "on conflict do nothing"))
    await connection.execute(text("insert into tenant (id, slug, name) values (:t, :slug, 'Old')"),
                             {"t": tenant, "slug": f"old-{tenant.hex[:8]}"})
    await connection.execute(text("insert into store (tenant_id, id, handle, name) values (:t, :s, 'main', 'M')"),
                             {"t": tenant, "s": store})
