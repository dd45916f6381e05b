"""Alembic environment: runs migrations as the database owner over asyncpg, one runner at a time: every API replica
and the Kubernetes migration Job may call it at once, and a transaction-level advisory lock makes the others wait
and then find the schema at head."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from cityos.db.engines import create_owner_engine
from cityos.domain.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 0x636974796F73  # "cityos": the advisory lock key of schema migrations


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        connection.exec_driver_sql(f"select pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()


async def _run_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set: run migrations through `cityos migrate`")
    engine = create_owner_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; run `cityos migrate`")
asyncio.run(_run_online())
