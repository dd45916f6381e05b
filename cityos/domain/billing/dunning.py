"""Dunning: what a declined renewal leads to.

A declined renewal makes the subscription `past_due` and its cycle `failed`, with Stripe's decline code on the
cycle and on an attempt row. The `retry-failed-payments` job charges it again at the tenant's retry days after the
first failure (default +1, +3, +7 days), each retry with its own idempotency key (Stripe replays a 402 for a key).
After the last failure the subscription is canceled or paused (the tenant's final action).

`authentication_required` (SCA) is never retried blindly: the cycle is marked `action_required`, the customer is
notified and comes back on-session (confirmSubscriptionPayment returns the PaymentIntent's client secret); if the
customer has not by the last retry day, the final action applies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingAttemptOutcome,
    BillingCycleStatus,
    BillingSettings,
    CustomerSubscriptionStatus,
    DunningFinalAction,
)
from cityos.domain.billing.queries import CYCLE, SUBSCRIPTION
from cityos.domain.billing.renewals import LEASE, notify_customer, record_attempt, sub_event
from cityos.domain.billing.service import PaymentOutcome
from cityos.realtime.events import PendingEvents

SETTINGS = table_of(BillingSettings)
SCA = "authentication_required"
S = CustomerSubscriptionStatus


@dataclass(frozen=True)
class DunningPolicy:
    retry_days: tuple[int, ...] = rules.DEFAULT_RETRY_DAYS
    final_action: DunningFinalAction = DunningFinalAction.CANCEL


async def policy(connection: AsyncConnection) -> DunningPolicy:
    """The tenant's dunning policy (the transaction's tenant), or the defaults."""
    row = (await connection.execute(select(SETTINGS))).first()
    if row is None:
        return DunningPolicy()
    return DunningPolicy(tuple(row.retry_days), DunningFinalAction(row.final_action))


async def set_policy(connection: AsyncConnection, tenant_id: uuid.UUID, retry_days: list[int],
                     final_action: DunningFinalAction) -> DunningPolicy:
    days = rules.validate_retry_days(retry_days)
    await connection.execute(pg_insert(SETTINGS).values(
        tenant_id=tenant_id, id=uuid.uuid4(), retry_days=list(days), final_action=final_action.value,
    ).on_conflict_do_update(index_elements=["tenant_id"], set_={
        "retry_days": list(days), "final_action": final_action.value, "updated_at": func.now()}))
    return DunningPolicy(days, final_action)


def is_sca(outcome: PaymentOutcome) -> bool:
    return SCA in (outcome.code, outcome.decline_code)


async def record_failure(connection: AsyncConnection, cycle: Row[Any], outcome: PaymentOutcome, *, source: str,
                         now: datetime, events: PendingEvents) -> str:
    """A declined attempt of a cycle (its row locked by the caller): the attempt row, the cycle failed with the
    decline code and its next retry (none for SCA: the customer must confirm), the subscription past_due — or,
    after the last retry, the tenant's final action. A paid cycle, or an attempt recorded before, changes
    nothing (reordered and replayed webhooks)."""
    if cycle.status == BillingCycleStatus.PAID:
        return "already paid"
    sca = is_sca(outcome)
    decline = outcome.decline_code or outcome.code
    fresh = await record_attempt(connection, cycle, source, cycle.amount,
                                 BillingAttemptOutcome.ACTION_REQUIRED if sca else BillingAttemptOutcome.DECLINED,
                                 outcome.intent_id, outcome.code, outcome.decline_code, outcome.message)
    if not fresh and cycle.status == BillingCycleStatus.FAILED:
        return "already recorded"
    subscription = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == cycle.subscription_id)
                                             .with_for_update())).one()
    dunning = await policy(connection)
    failed_at = cycle.failed_at or now
    if subscription.status not in (S.TRIALING, S.ACTIVE, S.PAST_DUE):  # paused or ended meanwhile: recorded only
        await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
            status=BillingCycleStatus.FAILED.value, lease_until=None, payment_intent_id=outcome.intent_id,
            decline_code=decline, failure_message=(outcome.message or "")[:1000], failed_at=failed_at,
            next_retry_at=None, action_required=sca, updated_at=func.now()))
        return "failed"
    if sca:  # no blind retry: the customer has until the last retry day to confirm on-session
        retry_at = rules.next_retry_at(failed_at, dunning.retry_days, len(dunning.retry_days) - 1)
    else:
        retry_at = rules.next_retry_at(failed_at, dunning.retry_days, max(cycle.attempts, 1) - 1)
    await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
        status=BillingCycleStatus.FAILED.value, lease_until=None, payment_intent_id=outcome.intent_id,
        decline_code=decline, failure_message=(outcome.message or "")[:1000], failed_at=failed_at,
        next_retry_at=retry_at, action_required=sca, updated_at=func.now()))
    values: dict[str, Any] = {"last_decline_code": decline, "last_payment_error": (outcome.message or "")[:1000],
                              "updated_at": func.now()}
    if retry_at is None:
        return await final_action(connection, subscription, dunning, now, events, values)
    if subscription.status != S.PAST_DUE:
        rules.check_transition(subscription.status, S.PAST_DUE)
        values["status"] = S.PAST_DUE.value
    await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(**values))
    await notify_customer(connection, subscription, "action_required" if sca else "payment_failed",
                          cycle_id=cycle.id, decline_code=decline, next_retry_at=retry_at)
    events.add(sub_event("subscription.action_required" if sca else "subscription.payment_failed", subscription,
                         S.PAST_DUE.value, cycle_id=str(cycle.id), decline_code=decline))
    return "action_required" if sca else "failed"


async def final_action(connection: AsyncConnection, subscription: Row[Any], dunning: DunningPolicy, now: datetime,
                       events: PendingEvents, values: dict[str, Any] | None = None) -> str:
    """Dunning is over: the subscription is canceled or paused, per the tenant's policy."""
    target = S.CANCELED if dunning.final_action is DunningFinalAction.CANCEL else S.PAUSED
    values = dict(values or {}, updated_at=func.now())
    if subscription.status not in (S.CANCELED, S.EXPIRED, target):
        rules.check_transition(subscription.status, target)
        values["status"] = target.value
        values["canceled_at" if target is S.CANCELED else "paused_at"] = now
    await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(**values))
    await connection.execute(update(CYCLE).where(CYCLE.c.subscription_id == subscription.id,
                                                 CYCLE.c.status == BillingCycleStatus.FAILED.value)
                             .values(next_retry_at=None, updated_at=func.now()))
    await notify_customer(connection, subscription, target.value)
    events.add(sub_event(f"subscription.{target.value}", subscription, target.value))
    return target.value


