"""Billing reads: plans, their prices, customer subscriptions and their cycles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingAttempt,
    BillingCycle,
    BillingInterval,
    CustomerSubscription,
    CustomerSubscriptionStatus,
    SubscriptionPlan,
    SubscriptionPlanPrice,
)
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.tenancy.models import Tenant

PLAN = table_of(SubscriptionPlan)
PLAN_PRICE = table_of(SubscriptionPlanPrice)
SUBSCRIPTION = table_of(CustomerSubscription)
CYCLE = table_of(BillingCycle)
ATTEMPT = table_of(BillingAttempt)
TENANT = table_of(Tenant)
LIVE = (CustomerSubscriptionStatus.TRIALING.value, CustomerSubscriptionStatus.ACTIVE.value,
        CustomerSubscriptionStatus.PAST_DUE.value)
CHURN_WINDOW = timedelta(days=30)


def plans(*scope: ColumnElement[bool], store_id: uuid.UUID | None = None, status: str | None = None) -> Listing:
    statement = select(PLAN).where(*scope)
    if store_id is not None:
        statement = statement.where(PLAN.c.store_id == store_id)
    if status is not None:
        statement = statement.where(PLAN.c.status == status)
    return Listing(statement)


@dataclass(frozen=True)
class SubscriptionFilter:
    status: str | None = None
    plan_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    customer_id: str | None = None
    renews_after: datetime | None = None  # current_period_end ≥
    renews_before: datetime | None = None  # current_period_end <


def subscriptions(*scope: ColumnElement[bool], status: str | None = None,
                  where: SubscriptionFilter | None = None) -> Listing:
    """Customer subscriptions, newest first, filtered by status, plan, vendor, customer and renewal date."""
    statement = select(SUBSCRIPTION).where(*scope)
    where = where or SubscriptionFilter(status=status)
    if where.status is not None:
        statement = statement.where(SUBSCRIPTION.c.status == where.status)
    if where.plan_id is not None:
        statement = statement.where(SUBSCRIPTION.c.plan_id == where.plan_id)
    if where.vendor_id is not None:
        statement = statement.where(SUBSCRIPTION.c.vendor_id == where.vendor_id)
    if where.customer_id is not None:
        statement = statement.where(SUBSCRIPTION.c.customer_id == where.customer_id)
    if where.renews_after is not None:
        statement = statement.where(SUBSCRIPTION.c.current_period_end >= where.renews_after)
    if where.renews_before is not None:
        statement = statement.where(SUBSCRIPTION.c.current_period_end < where.renews_before)
    return Listing(statement, [SortKey(SUBSCRIPTION.c.created_at, True), SortKey(SUBSCRIPTION.c.id, True)])


def cycles(subscription_id: uuid.UUID) -> Listing:
    """A subscription's billing cycles, newest period first."""
    return Listing(select(CYCLE).where(CYCLE.c.subscription_id == subscription_id),
                   [SortKey(CYCLE.c.period_start, True), SortKey(CYCLE.c.id, True)])


async def plan_price(connection: AsyncConnection, plan_id: uuid.UUID, currency_code: str) -> Row[Any] | None:
    return (await connection.execute(select(PLAN_PRICE).where(
        PLAN_PRICE.c.plan_id == plan_id, PLAN_PRICE.c.currency_code == currency_code.lower()))).first()


def attempts(cycle_id: uuid.UUID) -> Listing:
    """A cycle's charge attempts, oldest first."""
    return Listing(select(ATTEMPT).where(ATTEMPT.c.cycle_id == cycle_id),
                   [SortKey(ATTEMPT.c.created_at, False), SortKey(ATTEMPT.c.id, False)])


@dataclass(frozen=True)
class TenantMetrics:
    tenant: str  # its slug: the label of the platform's per-tenant gauges
    active: int
    mrr: dict[str, int]  # currency → minor units a month
    churn: Decimal


async def tenant_metrics(connection: AsyncConnection, now: datetime) -> TenantMetrics:
    """The transaction's tenant: live subscriptions, their MRR (rules.monthly_amount) and the 30-day churn."""
    rows = (await connection.execute(
        select(SUBSCRIPTION.c.status, SUBSCRIPTION.c.amount, SUBSCRIPTION.c.currency_code, PLAN.c.interval,
               PLAN.c.interval_count)
        .join(PLAN, (PLAN.c.tenant_id == SUBSCRIPTION.c.tenant_id) & (PLAN.c.id == SUBSCRIPTION.c.plan_id))
        .where(SUBSCRIPTION.c.status.in_(LIVE)))).all()
    mrr: dict[str, int] = {}
    for row in rows:
        if row.status == CustomerSubscriptionStatus.TRIALING:
            continue  # nothing is billed yet
        mrr[row.currency_code] = mrr.get(row.currency_code, 0) + rules.monthly_amount(
            row.amount, BillingInterval(row.interval), row.interval_count)
    canceled = (await connection.execute(select(func.count()).where(
        SUBSCRIPTION.c.status == CustomerSubscriptionStatus.CANCELED.value,
        SUBSCRIPTION.c.canceled_at >= now - CHURN_WINDOW))).scalar_one()
    slug = (await connection.execute(select(TENANT.c.slug))).scalar_one()  # RLS: the transaction's tenant
    return TenantMetrics(str(slug), len(rows), mrr, rules.churn_rate(int(canceled), len(rows)))
