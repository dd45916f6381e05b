"""process-billing-cycles (hourly at :05): charge every subscription whose period has ended, exactly once per
cycle (the steps are domain/billing/service.py's), tenant by tenant."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.billing.service import process_billing_cycles as process_tenant
from cityos.integrations.stripe.billing import StripeBilling


def utc_now() -> datetime:
    return datetime.now(UTC)


async def process_billing_cycles(engine: AsyncEngine, stripe_client: Any, tenant_id: uuid.UUID,
                                 clock: Callable[[], datetime] = utc_now) -> dict[str, int]:
    """One tenant's run. `clock` is the seam tests move time forward with."""
    return await process_tenant(engine, StripeBilling(stripe_client), tenant_id, clock())
