"""Business and integration gauges, read from the database when Prometheus scrapes (at most once per
`MAX_AGE` seconds per process, one refresh at a time; a failed refresh keeps the last figures and says how old
they are). The figures: domain/reporting/business.py.

    cityos_orders{tenant,status}                       orders by status
    cityos_gmv_minor_units{tenant,currency}            total of paid, fulfilled and completed orders
    cityos_refunds{tenant,status}                      refunds by status (pending, succeeded, failed)
    cityos_refunded_minor_units{tenant,currency,status} refund amounts by status
    cityos_quotes{tenant,status}                       B2B quotes by status
    cityos_approval_requests{tenant,status}            B2B approval requests by status
    cityos_payouts{tenant,status}                      payouts by status (failed: a Connect transfer refused)
    cityos_payout_amount_minor_units{tenant,currency,status}
    cityos_customer_subscriptions{tenant,status}       recurring subscriptions by status
    cityos_webhook_events{source,status}               webhook receipts: processed, refused, failed, ignored
    cityos_outbox_messages{topic,status}               outbox depth (pending) and dead letters (dead)
    cityos_sync_lag_seconds{integration}               the oldest successful sync per integration (payload, erpnext)
    cityos_sync_failures{integration}                  failures in a row, summed over tenants
    cityos_job_runs_last_24h{job,outcome}              job runs of the last day (any runner), by outcome
    cityos_job_seconds_since_ok{job}                   since the job's last successful run
    cityos_business_metrics_age_seconds                how old the figures above are
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.reporting.business import Snapshot, snapshot

log = logging.getLogger(__name__)
MAX_AGE = 30.0
GAUGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "orders": ("cityos_orders", "Orders by status", ("tenant", "status")),
    "gmv": ("cityos_gmv_minor_units", "Gross merchandise value: paid, fulfilled and completed orders, in minor "
                                      "units", ("tenant", "currency")),
    "refunds": ("cityos_refunds", "Refunds by status (pending, succeeded, failed)", ("tenant", "status")),
    "refunded": ("cityos_refunded_minor_units", "Refund amounts by status, in minor units",
                 ("tenant", "currency", "status")),
    "quotes": ("cityos_quotes", "B2B quotes by status", ("tenant", "status")),
    "approvals": ("cityos_approval_requests", "B2B approval requests by status", ("tenant", "status")),
    "payouts": ("cityos_payouts", "Vendor payouts by status", ("tenant", "status")),
    "payout_amount": ("cityos_payout_amount_minor_units", "Vendor payout amounts by status, in minor units",
                      ("tenant", "currency", "status")),
    "subscriptions": ("cityos_customer_subscriptions", "Recurring subscriptions by status", ("tenant", "status")),
    "webhooks": ("cityos_webhook_events", "Webhook events received, by source and outcome", ("source", "status")),
    "outbox": ("cityos_outbox_messages", "Outbox messages by topic and status (pending: depth; dead: dead letters)",
               ("topic", "status")),
    "sync_lag": ("cityos_sync_lag_seconds", "Seconds since the oldest tenant's last successful sync",
                 ("integration",)),
    "sync_failures": ("cityos_sync_failures", "Sync failures in a row, summed over tenants", ("integration",)),
    "job_runs": ("cityos_job_runs_last_24h", "Scheduled job runs started in the last 24 hours, by outcome (from "
                                             "job_run: scheduler replicas and CronJob pods alike)", ("job", "outcome")),
    "job_since_ok": ("cityos_job_seconds_since_ok", "Seconds since the job's last successful run ended", ("job",)),
}


class BusinessMetrics(Collector):
    def __init__(self) -> None:
        self.latest = Snapshot()
        self.refreshed_at: float | None = None  # monotonic
        self._lock = asyncio.Lock()

    async def refresh(self, engine: AsyncEngine, *, top_tenants: int, max_age: float = MAX_AGE,
                      deadline: float = 5.0) -> None:
        if self.refreshed_at is not None and time.monotonic() - self.refreshed_at < max_age:
            return
        async with self._lock:
            if self.refreshed_at is not None and time.monotonic() - self.refreshed_at < max_age:
                return
            try:
                async with asyncio.timeout(deadline), tenant_transaction(engine, None) as connection:
                    self.latest = await snapshot(connection, top_tenants=top_tenants)
                self.refreshed_at = time.monotonic()
            except Exception:  # the last figures stay, their age grows: alert on the age
                log.exception("refreshing the business metrics failed")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for key, (name, documentation, labels) in GAUGES.items():
            family = GaugeMetricFamily(name, documentation, labels=list(labels))
            for values, value in sorted(self.latest.values.get(key, {}).items()):
                family.add_metric(list(values), value)
            yield family
        age = GaugeMetricFamily("cityos_business_metrics_age_seconds", "Age of the business figures (seconds; "
                                "-1 before the first refresh)")
        age.add_metric([], time.monotonic() - self.refreshed_at if self.refreshed_at is not None else -1.0)
        yield age


BUSINESS = BusinessMetrics()
REGISTRY.register(BUSINESS)
