"""Recording audit entries in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.platform.models import AuditLog


async def audit(connection: AsyncConnection, *, tenant_id: uuid.UUID | None, actor: str, action: str,
                target_kind: str, target_id: uuid.UUID | str, request_id: str | None = None, **details: Any) -> None:
    """An explicit entry, for what the audit trigger does not see: a platform operation (a tenant created), or a
    mutation whose work runs in transactions of its own (a webhook event replayed). Changes of audited tables
    in a mutation's transaction are recorded by the trigger (db/audit.py)."""
    await connection.execute(insert(AuditLog).values(
        id=uuid.uuid4(), tenant_id=tenant_id, actor=actor, action=action, target_kind=target_kind,
        target_id=str(target_id), request_id=request_id,
        details={key: str(value) for key, value in details.items()}))
