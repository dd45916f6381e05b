"""expire-quotes (daily at 01:00 UTC): every quote past its validity date is marked expired, tenant by tenant
(the step is domain/b2b/service.py's; a second run the same day finds nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.b2b.service import expire_quotes as expire_tenant_quotes


def utc_now() -> datetime:
    return datetime.now(UTC)


async def expire_quotes(engine: AsyncEngine, tenant_id: uuid.UUID,
                        clock: Callable[[], datetime] = utc_now) -> dict[str, int]:
    """One tenant's run. `clock` is the seam tests move time forward with."""
    return await expire_tenant_quotes(engine, tenant_id, clock())
