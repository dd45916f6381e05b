"""The customer's own changes to a subscription: cancel (now or at period end), pause and resume, skip the next
cycle, change plan (with proration), change the payment method, and confirm a renewal that needs the customer's
authentication (SCA). Each checks its transition (rules.check_self_service: INVALID_STATE_TRANSITION otherwise)
under the subscription's row lock; Stripe calls come before any row is locked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingCycleStatus,
    CustomerSubscriptionStatus,
    SubscriptionPlanStatus,
)
from cityos.domain.billing.queries import CYCLE, PLAN_PRICE, SUBSCRIPTION
from cityos.domain.billing.renewals import notify_customer, sub_event
from cityos.domain.billing.service import BillingGateway, Mutate, PaymentOutcome
from cityos.errors import BadUserInput, InvalidStateTransition, NotFound, PaymentFailed
from cityos.realtime.events import PendingEvents

S = CustomerSubscriptionStatus


async def locked(connection: AsyncConnection, subscription_id: uuid.UUID, action: str) -> Row[Any]:
    row = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription_id)
                                    .with_for_update())).first()
    if row is None:
        raise NotFound("no CustomerSubscription with that id")
    rules.check_self_service(row.status, action)
    return row


async def _stop_dunning(connection: AsyncConnection, subscription_id: uuid.UUID) -> None:
    await connection.execute(update(CYCLE).where(CYCLE.c.subscription_id == subscription_id,
                                                 CYCLE.c.status == BillingCycleStatus.FAILED.value)
                             .values(next_retry_at=None, updated_at=func.now()))


async def _set(connection: AsyncConnection, subscription_id: uuid.UUID, **values: Any) -> Row[Any]:
    return (await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription_id).values(
        **values, updated_at=func.now()).returning(*SUBSCRIPTION.c))).one()


async def cancel(connection: AsyncConnection, subscription_id: uuid.UUID, *, at_period_end: bool, now: datetime,
                 events: PendingEvents) -> Row[Any]:
    """Now: canceled at once, no more charges (a failed cycle is not retried). At period end: it renews no more
    and is canceled when its paid period ends (the renewal job does it)."""
    row = await locked(connection, subscription_id, "cancel")
    if at_period_end:
        if row.status not in (S.TRIALING, S.ACTIVE):
            raise InvalidStateTransition(f"a {row.status} subscription has no period to finish: cancel it now",
                                         **{"from": row.status, "to": "cancel_at_period_end"})
        return await _set(connection, subscription_id, cancel_at_period_end=True)
    await _stop_dunning(connection, subscription_id)
    updated = await _set(connection, subscription_id, status=S.CANCELED.value, canceled_at=now)
    await notify_customer(connection, updated, "canceled")
    events.add(sub_event("subscription.canceled", updated, S.CANCELED.value))
    return updated


async def pause(connection: AsyncConnection, subscription_id: uuid.UUID, *, now: datetime,
                events: PendingEvents) -> Row[Any]:
    """No renewals while paused; a failed cycle is not retried."""
    row = await locked(connection, subscription_id, "pause")
    rules.check_transition(row.status, S.PAUSED)
    await _stop_dunning(connection, subscription_id)
    updated = await _set(connection, subscription_id, status=S.PAUSED.value, paused_at=now)
    events.add(sub_event("subscription.paused", updated, S.PAUSED.value))
    return updated


async def resume(connection: AsyncConnection, subscription_id: uuid.UUID, *, now: datetime,
                 events: PendingEvents) -> Row[Any]:
    """Active again. Inside the period that was paid for, nothing changes; after it, billing restarts from now (a
    new anchor: the paused time is never billed) and the next run of process-billing-cycles charges it."""
    row = await locked(connection, subscription_id, "resume")
    rules.check_transition(row.status, S.ACTIVE)
    values: dict[str, Any] = {"status": S.ACTIVE.value, "paused_at": None}
    if row.current_period_end <= now:
        values.update(anchor=now, periods_billed=0, skip_period_index=None,
                      current_period_end=max(now, row.current_period_start + rules.MIN_PERIOD))
    updated = await _set(connection, subscription_id, **values)
    events.add(sub_event("subscription.resumed", updated, S.ACTIVE.value))
    return updated


async def skip_next(connection: AsyncConnection, subscription_id: uuid.UUID) -> Row[Any]:
    """The next period is not charged (nor shipped): its cycle is recorded as skipped when it comes."""
    row = await locked(connection, subscription_id, "skip")
    return await _set(connection, subscription_id, skip_period_index=row.periods_billed)


@dataclass(frozen=True)
class PlanChange:
    subscription: Row[Any]
    credit: int  # minor units credited for the unused time of the old plan


async def change_plan(connection: AsyncConnection, subscription_id: uuid.UUID, plan: Row[Any], *, now: datetime,
                      events: PendingEvents) -> PlanChange:
    """Move to another plan of the same store, in the subscription's currency. In a trial: the trial goes on and
    the new plan is billed when it ends. Paid: the unused time of the current period is credited
    (rules.prorate), the new plan starts now (a new anchor) and the next run of process-billing-cycles charges its
    first period less the credit (rules.apply_credit)."""
    row = await locked(connection, subscription_id, "change_plan")
    if plan.id == row.plan_id:
        raise BadUserInput("the subscription is on this plan already", field="planId")
    if plan.status != SubscriptionPlanStatus.ACTIVE or plan.store_id != row.store_id:
        raise BadUserInput("this plan is not offered to this subscription", field="planId")
    price = (await connection.execute(select(PLAN_PRICE).where(
        PLAN_PRICE.c.plan_id == plan.id, PLAN_PRICE.c.currency_code == row.currency_code))).first()
    if price is None:
        raise BadUserInput(f"this plan has no price in {row.currency_code.upper()}", field="planId")
    values: dict[str, Any] = {"plan_id": plan.id, "vendor_id": plan.vendor_id, "amount": price.amount * row.quantity,
                              "skip_period_index": None}
    credit = 0
    if row.status == S.ACTIVE:
        credit = rules.prorate(row.amount, row.current_period_start, row.current_period_end, now).credit
        values.update(anchor=now, periods_billed=0, credit_balance=row.credit_balance + credit,
                      current_period_end=max(now, row.current_period_start + rules.MIN_PERIOD))
    updated = await _set(connection, subscription_id, **values)
    events.add(sub_event("subscription.plan_changed", updated, updated.status, credit=credit))
    return PlanChange(updated, credit)


async def save_card(gateway: BillingGateway, subscription: Row[Any], payment_method: str) -> str:
    """Save a new card for the renewals: a SetupIntent on the subscription's Stripe Customer, before any row is
    locked. Returns the saved PaymentMethod; a card that cannot be saved is PAYMENT_FAILED."""
    rules.check_self_service(subscription.status, "change_payment_method")
    if subscription.stripe_customer_id is None:
        raise BadUserInput("this subscription has no Stripe customer", field="id")
    outcome: PaymentOutcome = await gateway.save_payment_method(
        customer=subscription.stripe_customer_id, payment_method=payment_method,
        metadata={"tenant_id": str(subscription.tenant_id), "subscription_id": str(subscription.id)},
        idempotency_key=f"subscription-{subscription.id}-payment-method-{uuid.uuid4()}")
    if not outcome.succeeded:
        raise PaymentFailed(outcome.message or "the card could not be saved", provider_code=outcome.code or "",
                            decline_code=outcome.decline_code or "")
    return str(outcome.payment_method_id)


async def use_card(mutate: Mutate, subscription_id: uuid.UUID, payment_method_id: str, now: datetime) -> Row[Any]:
    """The saved card becomes the renewals' card. A past-due subscription's declined cycle is retried with it at
    the next run of retry-failed-payments (a cycle waiting for authentication is retried at once, by
    runs.retry_with_new_card, before this)."""

    async def work(connection: AsyncConnection) -> Row[Any]:
        row = await locked(connection, subscription_id, "change_payment_method")
        if row.status == S.PAST_DUE:
            await connection.execute(update(CYCLE).where(
                CYCLE.c.subscription_id == row.id, CYCLE.c.status == BillingCycleStatus.FAILED.value,
                CYCLE.c.action_required.is_(False), CYCLE.c.next_retry_at.is_not(None),
            ).values(next_retry_at=now, updated_at=func.now()))
        return await _set(connection, row.id, stripe_payment_method_id=payment_method_id)

    result: Row[Any] = await mutate(work)
    return result


async def change_payment_method(mutate: Mutate, gateway: BillingGateway, subscription: Row[Any],
                                payment_method: str, now: datetime) -> Row[Any]:
    """save_card, then use_card."""
    return await use_card(mutate, subscription.id, await save_card(gateway, subscription, payment_method), now)


async def cycle_to_confirm(connection: AsyncConnection, subscription_id: uuid.UUID) -> Row[Any]:
    """The failed cycle that waits for the customer's authentication (SCA)."""
    row = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription_id))).first()
    if row is None:
        raise NotFound("no CustomerSubscription with that id")
    cycle = (await connection.execute(select(CYCLE).where(
        CYCLE.c.subscription_id == subscription_id, CYCLE.c.status == BillingCycleStatus.FAILED.value,
        CYCLE.c.action_required.is_(True), CYCLE.c.payment_intent_id.is_not(None),
    ).order_by(CYCLE.c.period_start.desc()).limit(1))).first()
    if row.status != S.PAST_DUE or cycle is None:
        raise InvalidStateTransition("no renewal of this subscription waits for the customer's authentication",
                                     **{"from": row.status, "to": "confirm_payment"})
    return cycle
