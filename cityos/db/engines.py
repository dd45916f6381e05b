"""Engines, the application role, and the tenant-scoped transaction.

Two connections to one database:
- the owner (DATABASE_URL as given) runs migrations and seeding;
- the application uses the same URL but switches to the `cityos_app` role (no BYPASSRLS) on every new
  connection, so row-level security holds even for a superuser URL. Each transaction names its tenant with
  `set_config('app.tenant_id', …, true)` (SET LOCAL semantics: it ends with the transaction).

Fixed per-request costs on the application engine (issue #12): the tenant scope of a request's transaction rides
in the same round trip as its BEGIN (`ScopedConnection.scope_next_transaction`: one simple-protocol message
`BEGIN …; SELECT set_config(…)`). Statements are prepared once per connection (asyncpg's statement cache,
SQLAlchemy's default `prepared_statement_cache_size` of 100: a larger cache kept hot listing statements on
Postgres' generic plans, which were slower). A compiled read that is all of its request's database work runs as
one statement that names its own tenant (`scoped_statement`), outside any transaction block: one round trip in all.
A connection is pinged on checkout only when it sat idle in the pool for PING_AFTER_IDLE seconds (SQLAlchemy's
pre-ping costs three round trips, BEGIN; SELECT; ROLLBACK, on every checkout); a connection that died anyway is
noticed where the request's transaction begins, and that request retries once on another (`RequestDatabase`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction, create_async_engine

APP_ROLE = "cityos_app"


def scope_statements(tenant_id: uuid.UUID | None, *, platform: bool = False) -> str:
    """The SQL that names a transaction's tenant (and platform scope), with the tenant as a literal: it is a UUID
    object rendered by Python, never caller text."""
    tenant = str(uuid.UUID(str(tenant_id))) if tenant_id else ""
    sql = f"SELECT set_config('app.tenant_id', '{tenant}', true);"
    if platform:
        sql += " SELECT set_config('app.platform_scope', 'on', true);"
    return sql


PING_AFTER_IDLE = 1.0  # seconds in the pool after which a connection is pinged before it is lent out


def scoped_statement(sql: str, parameter_count: int) -> str:
    """`sql` (one SELECT of one value, parameters $1…$n) as a statement that names its transaction's tenant and
    platform scope itself, in parameters $n+1 (tenant id text or '') and $n+2 ('on' or ''). Sent outside a
    transaction block it is a transaction of its own, so the settings (`set_config(…, true)`) end with it.

    Ordering is structural, not left to the planner: the settings are made by a derived table that OFFSET 0 keeps
    from being pulled up, and `sql` is evaluated by the projection of that table's one row, after both values
    exist (a CASE on them); every row-level security check inside `sql` runs after the settings."""
    tenant, platform = parameter_count + 1, parameter_count + 2
    return (f"SELECT CASE WHEN scope.tenant IS NOT NULL AND scope.platform IS NOT NULL THEN ({sql}) END "
            f"FROM (SELECT set_config('app.tenant_id', ${tenant}::text, true) AS tenant, "
            f"set_config('app.platform_scope', ${platform}::text, true) AS platform OFFSET 0) AS scope")


class ScopedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """An asyncpg connection that can append a transaction's scope to the BEGIN that opens it (the BEGIN goes out
    as a simple-protocol message, which may hold several statements): one round trip fewer per request."""

    _pending_scope: str | None = None

    def scope_next_transaction(self, statements: str | None) -> None:
        self._pending_scope = statements

    async def execute(self, query: str, *args: Any, **options: Any) -> str:
        if self._pending_scope is not None and not args and query.startswith("BEGIN"):
            query, self._pending_scope = f"{query} {self._pending_scope}", None
        status: str = await super().execute(query, *args, **options)
        return status


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
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    if timeout is not None:
        millis = str(int(timeout * 1000))
        kwargs.setdefault("pool_timeout", timeout)
        connect_args = {"timeout": timeout, "command_timeout": timeout, "server_settings": {
            "statement_timeout": millis, "idle_in_transaction_session_timeout": str(int(timeout * 2000))},
            **connect_args}
    connect_args.setdefault("connection_class", ScopedConnection)
    # Bound parameters hold customers' emails and addresses: never in an exception message or a log line.
    engine = create_async_engine(async_url(url), pool_size=pool_size, max_overflow=max_overflow,
                                 hide_parameters=True, connect_args=connect_args, **kwargs)
    _VALUE_READS[engine] = ValueReads(engine, pool_size + max_overflow, connect_args)

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            dbapi_connection.run_async(lambda raw: raw.execute("SELECT 1"))
        except Exception as error:  # dead or unusable: the pool replaces it and tries again
            raise DisconnectionError(str(error)) from error

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

    @event.listens_for(engine.sync_engine, "checkin")
    def _no_scope_outlives_its_request(dbapi_connection: Any, record: Any) -> None:
        # A scope set for a transaction that never began must not reach the next borrower of the connection.
        if dbapi_connection is not None and isinstance(dbapi_connection.driver_connection, ScopedConnection):
            dbapi_connection.driver_connection.scope_next_transaction(None)
        record.info["idle_since"] = time.monotonic()

    return engine


async def begin_scoped(connection: AsyncConnection, tenant_id: uuid.UUID | None, *,
                       platform: bool = False) -> AsyncTransaction:
    """Begin `connection`'s transaction named for the tenant (and the platform scope). On the application engine
    the scope goes out in the BEGIN's own round trip; elsewhere it costs a statement of its own."""
    fairy = await connection.get_raw_connection()
    raw = fairy.driver_connection
    transaction = await connection.begin()
    if isinstance(raw, ScopedConnection):
        raw.scope_next_transaction(scope_statements(tenant_id, platform=platform))
        # BEGIN and the scope go out now, as one message: a stalled or failed server surfaces where the transaction
        # begins (the caller throws the connection away), not in the middle of the first statement.
        adapter: Any = fairy.dbapi_connection
        if getattr(adapter, "_transaction", False) is None:
            await adapter._start_transaction()
        return transaction
    await set_tenant(connection, tenant_id)
    if platform:
        await set_platform_scope(connection)
    return transaction


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


