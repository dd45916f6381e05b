"""The jobs of the platform: the one registry that drives the in-process scheduler (`cityos serve`), the
`cityos jobs run NAME` command and the generated Kubernetes CronJobs (`cityos jobs manifests`).

Each job has a name, a cron schedule (5 fields, UTC, read by croniter), a timeout, a description and a scope:
global (one run across all tenants, in an explicit platform scope) or per tenant (the runner calls it once per
active tenant with `JobContext.tenant_id` set, each in that tenant's scope, so one tenant's failure does not stop
the others). Only jobs that exist are registered; later features add theirs here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.jobs.billing import process_billing_cycles, retry_failed_payments
from cityos.jobs.erpnext import sync_to_erpnext
from cityos.jobs.history import prune_job_runs
from cityos.jobs.outbox import dispatch_outbox
from cityos.jobs.payload import sync_from_payload, sync_to_payload
from cityos.jobs.payouts import process_vendor_payouts
from cityos.jobs.quotes import expire_quotes, mark_overdue_invoices
from cityos.jobs.reservations import release_expired_reservations


@dataclass(frozen=True)
class JobContext:
    engine: AsyncEngine  # the app role; jobs take an explicit platform scope where they cross tenants
    settings: Settings
    stripe: Any
    http: Any = None  # httpx.AsyncClient for the HTTP integrations
    broker: Any = None  # live events of the job are published here after commit
    tenant_id: uuid.UUID | None = None  # set for each tenant's call of a per-tenant job

    @property
    def tenant(self) -> uuid.UUID:
        """The tenant of a per-tenant job's call."""
        if self.tenant_id is None:
            raise RuntimeError("a per-tenant job was called without a tenant")
        return self.tenant_id


# A job returns a one-line summary, or counts (JSON-serializable) that the run records.
JobResult = str | Mapping[str, Any]
JobFunction = Callable[[JobContext], Awaitable[JobResult]]


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str  # cron, 5 fields, UTC
    run: JobFunction
    description: str
    timeout: float = 300.0  # seconds a run may take before it is cancelled and recorded as a timeout
    per_tenant: bool = False

    def __post_init__(self) -> None:
        if len(self.schedule.split()) != 5 or not croniter.is_valid(self.schedule):
            raise ValueError(f"job {self.name}: {self.schedule!r} is not a 5-field cron expression")
        if self.timeout <= 0:
            raise ValueError(f"job {self.name}: the timeout must be positive")


def registry(*jobs: Job) -> dict[str, Job]:
    names = [job.name for job in jobs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"jobs registered twice: {', '.join(duplicates)}")
    return {job.name: job for job in jobs}


JOBS = registry(
    Job("release-expired-reservations", "*/5 * * * *", lambda c: release_expired_reservations(c.engine),
        "Give stock reserved by abandoned checkouts back to their variants.", timeout=120),
    Job("dispatch-outbox", "* * * * *", lambda c: dispatch_outbox(c.engine, c.settings, c.http, c.broker, c.stripe),
        "Send the calls written to the outbox (Fleetbase orders and cancellations; Stripe cancellations of "
        "superseded checkouts and refunds of payments that could not become orders) with retries and backoff.",
        timeout=300),
    Job("process-vendor-payouts", "0 2 * * *",
        lambda c: process_vendor_payouts(c.engine, c.stripe, c.settings.CITYOS_PAYOUT_MINIMUM, [c.tenant]),
        "Transfer every vendor's available balance to its Stripe account, exactly once (tenant by tenant).",
        timeout=1800, per_tenant=True),
    Job("sync-to-payload", "*/30 * * * *",
        lambda c: sync_to_payload(c.engine, c.settings, c.http, tenant_ids=[c.tenant]),
        "Upsert the tenant's changed products, categories, vendors and stores into Payload CMS from its cursor "
        "(we own commerce; Payload owns content).", timeout=1200, per_tenant=True),
    Job("sync-from-payload", "0 * * * *",
        lambda c: sync_from_payload(c.engine, c.settings, c.http, tenant_ids=[c.tenant]),
        "Pull the tenant's content changed in Payload CMS since its cursor (descriptions, images, SEO, brand).",
        timeout=1200, per_tenant=True),
    Job("sync-to-erpnext", "0 3 * * *", lambda c: sync_to_erpnext(c.engine, c.settings, c.http),
        "Catch up accounting: every order paid or refunded since each tenant's cursor goes to ERPNext (customer, "
        "submitted Sales Invoice, Payment Entry, credit note) through the outbox.", timeout=3600),
    Job("process-billing-cycles", "5 * * * *",
        lambda c: process_billing_cycles(c.engine, c.stripe, c.settings, c.tenant, broker=c.broker),
        "Charge every subscription whose billing period ended, off-session and exactly once per cycle, turn each "
        "paid cycle into its renewal order (vendor split, commission ledger, shipment) and advance its period; a "
        "declined renewal makes it past due (tenant by tenant).", timeout=1800, per_tenant=True),
    Job("retry-failed-payments", "0 */6 * * *",
        lambda c: retry_failed_payments(c.engine, c.stripe, c.settings, c.tenant, broker=c.broker),
        "Dunning: charge declined renewals again on the tenant's retry days (default +1, +3, +7 days), then cancel "
        "or pause the subscription; renewals that need the customer's authentication wait for them (tenant by "
        "tenant).", timeout=1800, per_tenant=True),
    Job("expire-quotes", "0 1 * * *", lambda c: expire_quotes(c.engine, c.tenant),
        "Mark every B2B quote past its validity date expired (an expired quote cannot be accepted or ordered) and "
        "close its pending approval request (tenant by tenant).", timeout=600, per_tenant=True),
    Job("mark-overdue-invoices", "15 1 * * *", lambda c: mark_overdue_invoices(c.engine, c.tenant),
        "Mark B2B invoices on account past their due date overdue (their company is on credit hold: no new order "
        "on account until paid) and queue a reminder to the company's admins when one becomes overdue and weekly "
        "after (tenant by tenant).", timeout=600, per_tenant=True),
    Job("prune-job-runs", "30 4 * * *",
        lambda c: prune_job_runs(c.engine, c.settings.CITYOS_JOB_RUN_RETENTION_DAYS, datetime.now(UTC)),
        "Delete the job-run history older than CITYOS_JOB_RUN_RETENTION_DAYS (finished runs only).", timeout=600),
)
