"""Engines, the application role, and the tenant-scoped transaction.

Two connections to one database:
- the owner (DATABASE_URL as given) runs migrations and seeding;
- the application uses the same URL but switches to the `cityos_app` role (no BYPASSRLS) on every new
  connection, so row-level security holds even for a superuser URL. Each transaction names its tenant with
  `set_config('app.tenant_id', …, true)` (SET LOCAL semantics: it ends with the transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

APP_ROLE = "cityos_app"


def async_url(url: str) -> str:
    """postgresql://… (the plan's form) → the asyncpg dialect SQLAlchemy needs."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_owner_engine(url: str, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(async_url(url), pool_pre_ping=True, hide_parameters=True, **kwargs)


def create_app_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, timeout: float | None = None,
                      **kwargs: Any) -> AsyncEngine:
    """The application's engine. `timeout` (seconds) bounds every wait on the database: connecting, checking a
    connection out of the pool, each statement (on the client, so a stalled server cannot hold a request), and a
    transaction left idle; a request then fails fast with UNAVAILABLE instead of hanging."""
    if timeout is not None:
        millis = str(int(timeout * 1000))
        kwargs.setdefault("pool_timeout", timeout)
        kwargs.setdefault("connect_args", {"timeout": timeout, "command_timeout": timeout, "server_settings": {
            "statement_timeout": millis, "idle_in_transaction_session_timeout": str(int(timeout * 2000))}})
    # Bound parameters hold customers' emails and addresses: never in an exception message or a log line.
    engine = create_async_engine(async_url(url), pool_size=pool_size, max_overflow=max_overflow,
                                 pool_pre_ping=True, hide_parameters=True, **kwargs)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _unusable_is_a_disconnect(context: Any) -> None:
        # A connection whose statement was cut off (a client-side timeout while the server stalled) still has that
        # operation in progress: asyncpg refuses every later one. Treat it as a disconnect, so the pool discards
        # it (on pre-ping too) instead of lending it out again.
        original = context.original_exception
        if "another operation is in progress" in str(original) or type(original).__name__ == "InternalClientError":
            context.is_disconnect = True

    @event.listens_for(engine.sync_engine, "connect")
    def _assume_app_role(dbapi_connection: Any, _record: Any) -> None:
        # On the raw asyncpg connection, outside any transaction: a session setting that no rollback undoes.
        dbapi_connection.run_async(lambda raw: raw.execute(f"SET ROLE {APP_ROLE}"))

    return engine


async def set_tenant(connection: AsyncConnection, tenant_id: uuid.UUID | None) -> None:
    await connection.execute(text("select set_config('app.tenant_id', :tenant, true)"),
                             {"tenant": str(tenant_id) if tenant_id else ""})


async def set_platform_scope(connection: AsyncConnection) -> None:
    """Cross-tenant access for an explicit, audited platform operation (super_admin) in this transaction only."""
    await connection.execute(text("select set_config('app.platform_scope', 'on', true)"))


@asynccontextmanager
async def tenant_transaction(engine: AsyncEngine, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        await set_tenant(connection, tenant_id)
        yield connection
