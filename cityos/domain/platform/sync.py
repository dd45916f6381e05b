"""Sync cursors: how far each sync with an external system got, per tenant, so that a run that failed half-way
resumes where it stopped (the next run starts after the last object sent or received), and the last failure.

A cursor is a keyset position `(position_at, position_id)` in the order the sync walks (ours: `updated_at, id`;
Payload's: `updatedAt`). A run advances it after every object it finished, so nothing is lost and nothing is sent
twice when a run dies in the middle of a page.

The settle horizon: `updated_at` is the time its transaction started (`now()`), not when it committed. A row
written by a transaction that started before a run read the page and committed after it would fall behind the
cursor and never be sent. So a run reads only rows older than `settle` seconds (`CITYOS_SYNC_SETTLE_SECONDS`,
longer than any transaction of ours stays open: requests and statements are bounded by CITYOS_DB_TIMEOUT), and
a row is sent once its transaction can no longer be open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, DateTime, Integer, String, func, select, tuple_
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, table_of

ERROR_LENGTH = 1000


class SyncCursor(Base):
    __tablename__ = "sync_cursor"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. payload.push.product
    position_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    position_id: Mapped[str | None] = mapped_column(String(100))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


CURSOR = table_of(SyncCursor)


@dataclass(frozen=True)
class Position:
    at: datetime | None
    id: str | None


def changed_since(updated_at: ColumnElement[datetime], object_id: ColumnElement[uuid.UUID], after: Position,
                  settle: float) -> list[ColumnElement[bool]]:
    """The keyset predicates of a walk in (updated_at, id) order: after the cursor, and settled (older than
    `settle` seconds at the statement's time, see the module's note)."""
    predicates: list[ColumnElement[bool]] = []
    if after.at is not None and after.id is not None:
        predicates.append(tuple_(updated_at, object_id) > tuple_(after.at, uuid.UUID(after.id)))
    elif after.at is not None:
        predicates.append(updated_at > after.at)
    if settle > 0:
        predicates.append(updated_at < func.statement_timestamp() - func.make_interval(0, 0, 0, 0, 0, 0, settle))
    return predicates


async def position(connection: AsyncConnection, tenant_id: uuid.UUID, stream: str) -> Position:
    row = (await connection.execute(select(CURSOR.c.position_at, CURSOR.c.position_id).where(
        CURSOR.c.tenant_id == tenant_id, CURSOR.c.stream == stream))).first()
    return Position(row.position_at, row.position_id) if row else Position(None, None)


async def advance(connection: AsyncConnection, tenant_id: uuid.UUID, stream: str, at: datetime,
                  object_id: str | None) -> None:
    await connection.execute(insert(CURSOR).values(
        tenant_id=tenant_id, stream=stream, position_at=at, position_id=object_id, last_run_at=func.now(),
    ).on_conflict_do_update(index_elements=["tenant_id", "stream"], set_={
        "position_at": at, "position_id": object_id, "last_run_at": func.now(), "updated_at": func.now()}))


async def finish(connection: AsyncConnection, tenant_id: uuid.UUID, stream: str, error: str | None) -> None:
    """Record how a run ended: a success clears the error and the count of failures in a row."""
    inserted: dict[str, object]
    if error is None:
        inserted = {"last_error": None, "failures": 0, "last_success_at": func.now()}
        updated: dict[str, object] = dict(inserted)
    else:
        inserted = {"last_error": error[:ERROR_LENGTH], "failures": 1}
        updated = {"last_error": error[:ERROR_LENGTH], "failures": CURSOR.c.failures + 1}
    await connection.execute(insert(CURSOR).values(
        tenant_id=tenant_id, stream=stream, last_run_at=func.now(), **inserted,
    ).on_conflict_do_update(index_elements=["tenant_id", "stream"],
                            set_={**updated, "last_run_at": func.now(), "updated_at": func.now()}))
