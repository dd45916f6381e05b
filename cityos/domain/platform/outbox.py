"""Writing to the outbox inside a business transaction: the call out happens only if the transaction commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.platform.models import Outbox

OUTBOX = table_of(Outbox)
MAX_ATTEMPTS = 5


async def enqueue(connection: AsyncConnection, *, tenant_id: uuid.UUID, topic: str, payload: dict[str, Any]) -> None:
    await connection.execute(insert(OUTBOX).values(id=uuid.uuid4(), tenant_id=tenant_id, topic=topic,
                                                   payload=payload))
