"""Writing to the outbox inside a business transaction: the call out happens only if the transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.platform.models import Outbox

OUTBOX = table_of(Outbox)
MAX_ATTEMPTS = 5


def backoff(attempts: int) -> timedelta:
    """30 s × 2^(attempts − 1), capped at an hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


async def enqueue(connection: AsyncConnection, *, tenant_id: uuid.UUID, topic: str,
                  payload: dict[str, Any]) -> uuid.UUID:
    message_id = uuid.uuid4()
    await connection.execute(insert(OUTBOX).values(id=message_id, tenant_id=tenant_id, topic=topic,
                                                   payload=payload))
    return message_id


async def retry_message(connection: AsyncConnection, message_id: uuid.UUID) -> Any:
    """Back to pending, due now, with a fresh budget of attempts."""
    return (await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message_id).values(
        status="pending", attempts=0, next_attempt_at=func.now(), last_error=None).returning(*OUTBOX.c))).one()


def claimable(message_id: uuid.UUID, topics: Collection[str], *, due_only: bool = True) -> Select[Any]:
    """The message, locked for its sender, while it is pending for one of `topics` (and due, unless `due_only` is
    off): nothing when another sender holds it (skip locked), it was sent, or its time has not come."""
    return select(OUTBOX).where(
        OUTBOX.c.id == message_id, OUTBOX.c.status == "pending", OUTBOX.c.topic.in_(topics),
        *((OUTBOX.c.next_attempt_at <= func.now(),) if due_only else ())).with_for_update(skip_locked=True)
