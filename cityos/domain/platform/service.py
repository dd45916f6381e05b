"""Recording audit entries in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.platform.models import AuditLog


async def audit(connection: AsyncConnection, *, tenant_id: uuid.UUID | None, actor: str, action: str,
                target_kind: str, target_id: uuid.UUID | str, **details: Any) -> None:
    await connection.execute(insert(AuditLog).values(
        id=uuid.uuid4(), tenant_id=tenant_id, actor=actor, action=action, target_kind=target_kind,
        target_id=str(target_id), details={key: str(value) for key, value in details.items()}))
