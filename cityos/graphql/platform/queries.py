"""Platform queries: the outbox, the webhook inbox, checkout attempts (tenant and store admins); job runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.commerce import queries as commerce
from cityos.domain.platform import job_runs
from cityos.domain.platform import queries as platform
from cityos.graphql.commerce.types import (
    CHECKOUT_ATTEMPT,
    CHECKOUT_ATTEMPT_TABLE,
    OUTBOX_MESSAGE,
    OUTBOX_TABLE,
    WEBHOOK_EVENT,
    WEBHOOK_TABLE,
    CheckoutAttempt,
    OutboxMessage,
    WebhookEvent,
)
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import (
    After,
    Connection,
    First,
    PageRequest,
    page_query,
    wants_total,
)
from cityos.graphql.platform.arguments import AttemptStatus, OutboxStatusArg, WebhookStatus
from cityos.graphql.platform.types import AUDIT_ENTRY_DECLARATION, JOB_RUN_DECLARATION, AuditEntry, JobRun

OUTBOX_PLAN_ATTRIBUTES = OUTBOX_MESSAGE.plan_attributes
WEBHOOK_PLAN_ATTRIBUTES = WEBHOOK_EVENT.plan_attributes
ATTEMPT_PLAN_ATTRIBUTES = CHECKOUT_ATTEMPT.plan_attributes


@strawberry.type
class OutboxQuery:
    @strawberry.field(description="The tenant's outbox (calls out to Fleetbase and others), newest first; "
                                  "filter by status, e.g. dead (tenant admins).")
    async def outbox_messages(self, info: Info, status: OutboxStatusArg = None, first: First = None,
                              after: After = None) -> Connection[OutboxMessage]:
        allowed = await info.context.authz.sql_filter("outbox_message", "read", OUTBOX_TABLE, OUTBOX_PLAN_ATTRIBUTES)
        listing = platform.outbox_messages(allowed, *in_tenant(info.context.db, OUTBOX_TABLE), status=status)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                OutboxMessage.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Webhook events the tenant received, newest first; filter by status: refused "
                                  "(kept with the reason) or failed (replay them with replayWebhookEvent). Tenant "
                                  "admins.")
    async def webhook_events(self, info: Info,
                             status: WebhookStatus = None,
                             first: First = None, after: After = None) -> Connection[WebhookEvent]:
        allowed = await info.context.authz.sql_filter("webhook_event", "read", WEBHOOK_TABLE,
                                                      WEBHOOK_PLAN_ATTRIBUTES)
        listing = platform.webhook_events(allowed, tenant_id=info.context.db.tenant_id, status=status)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                WebhookEvent.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Checkouts of the stores the caller administers, newest first; filter by status, "
                                  "e.g. refund_pending or refunded (payments that could not become orders, and "
                                  "why).")
    async def checkout_attempts(self, info: Info,
                                status: AttemptStatus = None,
                                first: First = None, after: After = None) -> Connection[CheckoutAttempt]:
        allowed = await info.context.authz.sql_filter("checkout_attempt", "read", CHECKOUT_ATTEMPT_TABLE,
                                                      ATTEMPT_PLAN_ATTRIBUTES)
        listing = commerce.checkout_attempts(allowed, *in_tenant(info.context.db, CHECKOUT_ATTEMPT_TABLE),
                                             status=status)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                CheckoutAttempt.from_row, listing.order, count=wants_total(info))


@strawberry.type
class JobRunQuery:
    @strawberry.field(description="Runs of the scheduled jobs, newest first; filter by job name. Platform admins "
                                  "see every run; a tenant's admins see their tenant's part of per-tenant jobs.")
    async def job_runs(self, info: Info,
                       job: Annotated[str | None, strawberry.argument(
                           description="Only runs of this job (see `cityos jobs list`).")] = None,
                       first: First = None, after: After = None) -> Connection[JobRun]:
        allowed = await info.context.authz.sql_filter("job_run", "read", job_runs.JOB_RUN,
                                                      JOB_RUN_DECLARATION.plan_attributes)
        page = PageRequest(first, after)
        tenant_id = info.context.db.tenant_id
        if "super_admin" in info.context.principal.roles and tenant_id is None:
            # A platform call (a token naming no tenant) reads in explicit platform scope: the whole runs
            # (tenant_id null) and every tenant's parts.
            listing = job_runs.job_runs(allowed, job=job, tenant_id=None, platform=True)
            async with tenant_transaction(info.context.services.app_engine, None) as connection:
                await set_platform_scope(connection)
                return await page_query(connection.execute, listing.statement, page, JobRun.from_row, listing.order,
                                        count=wants_total(info))
        listing = job_runs.job_runs(allowed, job=job, tenant_id=tenant_id)
        return await page_query(info.context.db.execute, listing.statement, page, JobRun.from_row, listing.order,
                                count=wants_total(info))


Text = Annotated[str | None, strawberry.argument(description="Only entries with exactly this value.")]
Since = Annotated[datetime | None, strawberry.argument(description="Only entries at or after this time (UTC).")]
Until = Annotated[datetime | None, strawberry.argument(description="Only entries before this time (UTC).")]


@strawberry.type
class AuditQuery:
    @strawberry.field(description="The tenant's audit log, newest first: every admin and vendor change with who, "
                                  "what, the changed fields before and after, and the request id. Filter by actor, "
                                  "entity (kind and id), action and time range. Tenant admins.")
    async def audit_log(self, info: Info, actor: Text = None, entity_kind: Text = None, entity_id: Text = None,
                        action: Text = None, since: Since = None, until: Until = None, first: First = None,
                        after: After = None) -> Connection[AuditEntry]:
        tenant_id = tenant_of(info)
        allowed = await info.context.authz.sql_filter("audit_entry", "read", platform.AUDIT,
                                                      AUDIT_ENTRY_DECLARATION.plan_attributes)
        listing = platform.audit_entries(allowed, tenant_id=tenant_id, filters=platform.AuditFilter(
            actor=actor, target_kind=entity_kind, target_id=entity_id, action=action, since=since, until=until))
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                AuditEntry.from_row, listing.order, count=wants_total(info))
