"""Billing reads: plans, their prices, customer subscriptions and their cycles."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.billing.models import BillingCycle, CustomerSubscription, SubscriptionPlan, SubscriptionPlanPrice
from cityos.domain.kernel import Listing, SortKey

PLAN = table_of(SubscriptionPlan)
PLAN_PRICE = table_of(SubscriptionPlanPrice)
SUBSCRIPTION = table_of(CustomerSubscription)
CYCLE = table_of(BillingCycle)


def plans(*scope: ColumnElement[bool], store_id: uuid.UUID | None = None, status: str | None = None) -> Listing:
    statement = select(PLAN).where(*scope)
    if store_id is not None:
        statement = statement.where(PLAN.c.store_id == store_id)
    if status is not None:
        statement = statement.where(PLAN.c.status == status)
    return Listing(statement)


def subscriptions(*scope: ColumnElement[bool], status: str | None = None) -> Listing:
    """Customer subscriptions, newest first."""
    statement = select(SUBSCRIPTION).where(*scope)
    if status is not None:
        statement = statement.where(SUBSCRIPTION.c.status == status)
    return Listing(statement, [SortKey(SUBSCRIPTION.c.created_at, True), SortKey(SUBSCRIPTION.c.id, True)])


def cycles(subscription_id: uuid.UUID) -> Listing:
    """A subscription's billing cycles, newest period first."""
    return Listing(select(CYCLE).where(CYCLE.c.subscription_id == subscription_id),
                   [SortKey(CYCLE.c.period_start, True), SortKey(CYCLE.c.id, True)])


async def plan_price(connection: AsyncConnection, plan_id: uuid.UUID, currency_code: str) -> Row[Any] | None:
    return (await connection.execute(select(PLAN_PRICE).where(
        PLAN_PRICE.c.plan_id == plan_id, PLAN_PRICE.c.currency_code == currency_code.lower()))).first()
