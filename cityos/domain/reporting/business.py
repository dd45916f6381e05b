"""The business and integration figures behind the Prometheus gauges (cityos/observability/business.py): orders and
GMV, refunds, payouts, recurring subscriptions, quotes and approvals, webhook receipts and refusals by source,
outbox depth and dead letters, sync lag per integration. Read in one platform-scope transaction of a few aggregate
statements; per tenant only for the `top_tenants` tenants with the most orders (label = slug), the others summed
under the label `_other`, so the series count stays bounded whatever the number of tenants."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.db.engines import set_platform_scope
from cityos.domain.b2b.models import ApprovalRequest, Quote
from cityos.domain.base import table_of
from cityos.domain.billing.models import CustomerSubscription
from cityos.domain.kernel import OrderStatus
from cityos.domain.marketplace.models import Payout
from cityos.domain.orders.models import Order, Refund
from cityos.domain.platform.models import JobRun, Outbox, WebhookInbox
from cityos.domain.platform.sync import CURSOR
from cityos.domain.tenancy.models import Tenant

ORDER, PAYOUT, SUBSCRIPTION = table_of(Order), table_of(Payout), table_of(CustomerSubscription)
REFUND, QUOTE, APPROVAL = table_of(Refund), table_of(Quote), table_of(ApprovalRequest)
OUTBOX, INBOX, TENANT, JOB_RUN = table_of(Outbox), table_of(WebhookInbox), table_of(Tenant), table_of(JobRun)
OTHER = "_other"
# Orders whose money was taken and kept: gross merchandise value.
SOLD = (OrderStatus.PAID.value, OrderStatus.FULFILLED.value, OrderStatus.COMPLETED.value,
        OrderStatus.AWAITING_PAYMENT.value)  # sold on account: invoiced

Labels = tuple[str, ...]


@dataclass
class Snapshot:
    """Gauge name → label values → value."""

    taken_at: datetime | None = None
    values: dict[str, dict[Labels, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))

    def add(self, name: str, labels: Labels, value: float) -> None:
        self.values[name][labels] += value


async def _tenant_labels(connection: AsyncConnection, top_tenants: int) -> dict[uuid.UUID, str]:
    ranked = (select(TENANT.c.id, TENANT.c.slug).outerjoin(ORDER, ORDER.c.tenant_id == TENANT.c.id)
              .group_by(TENANT.c.id, TENANT.c.slug).order_by(func.count(ORDER.c.id).desc(), TENANT.c.slug)
              .limit(top_tenants))
    return {row.id: row.slug for row in await connection.execute(ranked)}


async def snapshot(connection: AsyncConnection, *, top_tenants: int) -> Snapshot:
    await set_platform_scope(connection)
    taken_at = (await connection.execute(select(func.now()))).scalar_one()
    result = Snapshot(taken_at=taken_at)
    tenants = await _tenant_labels(connection, top_tenants)

    def tenant(tenant_id: uuid.UUID | None) -> str:
        return tenants.get(tenant_id, OTHER) if tenant_id else OTHER

    for row in await connection.execute(select(
            ORDER.c.tenant_id, ORDER.c.status, ORDER.c.currency_code, func.count(), func.sum(ORDER.c.total))
            .group_by(ORDER.c.tenant_id, ORDER.c.status, ORDER.c.currency_code)):
        result.add("orders", (tenant(row[0]), row[1]), row[3])
        if row[1] in SOLD:
            result.add("gmv", (tenant(row[0]), row[2]), row[4])
    for row in await connection.execute(select(
            PAYOUT.c.tenant_id, PAYOUT.c.status, PAYOUT.c.currency_code, func.count(), func.sum(PAYOUT.c.amount))
            .group_by(PAYOUT.c.tenant_id, PAYOUT.c.status, PAYOUT.c.currency_code)):
        result.add("payouts", (tenant(row[0]), row[1]), row[3])
        result.add("payout_amount", (tenant(row[0]), row[2], row[1]), row[4])
    for row in await connection.execute(select(
            REFUND.c.tenant_id, REFUND.c.status, REFUND.c.currency_code, func.count(), func.sum(REFUND.c.amount))
            .group_by(REFUND.c.tenant_id, REFUND.c.status, REFUND.c.currency_code)):
        result.add("refunds", (tenant(row[0]), row[1]), row[3])
        result.add("refunded", (tenant(row[0]), row[2], row[1]), row[4])
    for row in await connection.execute(select(QUOTE.c.tenant_id, QUOTE.c.status, func.count())
                                        .group_by(QUOTE.c.tenant_id, QUOTE.c.status)):
        result.add("quotes", (tenant(row[0]), row[1]), row[2])
    for row in await connection.execute(select(APPROVAL.c.tenant_id, APPROVAL.c.status, func.count())
                                        .group_by(APPROVAL.c.tenant_id, APPROVAL.c.status)):
        result.add("approvals", (tenant(row[0]), row[1]), row[2])
    for row in await connection.execute(select(SUBSCRIPTION.c.tenant_id, SUBSCRIPTION.c.status, func.count())
                                        .group_by(SUBSCRIPTION.c.tenant_id, SUBSCRIPTION.c.status)):
        result.add("subscriptions", (tenant(row[0]), row[1]), row[2])
    for row in await connection.execute(select(INBOX.c.provider, INBOX.c.status, func.count())
                                        .group_by(INBOX.c.provider, INBOX.c.status)):
        result.add("webhooks", (row[0], row[1]), row[2])
    for row in await connection.execute(select(OUTBOX.c.topic, OUTBOX.c.status, func.count())
                                        .group_by(OUTBOX.c.topic, OUTBOX.c.status)):
        result.add("outbox", (row[0], row[1]), row[2])
    integration = func.split_part(CURSOR.c.stream, literal("."), 1)
    for row in await connection.execute(select(
            integration, func.max(func.extract("epoch", func.now() - func.coalesce(
                CURSOR.c.last_success_at, CURSOR.c.updated_at))), func.sum(CURSOR.c.failures))
            .group_by(integration)):
        result.add("sync_lag", (row[0],), float(row[1] or 0))
        result.add("sync_failures", (row[0],), float(row[2] or 0))
    # Jobs, from their record (whichever process ran them: a scheduler replica or a CronJob pod).
    recent = JOB_RUN.c.started_at > func.now() - text("interval '24 hours'")
    for row in await connection.execute(select(JOB_RUN.c.job, JOB_RUN.c.outcome, func.count())
                                        .where(JOB_RUN.c.tenant_id.is_(None), recent)
                                        .group_by(JOB_RUN.c.job, JOB_RUN.c.outcome)):
        result.add("job_runs", (row[0], row[1]), row[2])
    for row in await connection.execute(select(
            JOB_RUN.c.job, func.extract("epoch", func.now() - func.max(JOB_RUN.c.finished_at)))
            .where(JOB_RUN.c.tenant_id.is_(None), JOB_RUN.c.outcome == "ok").group_by(JOB_RUN.c.job)):
        result.add("job_since_ok", (row[0],), float(row[1]))
    return result
