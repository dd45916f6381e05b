"""The jobs of the platform, by name, with their deployed schedules (cron syntax)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.jobs.erpnext import sync_to_erpnext
from cityos.jobs.outbox import dispatch_outbox
from cityos.jobs.payload import sync_from_payload, sync_to_payload
from cityos.jobs.payouts import process_vendor_payouts
from cityos.jobs.reservations import release_expired_reservations


@dataclass(frozen=True)
class JobContext:
    engine: AsyncEngine  # the app role; jobs take an explicit platform scope where they cross tenants
    settings: Settings
    stripe: Any
    http: Any = None  # httpx.AsyncClient for the HTTP integrations
    broker: Any = None  # live events of the job are published here after commit


JobFunction = Callable[[JobContext], Awaitable[str]]


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    run: JobFunction
    description: str


JOBS = {job.name: job for job in (
    Job("release-expired-reservations", "*/5 * * * *", lambda c: release_expired_reservations(c.engine),
        "Give stock reserved by abandoned checkouts back to their variants."),
    Job("dispatch-outbox", "* * * * *", lambda c: dispatch_outbox(c.engine, c.settings, c.http, c.broker, c.stripe),
        "Send the calls written to the outbox (Fleetbase orders and cancellations; Stripe cancellations of "
        "superseded checkouts and refunds of payments that could not become orders) with retries and backoff."),
    Job("process-vendor-payouts", "0 2 * * *",
        lambda c: process_vendor_payouts(c.engine, c.stripe, c.settings.CITYOS_PAYOUT_MINIMUM),
        "Transfer every vendor's available balance to its Stripe account, exactly once."),
    Job("sync-to-payload", "*/30 * * * *", lambda c: sync_to_payload(c.engine, c.settings, c.http),
        "Upsert changed products, categories, vendors and stores into Payload CMS, tenant by tenant from its "
        "cursor (we own commerce; Payload owns content)."),
    Job("sync-from-payload", "0 * * * *", lambda c: sync_from_payload(c.engine, c.settings, c.http),
        "Pull content changed in Payload CMS since each tenant's cursor (descriptions, images, SEO, brand)."),
    Job("sync-to-erpnext", "0 3 * * *", lambda c: sync_to_erpnext(c.engine, c.settings, c.http),
        "Catch up accounting: every order paid or refunded since each tenant's cursor goes to ERPNext (customer, "
        "submitted Sales Invoice, Payment Entry, credit note) through the outbox."),
)}
