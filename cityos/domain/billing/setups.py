"""Subscriptions whose card set-up waits for the customer's authentication (3-D Secure).

A trial without a setup fee saves the card with a SetupIntent. When the bank asks for authentication, subscribing
does not fail: the subscription is written `incomplete` and the SetupIntent's client secret goes to Stripe.js
(service.subscribe). Stripe then says how it went, by webhook (external-apis.md §1, "Saving a card with a
SetupIntent"), recorded here in the inbox's transaction under the subscription's row lock:
- `setup_intent.succeeded`: the card (`payment_method`) is the renewals' card and the trial runs (`trialing`;
  it ends when it would have: the trial started at subscribing).
- `setup_intent.setup_failed`: the card could not be set up: the subscription never started (`expired`), with
  Stripe's codes (`last_setup_error`) recorded and the customer notified; subscribing again starts over.
Only the subscription's own SetupIntent moves it, and only from `incomplete`: a replayed or reordered event (a
failure of an earlier try arriving after the success), or a SetupIntent of a later card change, changes nothing.

A subscription still `incomplete` a day after subscribing (the customer never authenticated the card or the first
charge, or Stripe never answered the first charge) expires like Stripe Billing's `incomplete_expired`
(`expire_incomplete`, run by process-billing-cycles): `expired`, its open cycle closed as skipped, the units its
first order reserved given back, its first PaymentIntent canceled at Stripe through the outbox (so it can no longer
be paid), the customer notified.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.billing import rules
from cityos.domain.billing.models import BillingCycleStatus, CustomerSubscriptionStatus
from cityos.domain.billing.queries import CYCLE, SUBSCRIPTION
from cityos.domain.billing.renewals import notify_customer, sub_event
from cityos.domain.commerce.service import return_reserved_units
from cityos.domain.platform.outbox import enqueue
from cityos.realtime.events import PendingEvents

S = CustomerSubscriptionStatus
INCOMPLETE_FOR = timedelta(hours=23)  # as long as Stripe Billing keeps a subscription incomplete
CANCEL_PAYMENT_TOPIC = "stripe.cancel_payment_intent"  # sent by dispatch-outbox (integrations/stripe/payments.py)
OPEN = (BillingCycleStatus.PENDING.value, BillingCycleStatus.CHARGING.value, BillingCycleStatus.FAILED.value)


async def record_webhook(connection: AsyncConnection, setup: dict[str, Any], succeeded: bool,
                         events: PendingEvents) -> str:
    """setup_intent.succeeded / setup_intent.setup_failed of a subscription's SetupIntent (metadata.subscription_id)."""
    try:
        subscription_id = uuid.UUID(str(setup["metadata"]["subscription_id"]))
    except (KeyError, ValueError):
        return "ignored: not a subscription's card set-up"
    subscription = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription_id)
                                             .with_for_update())).first()
    if subscription is None:
        return "ignored: unknown subscription"
    if subscription.setup_intent_id != setup.get("id"):
        return "ignored: not the SetupIntent the subscription started with"
    if subscription.status != S.INCOMPLETE:
        return f"ignored: the subscription is {subscription.status}"
    if succeeded:
        if setup.get("status") != "succeeded" or not setup.get("payment_method"):
            return f"ignored: the set-up is {setup.get('status')}"
        rules.check_transition(subscription.status, S.TRIALING)
        updated = (await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
            status=S.TRIALING.value, stripe_payment_method_id=str(setup["payment_method"]), last_decline_code=None,
            last_payment_error=None, updated_at=func.now()).returning(*SUBSCRIPTION.c))).one()
        events.add(sub_event("subscription.started", updated, S.TRIALING.value))
        return "trialing"
    error = setup.get("last_setup_error") or {}
    decline = error.get("decline_code") or error.get("code")
    rules.check_transition(subscription.status, S.EXPIRED)
    updated = (await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
        status=S.EXPIRED.value, last_decline_code=decline,
        last_payment_error=(error.get("message") or "the card could not be set up")[:1000], updated_at=func.now(),
    ).returning(*SUBSCRIPTION.c))).one()
    await notify_customer(connection, updated, "setup_failed", decline_code=decline)
    events.add(sub_event("subscription.expired", updated, S.EXPIRED.value, decline_code=decline))
    return "expired"


async def expire_incomplete(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime, events: PendingEvents) -> int:
    """Subscriptions still `incomplete` INCOMPLETE_FOR after subscribing: expired (module docstring). How many."""
    expired = 0
    async with tenant_transaction(engine, tenant_id) as connection:
        stale = (await connection.execute(select(SUBSCRIPTION).where(
            SUBSCRIPTION.c.tenant_id == tenant_id, SUBSCRIPTION.c.status == S.INCOMPLETE.value,
            SUBSCRIPTION.c.created_at <= now - INCOMPLETE_FOR).with_for_update(skip_locked=True))).all()
        for subscription in stale:
            cycles = (await connection.execute(select(CYCLE).where(
                CYCLE.c.subscription_id == subscription.id, CYCLE.c.status.in_(OPEN)).with_for_update())).all()
            for cycle in cycles:
                if cycle.cart_id is not None:
                    await return_reserved_units(connection, cycle.cart_id)
                await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
                    status=BillingCycleStatus.SKIPPED.value, skip_reason="the subscription never started",
                    lease_until=None, next_retry_at=None, action_required=False, updated_at=func.now()))
                if cycle.payment_intent_id:
                    await enqueue(connection, tenant_id=tenant_id, topic=CANCEL_PAYMENT_TOPIC,
                                  payload={"payment_intent_id": cycle.payment_intent_id, "attempt_id": None})
            rules.check_transition(subscription.status, S.EXPIRED)
            updated = (await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id)
                                                .values(status=S.EXPIRED.value, updated_at=func.now())
                                                .returning(*SUBSCRIPTION.c))).one()
            await notify_customer(connection, updated, "incomplete_expired")
            events.add(sub_event("subscription.expired", updated, S.EXPIRED.value))
            expired += 1
    return expired