async def lease_retry(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> Row[Any] | None:
    """One failed cycle due for a retry (not SCA, its subscription past due) leased to this runner: attempts + 1
    (the retry's own idempotency key), committed."""
    async with tenant_transaction(engine, tenant_id) as connection:
        owner = (SUBSCRIPTION.c.tenant_id == CYCLE.c.tenant_id) & (SUBSCRIPTION.c.id == CYCLE.c.subscription_id)
        candidate = (select(CYCLE.c.id).join(SUBSCRIPTION, owner).where(
            CYCLE.c.tenant_id == tenant_id, CYCLE.c.status == BillingCycleStatus.FAILED.value,
            CYCLE.c.next_retry_at <= now, CYCLE.c.action_required.is_(False),
            SUBSCRIPTION.c.status == S.PAST_DUE.value)
            .order_by(CYCLE.c.next_retry_at).limit(1).with_for_update(of=CYCLE, skip_locked=True).scalar_subquery())
        return (await connection.execute(update(CYCLE).where(CYCLE.c.id == candidate).values(
            status=BillingCycleStatus.CHARGING.value, lease_until=now + LEASE, attempts=CYCLE.c.attempts + 1,
            updated_at=func.now()).returning(*CYCLE.c))).first()


async def lease_confirmable(engine: AsyncEngine, tenant_id: uuid.UUID, subscription_id: uuid.UUID,
                           payment_method_id: str, now: datetime) -> Row[Any] | None:
    """The subscription's cycle that waits for the customer's authentication (SCA), leased to this caller with its
    attempt counted (the retry's own idempotency key) and the new card made the subscription's, committed; None
    when there is none (or another caller has it)."""
    async with tenant_transaction(engine, tenant_id) as connection:
        owner = (SUBSCRIPTION.c.tenant_id == CYCLE.c.tenant_id) & (SUBSCRIPTION.c.id == CYCLE.c.subscription_id)
        candidate = (select(CYCLE.c.id).join(SUBSCRIPTION, owner).where(
            CYCLE.c.tenant_id == tenant_id, CYCLE.c.subscription_id == subscription_id,
            CYCLE.c.status == BillingCycleStatus.FAILED.value, CYCLE.c.action_required.is_(True),
            SUBSCRIPTION.c.status == S.PAST_DUE.value)
            .order_by(CYCLE.c.period_start).limit(1).with_for_update(of=CYCLE, skip_locked=True).scalar_subquery())
        leased = (await connection.execute(update(CYCLE).where(CYCLE.c.id == candidate).values(
            status=BillingCycleStatus.CHARGING.value, lease_until=now + LEASE, attempts=CYCLE.c.attempts + 1,
            updated_at=func.now()).returning(*CYCLE.c))).first()
        if leased is not None:
            await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription_id).values(
                stripe_payment_method_id=payment_method_id, updated_at=func.now()))
        return leased


async def expire_unconfirmed(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime,
                             events: PendingEvents) -> int:
    """SCA cycles the customer did not confirm by the last retry day: the final action."""
    ended = 0
    async with tenant_transaction(engine, tenant_id) as connection:
        cycles = (await connection.execute(select(CYCLE).where(
            CYCLE.c.tenant_id == tenant_id, CYCLE.c.status == BillingCycleStatus.FAILED.value,
            CYCLE.c.action_required.is_(True), CYCLE.c.next_retry_at <= now).with_for_update(skip_locked=True))).all()
        dunning = await policy(connection)
        for cycle in cycles:
            subscription = (await connection.execute(select(SUBSCRIPTION).where(
                SUBSCRIPTION.c.id == cycle.subscription_id).with_for_update())).one()
            if subscription.status == S.PAST_DUE:
                await final_action(connection, subscription, dunning, now, events)
                ended += 1
            else:
                await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(next_retry_at=None))
    return ended
