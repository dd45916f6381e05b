"""expire-quotes (daily at 01:00 UTC): every quote past its validity date is marked expired, tenant by tenant
(the step is domain/b2b/service.py's; a second run the same day finds nothing). mark-overdue-invoices (daily at
01:15 UTC): invoices on account past their due date become overdue (credit hold) and their company's admins are
reminded (domain/b2b/overdue.py). Two jobs, not one: they change different things and fail independently."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.b2b.overdue import mark_overdue_invoices as mark_tenant_invoices
from cityos.domain.b2b.service import expire_quotes as expire_tenant_quotes


def utc_now() -> datetime:
    return datetime.now(UTC)


async def expire_quotes(engine: AsyncEngine, tenant_id: uuid.UUID,
                        clock: Callable[[], datetime] = utc_now) -> dict[str, int]:
    """One tenant's run. `clock` is the seam tests move time forward with."""
    return await expire_tenant_quotes(engine, tenant_id, clock())


async def mark_overdue_invoices(engine: AsyncEngine, tenant_id: uuid.UUID,
                                clock: Callable[[], datetime] = utc_now) -> dict[str, int]:
    """One tenant's run. `clock` is the seam tests move time forward with."""
    return await mark_tenant_invoices(engine, tenant_id, clock())
