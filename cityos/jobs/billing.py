"""The billing jobs, tenant by tenant (the steps are domain/billing's): process-billing-cycles (hourly at :05)
charges every subscription whose period ended, exactly once per cycle, and turns each paid cycle into its renewal
order; retry-failed-payments (every 6 hours) is the dunning schedule. Both publish their live events after commit
and refresh the tenant's billing gauges (active subscriptions, MRR, churn) and the failed-renewal counter."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.db.engines import tenant_transaction
from cityos.domain.billing import runs
from cityos.domain.billing.queries import tenant_metrics
from cityos.integrations.stripe.billing import StripeBilling
from cityos.observability.metrics import (
    BILLING_ACTIVE,
    BILLING_CHURN,
    BILLING_FAILED_RENEWALS,
    BILLING_MRR,
)
from cityos.realtime.events import PendingEvents

_MRR_CURRENCIES: dict[str, set[str]] = {}  # the currencies each tenant's MRR gauge was set for in this process


def utc_now() -> datetime:
    return datetime.now(UTC)


async def refresh_metrics(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> str:
    """The tenant's gauges (label: its slug, like the business gauges): active subscriptions, MRR per currency
    (normalized to a month), 30-day churn. Returns the label."""
    async with tenant_transaction(engine, tenant_id) as connection:
        metrics = await tenant_metrics(connection, now)
    tenant = metrics.tenant
    BILLING_ACTIVE.labels(tenant).set(metrics.active)
    currencies = _MRR_CURRENCIES.setdefault(tenant, set())
    for currency in currencies - set(metrics.mrr):  # no live subscription in it any more: 0, not a stale value
        BILLING_MRR.labels(tenant, currency).set(0)
    for currency, amount in metrics.mrr.items():
        BILLING_MRR.labels(tenant, currency).set(amount)
    currencies.update(metrics.mrr)
    BILLING_CHURN.labels(tenant).set(float(metrics.churn))
    return tenant


async def _publish(events: PendingEvents, broker: Any) -> None:
    if broker is not None:
        await events.publish(broker)


async def process_billing_cycles(engine: AsyncEngine, stripe_client: Any, settings: Settings,
                                 tenant_id: uuid.UUID, clock: Callable[[], datetime] = utc_now,
                                 broker: Any = None) -> dict[str, int]:
    """One tenant's run. `clock` is the seam tests move time forward with."""
    now, events = clock(), PendingEvents()
    counts = await runs.process_billing_cycles(engine, StripeBilling(stripe_client), settings,
                                               tenant_id, now, events)
    await _publish(events, broker)
    BILLING_FAILED_RENEWALS.labels(await refresh_metrics(engine, tenant_id, now)).inc(counts["declined"])
    return counts


async def retry_failed_payments(engine: AsyncEngine, stripe_client: Any, settings: Settings,
                                tenant_id: uuid.UUID, clock: Callable[[], datetime] = utc_now,
                                broker: Any = None) -> dict[str, int]:
    """One tenant's dunning run. `clock` is the seam tests move time forward with."""
    now, events = clock(), PendingEvents()
    counts = await runs.retry_failed_payments(engine, StripeBilling(stripe_client), settings,
                                              tenant_id, now, events)
    await _publish(events, broker)
    BILLING_FAILED_RENEWALS.labels(await refresh_metrics(engine, tenant_id, now)).inc(counts["declined"])
    return counts
