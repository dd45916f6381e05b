"""Platform queries: the outbox, the webhook inbox, checkout attempts (tenant and store admins); job runs."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy import ColumnElement, false, func, select

from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.platform.job_runs import JOB_RUN
from cityos.domain.platform.models import Outbox
from cityos.graphql.commerce.arguments import AttemptStatus, OutboxStatusArg, WebhookStatus
from cityos.graphql.commerce.types import (
    CHECKOUT_ATTEMPT_TABLE,
    WEBHOOK_TABLE,
    CheckoutAttempt,
    OutboxMessage,
    WebhookEvent,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import (
    After,
    Connection,
    First,
    PageRequest,
    SortKey,
    page_query,
)
from cityos.graphql.platform.types import JOB_RUN_DECLARATION, JobRun

OUTBOX_TABLE = table_of(Outbox)
OUTBOX_PLAN_ATTRIBUTES = {"tenant_id": OUTBOX_TABLE.c.tenant_id}
WEBHOOK_PLAN_ATTRIBUTES = {"tenant_id": WEBHOOK_TABLE.c.tenant_id}
ATTEMPT_PLAN_ATTRIBUTES = {"tenant_id": CHECKOUT_ATTEMPT_TABLE.c.tenant_id,
                           "store_id": CHECKOUT_ATTEMPT_TABLE.c.store_id,
                           "customer_id": func.coalesce(CHECKOUT_ATTEMPT_TABLE.c.customer_id, "")}


def webhooks_of_tenant(info: Info) -> ColumnElement[bool]:
    """Always explicit: the inbox also holds events whose tenant is unknown (tenant_id null), which RLS lets
    every transaction see; they belong to no tenant's admins."""
    tenant_id = info.context.db.tenant_id
    return WEBHOOK_TABLE.c.tenant_id == tenant_id if tenant_id is not None else false()



@strawberry.type
class OutboxQuery:
    @strawberry.field(description="The tenant's outbox (calls out to Fleetbase and others), newest first; "
                                  "filter by status, e.g. dead (tenant admins).")
    async def outbox_messages(self, info: Info, status: OutboxStatusArg = None, first: First = None,
                              after: After = None) -> Connection[OutboxMessage]:
        allowed = await info.context.authz.sql_filter("outbox_message", "read", OUTBOX_TABLE, OUTBOX_PLAN_ATTRIBUTES)
        statement = select(OUTBOX_TABLE).where(allowed, *in_tenant(info.context.db, OUTBOX_TABLE))
        if status is not None:
            statement = statement.where(OUTBOX_TABLE.c.status == status)
        order = [SortKey(OUTBOX_TABLE.c.created_at, True), SortKey(OUTBOX_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, statement, PageRequest(first, after), OutboxMessage.from_row,
                                order)

    @strawberry.field(description="Webhook events the tenant received, newest first; filter by status: refused "
                                  "(kept with the reason) or failed (replay them with replayWebhookEvent). Tenant "
                                  "admins.")
    async def webhook_events(self, info: Info,
                             status: WebhookStatus = None,
                             first: First = None, after: After = None) -> Connection[WebhookEvent]:
        allowed = await info.context.authz.sql_filter("webhook_event", "read", WEBHOOK_TABLE,
                                                      WEBHOOK_PLAN_ATTRIBUTES)
        statement = select(WEBHOOK_TABLE).where(allowed, webhooks_of_tenant(info))
        if status is not None:
            statement = statement.where(WEBHOOK_TABLE.c.status == status)
        order = [SortKey(WEBHOOK_TABLE.c.received_at, True), SortKey(WEBHOOK_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, statement, PageRequest(first, after), WebhookEvent.from_row,
                                order)

    @strawberry.field(description="Checkouts of the stores the caller administers, newest first; filter by status, "
                                  "e.g. refund_pending or refunded (payments that could not become orders, and "
                                  "why).")
    async def checkout_attempts(self, info: Info,
                                status: AttemptStatus = None,
                                first: First = None, after: After = None) -> Connection[CheckoutAttempt]:
        allowed = await info.context.authz.sql_filter("checkout_attempt", "read", CHECKOUT_ATTEMPT_TABLE,
                                                      ATTEMPT_PLAN_ATTRIBUTES)
        statement = select(CHECKOUT_ATTEMPT_TABLE).where(allowed, *in_tenant(info.context.db, CHECKOUT_ATTEMPT_TABLE))
        if status is not None:
            statement = statement.where(CHECKOUT_ATTEMPT_TABLE.c.status == status)
        order = [SortKey(CHECKOUT_ATTEMPT_TABLE.c.created_at, True), SortKey(CHECKOUT_ATTEMPT_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, statement, PageRequest(first, after),
                                CheckoutAttempt.from_row, order)




@strawberry.type
class JobRunQuery:
    @strawberry.field(description="Runs of the scheduled jobs, newest first; filter by job name. Platform admins "
                                  "see every run; a tenant's admins see their tenant's part of per-tenant jobs.")
    async def job_runs(self, info: Info,
                       job: Annotated[str | None, strawberry.argument(
                           description="Only runs of this job (see `cityos jobs list`).")] = None,
                       first: First = None, after: After = None) -> Connection[JobRun]:
        allowed = await info.context.authz.sql_filter("job_run", "read", JOB_RUN,
                                                      JOB_RUN_DECLARATION.plan_attributes)
        statement = select(JOB_RUN).where(allowed)
        if job is not None:
            statement = statement.where(JOB_RUN.c.job == job)
        order = [SortKey(JOB_RUN.c.started_at, True), SortKey(JOB_RUN.c.id, True)]
        page = PageRequest(first, after)
        tenant_id = info.context.db.tenant_id
        if "super_admin" in info.context.principal.roles and tenant_id is None:
            # A platform call (a token naming no tenant) reads in explicit platform scope: the whole runs
            # (tenant_id null) and every tenant's parts.
            async with tenant_transaction(info.context.services.app_engine, None) as connection:
                await set_platform_scope(connection)
                return await page_query(connection.execute, statement, page, JobRun.from_row, order)
        statement = statement.where(JOB_RUN.c.tenant_id == tenant_id if tenant_id is not None else false())
        return await page_query(info.context.db.execute, statement, page, JobRun.from_row, order)