class ValueReads:
    """The application engine's single-value reads outside a transaction block (a compiled read that is all of its
    request's database work: `scoped_statement`) on a pool of driver connections of their own: no SQLAlchemy
    checkout, adaptation or reset around one `fetchval`, the same role, timeouts and connection class as the
    engine's. Their statements are planned generically (`plan_cache_mode`): a compiled statement is built for every
    value of its parameters (bind parameters of the variables' shape), names its tenant only after planning, and
    its custom plans were no better while costing a planning per request (the admin listing: 1.56 → 0.80 ms)."""

    def __init__(self, engine: AsyncEngine, size: int, connect_args: dict[str, Any]) -> None:
        url = engine.url.set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.size = size
        self.connect_args = {key: value for key, value in connect_args.items() if key != "timeout"}
        self.connect_args["server_settings"] = {**connect_args.get("server_settings", {}),
                                                "plan_cache_mode": "force_generic_plan"}
        self.timeout: float | None = connect_args.get("timeout")
        self.connected: list[Callable[[asyncpg.Connection], None]] = []  # called with each new connection (tests)
        self._pool: asyncpg.Pool | None = None
        self._creating: asyncio.Lock | None = None

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._creating = self._creating or asyncio.Lock()
            async with self._creating:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=0, max_size=self.size, max_inactive_connection_lifetime=60.0,
                        init=self._init, reset=_unchanged, timeout=self.timeout, **self.connect_args)
        return self._pool

    async def _init(self, connection: asyncpg.Connection) -> None:
        await connection.execute(f"SET ROLE {APP_ROLE}")
        for hook in self.connected:
            hook(connection)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def _unchanged(connection: asyncpg.Connection) -> None:
    """A value read changes nothing of its session (its settings are its transaction's): nothing to reset when it
    goes back to the pool (asyncpg's default reset costs a round trip per release)."""
    if connection.is_in_transaction():  # never left by a value read; only a cut-off one could, and it is dropped
        await connection.execute("ROLLBACK")


_VALUE_READS: weakref.WeakKeyDictionary[AsyncEngine, ValueReads] = weakref.WeakKeyDictionary()


def value_reads(engine: AsyncEngine) -> ValueReads | None:
    """The engine's pool for single-value reads (application engines only)."""
    return _VALUE_READS.get(engine)
