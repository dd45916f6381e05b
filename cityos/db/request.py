"""One database transaction per GraphQL operation, scoped to the request's tenant.

Resolvers of one operation run concurrently, but one asyncpg connection runs one statement at a time, so every
use of the connection takes the request's lock. Each mutation field runs in its own savepoint (`mutate`): a
failed mutation rolls back its own writes and nothing else; the transaction commits when the operation ends.

An error affects only its own field. A failed read before any write starts the transaction afresh; after a
mutation it rolls back to the recovery savepoint taken when that mutation succeeded. Either way the next statement
of a sibling field runs and no write of an earlier mutation is lost, and a read-only operation pays nothing for it.
Statements are shielded from cancellation (graphql-core cancels the siblings of a field whose error nulls their
parent): a statement cut off half-way would leave the connection unusable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from cityos.db.audit import AuditActor, name_actor
from cityos.db.engines import ValueReads, begin_scoped, scoped_statement, value_reads
from cityos.errors import Unavailable
from cityos.realtime.events import PendingEvents

T = TypeVar("T")
RECOVERY_SAVEPOINT = "cityos_recovery"


# A connection that died in the pool (the server ended it, the socket closed; or asyncpg left it mid-operation when
# it did, "another operation is in progress"): thrown away, and a read is tried once more on another
DEAD_CONNECTION = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError,
                   asyncpg.exceptions.InternalClientError, OSError)
QUERY_CANCELED = "57014"  # SQLSTATE of a statement cancelled by statement_timeout (or a cancel request)


def _statement_timed_out(error: DBAPIError) -> bool:
    """The server cancelled the statement at its statement_timeout: a slow database, not a defect (UNAVAILABLE,
    like a client-side timeout). The connection stays usable: the transaction was recovered."""
    original = error.orig
    return QUERY_CANCELED in {getattr(original, "sqlstate", None), getattr(original, "pgcode", None),
                              getattr(getattr(original, "__cause__", None), "sqlstate", None)}


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
        self._written = False  # a mutation succeeded: recovery rolls back to its savepoint, not further
        self._lost = False  # the transaction was abandoned after a timeout
        # No connection could be had, or a value read found the database stalled: the request's later tries fail
        # fast (a request handed from the warm path to the full one does not wait twice).
        self._unreachable: Unavailable | None = None
        # Who changes what (db/audit.py): set once the caller is identified; `action` is the mutation field
        # being resolved (set by the schema before each root mutation field runs).
        self.audit_actor: AuditActor | None = None
        self.action: str | None = None

    @property
    def started(self) -> bool:
        """Whether its transaction has begun (its engine can no longer change)."""
        return self._connection is not None or self._finished

    def scope_to(self, tenant_id: uuid.UUID | None, *, platform: bool = False) -> None:
        if self._connection is not None:
            raise RuntimeError("the tenant of a request is fixed once its transaction has begun")
        self.tenant_id = tenant_id
        self.platform_scope = platform

    async def _open(self) -> AsyncConnection:
        if self._finished:
            # A resolver still running after its operation ended (a sibling failed): it gets no connection.
            raise Unavailable("the operation has already ended")
        for attempt in range(2):
            if self._connection is not None:
                break
            connection = await self._checkout()
            try:
                await self._begin(connection)
            except Exception as error:  # the driver's own errors too: BEGIN runs below SQLAlchemy here
                # A pooled connection that died while idle (the server was killed or stalled) fails on its first
                # statement with whatever asyncpg makes of it ("connection was closed in the middle of
                # operation" is a plain DBAPIError): it is thrown away, never handed back to the pool. Nothing
                # has run yet, so the request tries once more on another connection (the pool pings only
                # connections idle for a while, engines.PING_AFTER_IDLE) — not after a timeout: the server is
                # there but stalled, and a second wait would only double the caller's.
                self._transaction = None
                await connection.invalidate()
                await connection.close()
                if attempt or isinstance(error, TimeoutError):
                    raise Unavailable("the database is unavailable") from error
                continue
            self._connection = connection
        assert self._connection is not None
        return self._connection

    async def _checkout(self) -> AsyncConnection:
        if self._unreachable is not None:  # one wait per request for a database that is not there
            raise Unavailable(self._unreachable.message) from self._unreachable
        try:
            return await self.engine.connect()
        except PoolTimeout as error:  # every connection of the pool is busy for CITYOS_DB_TIMEOUT: overload
            self._unreachable = Unavailable("the database is busy; nothing was returned or changed")
            raise self._unreachable from error
        except (DBAPIError, OSError, TimeoutError) as error:
            self._unreachable = Unavailable("the database is unavailable")
            raise self._unreachable from error

    async def _begin(self, connection: AsyncConnection) -> None:
        self._transaction = await begin_scoped(connection, self.tenant_id, platform=self.platform_scope)

    async def execute(self, statement: Any, parameters: dict[str, Any] | None = None) -> Result[Any]:
        async def statement_of(connection: AsyncConnection) -> Result[Any]:
            result: Result[Any] = await connection.execute(statement, parameters)
            return result

        return await self.run(statement_of)

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run reads (one statement or a service's several) with the connection to itself."""
        return await _shielded(self._read(work))

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self._lock:
            return await self._in_transaction(work)

    async def _in_transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work` in the request's transaction (begun if need be); the caller holds the lock. A failed statement
        is recovered from (the transaction stays usable, or is abandoned after a timeout): UNAVAILABLE on a
        timeout, the driver's error otherwise."""
        connection = await self._open()
        try:
            return await work(connection)
        except DBAPIError as error:
            await self._recover(connection, error)
            if _statement_timed_out(error):
                raise Unavailable("the database did not answer in time; nothing was returned") from error
            raise
        except TimeoutError as error:
            await self._abandon(connection)
            raise Unavailable("the database did not answer in time; nothing was returned") from error

    async def read_value(self, sql: str, parameters: Sequence[Any]) -> Any:
        """The single value of one read statement (a compiled root field; driver SQL, positional parameters). In
        the request's transaction once it has begun. Before that, as a transaction of its own that names its tenant
        (`engines.scoped_statement`) on a pooled connection: one round trip, no BEGIN, no COMMIT, and the request
        opens no transaction unless something else needs one. Only reads of query operations come here: they see
        what every other statement of theirs would (READ COMMITTED takes a snapshot per statement anyway)."""
        return await _shielded(self._read_value(sql, tuple(parameters)))

    async def _read_value(self, sql: str, parameters: tuple[Any, ...]) -> Any:
        async with self._lock:
            if self._connection is not None or self._finished:
                async def value(connection: AsyncConnection) -> Any:
                    return (await connection.exec_driver_sql(sql, parameters)).scalar_one()

                return await self._in_transaction(value)
            scoped = scoped_statement(sql, len(parameters))
            arguments = (*parameters, str(self.tenant_id) if self.tenant_id else "",
                         "on" if self.platform_scope else "")
            reads = value_reads(self.engine)
            if reads is not None:
                return await self._read_pooled(reads, scoped, arguments)
            for attempt in range(2):
                connection = await self._checkout()
                try:
                    # On the driver's connection: no BEGIN (outside a transaction block the statement is its own
                    # transaction) and none of the SQLAlchemy cursor adaptation a single value does not need.
                    driver = (await connection.get_raw_connection()).driver_connection
                    assert driver is not None
                    return await driver.fetchval(scoped, *arguments)
                except asyncpg.QueryCanceledError as error:
                    raise Unavailable("the database did not answer in time; nothing was returned") from error
                except DEAD_CONNECTION as error:  # a connection that died in the pool: tried once more on another
                    await connection.invalidate()
                    if attempt:
                        raise Unavailable("the database is unavailable") from error
                except TimeoutError as error:  # cut off on the client: the connection's state is unknown
                    await connection.invalidate()
                    self._unreachable = Unavailable("the database did not answer in time; nothing was returned")
                    raise self._unreachable from error
                finally:
                    await connection.close()
            raise AssertionError("unreachable")

    async def _read_pooled(self, reads: ValueReads, sql: str, arguments: tuple[Any, ...]) -> Any:
        """One value on the engine's value-read pool (engines.ValueReads), with the failures typed as on the
        engine: a dead pooled connection is tried once more on another, a stalled or unreachable database is
        UNAVAILABLE (waited for once per request)."""
        if self._unreachable is not None:
            raise Unavailable(self._unreachable.message) from self._unreachable
        for attempt in range(2):
            try:
                pool = await reads.pool()
                connection = await pool.acquire(timeout=reads.timeout)
            except TimeoutError as error:  # every connection busy for CITYOS_DB_TIMEOUT: overload
                self._unreachable = Unavailable("the database is busy; nothing was returned or changed")
                raise self._unreachable from error
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                self._unreachable = Unavailable("the database is unavailable")
                raise self._unreachable from error
            try:
                return await connection.fetchval(sql, *arguments)
            except asyncpg.QueryCanceledError as error:
                self._unreachable = Unavailable("the database did not answer in time; nothing was returned")
                raise self._unreachable from error
            except DEAD_CONNECTION as error:
                connection.terminate()
                if attempt:
                    self._unreachable = Unavailable("the database is unavailable")
                    raise self._unreachable from error
            except TimeoutError as error:  # cut off on the client: the connection's state is unknown
                connection.terminate()
                self._unreachable = Unavailable("the database did not answer in time; nothing was returned")
                raise self._unreachable from error
            except BaseException:  # anything else: the connection's state is unknown, it does not go back
                connection.terminate()
                raise
            finally:
                await pool.release(connection)
        raise AssertionError("unreachable")

    async def mutate(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run a mutation in a savepoint: on any error its writes, and the live events it announced, are undone;
        the request goes on. Once it succeeded, a later failing read cannot undo it."""
        return await _shielded(self._mutate(work))

    async def _mutate(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self._lock:
            connection = await self._open()
            mark = len(self.events.events)
            try:
                async with connection.begin_nested():
                    await name_actor(connection, self.audit_actor, self.action)
                    result = await work(connection)
            except TimeoutError as error:
                del self.events.events[mark:]
                await self._abandon(connection)
                raise Unavailable("the database did not answer in time; nothing was changed") from error
            except DBAPIError as error:
                del self.events.events[mark:]
                if error.connection_invalidated:
                    await self._abandon(connection)
                    raise Unavailable("the database is unavailable; nothing was changed") from error
                if _statement_timed_out(error):
                    raise Unavailable("the database did not answer in time; nothing was changed") from error
                raise
            except BaseException:
                del self.events.events[mark:]
                raise
            # The newest savepoint of a name shadows the older: a rollback to it keeps this mutation's writes.
            await connection.exec_driver_sql(f"SAVEPOINT {RECOVERY_SAVEPOINT}")
            self._written = True
            return result

    async def _abandon(self, connection: AsyncConnection) -> None:
        """A statement timed out: the connection's state is unknown, so it is thrown away (never back in the pool)
        and the operation gets no other (its transaction, and any write in it, is gone)."""
        self._connection = self._transaction = None
        self._finished = True
        self._lost = True
        await connection.invalidate()

    async def _recover(self, connection: AsyncConnection, error: DBAPIError) -> None:
        """Undo the failed statement's effect on the transaction, or give the connection up."""
        if error.connection_invalidated:
            # The connection is gone with its transaction: committing it at the end would raise SQLAlchemy's
            # PendingRollbackError (untyped, at the top of the response); it is abandoned like a timed-out one.
            await self._abandon(connection)
            raise Unavailable("the database is unavailable") from error
        try:
            if self._written:
                await connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {RECOVERY_SAVEPOINT}")
            elif self._transaction is not None:
                await self._transaction.rollback()
                await self._begin(connection)
        except DBAPIError as lost:
            await self._abandon(connection)
            raise Unavailable("the database is unavailable") from lost

    async def finish(self, *, commit: bool) -> None:
        async with self._lock:
            self._finished = True
            if commit and self._lost and self._written:
                raise Unavailable("the database stopped answering; nothing of this operation was saved")
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
        except (DBAPIError, TimeoutError) as error:
            raise Unavailable("the database could not commit the operation") from error
        finally:
            await connection.close()


async def _shielded(work: Awaitable[T]) -> T:
    """Run `work` to its end even when the awaiting resolver is cancelled; its outcome is then dropped."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_observe)
    return await asyncio.shield(task)


def _observe(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so an abandoned failure is not reported as never retrieved
