"""One database transaction per GraphQL operation, scoped to the request's tenant.

Resolvers of one operation run concurrently, but one asyncpg connection runs one statement at a time, so every
use of the connection takes the request's lock. Each mutation field runs in its own savepoint (`mutate`): a
failed mutation rolls back its own writes and nothing else; the transaction commits when the operation ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Result
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from cityos.db import set_platform_scope, set_tenant
from cityos.errors import Unavailable
from cityos.realtime.events import PendingEvents

T = TypeVar("T")


class RequestDatabase:
    def __init__(self, engine: AsyncEngine, events: PendingEvents | None = None) -> None:
        self.engine = engine
        self.events = events or PendingEvents()
        self.tenant_id: uuid.UUID | None = None
        self.platform_scope = False
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._lock = asyncio.Lock()
        self._finished = False

    def scope_to(self, tenant_id: uuid.UUID | None, *, platform: bool = False) -> None:
        if self._connection is not None:
            raise RuntimeError("the tenant of a request is fixed once its transaction has begun")
        self.tenant_id = tenant_id
        self.platform_scope = platform

    async def _open(self) -> AsyncConnection:
        if self._finished:
            # A resolver still running after its operation ended (a sibling failed): it gets no connection.
            raise Unavailable("the operation has already ended")
        if self._connection is None:
            try:
                connection = await self.engine.connect()
                self._transaction = await connection.begin()
                await set_tenant(connection, self.tenant_id)
                if self.platform_scope:
                    await set_platform_scope(connection)
            except (OperationalError, InterfaceError, OSError) as error:
                raise Unavailable("the database is unavailable") from error
            self._connection = connection
        return self._connection

    async def execute(self, statement: Any, parameters: dict[str, Any] | None = None) -> Result[Any]:
        async with self._lock:
            connection = await self._open()
            result: Result[Any] = await connection.execute(statement, parameters)
            return result

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run several statements (a service call) with the connection to itself."""
        async with self._lock:
            return await work(await self._open())

    async def mutate(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run a mutation in a savepoint: on any error its writes, and the live events it announced, are undone;
        the request goes on."""
        async with self._lock:
            connection = await self._open()
            mark = len(self.events.events)
            try:
                async with connection.begin_nested():
                    return await work(connection)
            except BaseException:
                del self.events.events[mark:]
                raise

    async def finish(self, *, commit: bool) -> None:
        async with self._lock:
            self._finished = True
            await self._end(commit)

    async def _end(self, commit: bool) -> None:
        connection, transaction = self._connection, self._transaction
        self._connection = self._transaction = None
        if connection is None or transaction is None:
            return
        try:
            if commit and transaction.is_active:
                await transaction.commit()
            elif transaction.is_active:
                await transaction.rollback()
        except DBAPIError as error:
            raise Unavailable("the database could not commit the operation") from error
        finally:
            await connection.close()
