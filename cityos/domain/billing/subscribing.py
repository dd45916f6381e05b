"""Subscribing: the customer's card saved for off-session renewals, and the subscription started.

- **With a trial**: the card is saved by a SetupIntent and nothing is charged; the trial's end is the first
  renewal (renewals.py), whose order also carries the plan's setup fee. A SetupIntent the bank wants authenticated
  (3-D Secure) leaves the subscription `incomplete` with the client secret for Stripe.js; Stripe's webhooks move it
  on (setups.py).
- **Without a trial**: the first period (and the setup fee) is charged at once, and **that first charge is an order
  like a renewal**: the subscription (`incomplete`) and the cycle of period 0 are written, and the cycle's order is
  prepared by the renewals' own code (renewals.prepare_order: a cart, the units reserved, the snapshot taxed as
  checkout taxes a cart, the setup fee as a fee line) — all in one transaction, committed before Stripe is called
  (no lock is held during the call; out of stock → OUT_OF_STOCK and nothing is written). The customer's card is
  then charged on-session with setup_future_usage=off_session (idempotency key from the subscription's id), and a
  success is recorded by renewals.record_success exactly as a renewal's: the order through the checkout's
  settlement (vendor split, commission ledger, Fleetbase and ERPNext through the outbox), the cycle paid, the
  subscription `active` for period 0. A decline is PAYMENT_FAILED and nothing stays written (units back in stock).
  A first charge the bank wants authenticated (3-D Secure) is not a failure: the subscription stays `incomplete`,
  its cycle waits for the customer, and the PaymentIntent's client secret goes to Stripe.js; the
  payment_intent.succeeded webhook then records the payment, the order and the saved card (runs.record_webhook).
  Stripe unavailable → UNAVAILABLE; the subscription stays `incomplete` with its cycle `charging`, so the
  payment_intent webhook still records a charge Stripe took after all (metadata.billing_cycle_id), and if none
  comes the next process-billing-cycles run closes the cycle as skipped (an incomplete subscription is not billed).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.config import Settings
from cityos.db.engines import tenant_transaction
from cityos.domain.billing import renewals, rules
from cityos.domain.billing.dunning import SCA
from cityos.domain.billing.models import (
    BillingAttemptOutcome,
    BillingCycleStatus,
    BillingInterval,
    CustomerSubscriptionStatus,
    SubscriptionPlanStatus,
)
from cityos.domain.billing.queries import CYCLE, SUBSCRIPTION
from cityos.domain.billing.service import BillingGateway, Mutate, PaymentOutcome, SubscribeRequest, declined
from cityos.domain.commerce.service import CART, LINE, return_reserved_units
from cityos.domain.kernel import validate_email
from cityos.errors import BadUserInput, Unavailable
from cityos.realtime.events import PendingEvents

S = CustomerSubscriptionStatus


class Subscribed:
    """A new subscription; `client_secret` when its card set-up waits for the customer's authentication (3-D
    Secure): the subscription is `incomplete` until the SetupIntent's webhook says how it went (setups.py)."""

    def __init__(self, subscription: Row[Any], client_secret: str | None = None) -> None:
        self.subscription, self.client_secret = subscription, client_secret


async def subscribe(engine: AsyncEngine, settings: Settings, connection_work: Mutate, gateway: BillingGateway,
                    request: SubscribeRequest, events: PendingEvents) -> Subscribed:
    """Start a subscription (module docstring). `connection_work`: the request's mutate (the trial path writes
    through it); `engine`: the first order's own committed transactions."""
    plan, price = request.plan, request.price
    if plan.status != SubscriptionPlanStatus.ACTIVE:
        raise BadUserInput("this plan is no longer offered", field="planId")
    if not 1 <= request.quantity <= 1000:
        raise BadUserInput("quantity must be 1-1000", field="quantity")
    if not request.email:
        raise BadUserInput("an email is needed: every renewal is an order with a receipt", field="email")
    email = validate_email(request.email)
    sid = str(request.subscription_id)
    metadata = {"tenant_id": str(plan.tenant_id), "subscription_id": sid, "plan_id": str(plan.id)}
    customer = await gateway.create_customer(email=email, metadata={**metadata, "customer_id": request.customer_id},
                                             idempotency_key=f"subscription-{sid}-customer")
    amount = price.amount * request.quantity
    values = {
        "tenant_id": plan.tenant_id, "id": request.subscription_id, "store_id": plan.store_id, "plan_id": plan.id,
        "vendor_id": plan.vendor_id, "customer_id": request.customer_id, "email": email,
        "currency_code": price.currency_code, "amount": amount, "quantity": request.quantity,
        "stripe_customer_id": customer, "setup_fee": price.setup_fee, "shipping_address": request.shipping_address}
    if rules.first_charge(amount, price.setup_fee, plan.trial_days) > 0:
        return await _first_order(engine, settings, gateway, request, values, metadata, events)
    return await _trial(connection_work, gateway, request, values, metadata)


async def _trial(connection_work: Mutate, gateway: BillingGateway, request: SubscribeRequest, values: dict[str, Any],
                 metadata: dict[str, str]) -> Subscribed:
    """The card saved by a SetupIntent; the trial runs from now (incomplete while the bank wants it authenticated)."""
    outcome = await gateway.save_payment_method(customer=values["stripe_customer_id"],
                                                payment_method=request.payment_method, metadata=metadata,
                                                idempotency_key=f"subscription-{request.subscription_id}-setup")
    authenticate = outcome.needs_authentication
    if not outcome.succeeded and not authenticate:
        raise declined(outcome)
    anchor = request.now + timedelta(days=request.plan.trial_days)
    status = S.INCOMPLETE if authenticate else S.TRIALING
    row = dict(values, status=status.value, anchor=anchor, periods_billed=0, current_period_start=request.now,
               current_period_end=anchor, trial_end=anchor, setup_intent_id=outcome.intent_id,
               stripe_payment_method_id=None if authenticate else outcome.payment_method_id)

    async def work(connection: AsyncConnection) -> Row[Any]:
        return (await connection.execute(insert(SUBSCRIPTION).values(**row).returning(*SUBSCRIPTION.c))).one()

    created: Row[Any] = await connection_work(work)
    return Subscribed(created, outcome.client_secret if authenticate else None)


async def _first_order(engine: AsyncEngine, settings: Settings, gateway: BillingGateway, request: SubscribeRequest,
                       values: dict[str, Any], metadata: dict[str, str], events: PendingEvents) -> Subscribed:
    plan, tenant_id, now = request.plan, request.plan.tenant_id, request.now
    start, end = rules.period_bounds(now, BillingInterval(plan.interval), plan.interval_count, 0)
    async with tenant_transaction(engine, tenant_id) as connection:  # OUT_OF_STOCK here: nothing is written
        subscription = (await connection.execute(insert(SUBSCRIPTION).values(
            **values, status=S.INCOMPLETE.value, anchor=now, periods_billed=0, current_period_start=start,
            current_period_end=end).returning(*SUBSCRIPTION.c))).one()
        cycle = (await connection.execute(insert(CYCLE).values(
            tenant_id=tenant_id, id=uuid.uuid4(), subscription_id=subscription.id, period_index=0,
            period_start=start, period_end=end, amount=values["amount"], currency_code=values["currency_code"],
            status=BillingCycleStatus.CHARGING.value, attempts=1, lease_until=now + renewals.LEASE,
        ).returning(*CYCLE.c))).one()
        cycle = await renewals.prepare_order(connection, subscription, cycle, now)
    try:
        outcome = await gateway.charge(
            amount=cycle.amount, currency=cycle.currency_code, customer=values["stripe_customer_id"],
            payment_method=request.payment_method, off_session=False, save_for_later=True,
            metadata={**renewals.renewal_metadata(tenant_id, cycle), **metadata},
            transfer_group=f"billing-cycle-{cycle.id}", idempotency_key=f"subscription-{subscription.id}-first")
    except Unavailable:
        raise  # left incomplete and charging: a webhook records a charge Stripe took after all (module docstring)
    if outcome.needs_authentication:  # 3-D Secure: the customer confirms it on-session; its webhook records it
        return await _awaiting_authentication(engine, subscription, cycle, outcome)
    if not outcome.succeeded:
        await _abandon(engine, tenant_id, subscription.id, cycle.cart_id)
        raise declined(outcome)
    async with tenant_transaction(engine, tenant_id) as connection:
        current = await renewals.locked_cycle(connection, cycle.id)
        await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
            stripe_payment_method_id=outcome.payment_method_id, first_payment_intent_id=outcome.intent_id))
        if current is not None and current.status == BillingCycleStatus.CHARGING:  # else a webhook recorded it
            await renewals.record_success(connection, settings, current, intent_id=str(outcome.intent_id),
                                          charge_id=outcome.charge_id, amount=current.amount, source="subscribe",
                                          now=now, events=events)
        created = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id))).one()
    return Subscribed(created)


async def _awaiting_authentication(engine: AsyncEngine, subscription: Row[Any], cycle: Row[Any],
                                   outcome: PaymentOutcome) -> Subscribed:
    """The bank wants the first charge authenticated: the subscription stays `incomplete` and its cycle waits for the
    customer (`failed`, actionRequired, no retry: the renewal jobs leave it alone); the client secret goes to
    Stripe.js, and the PaymentIntent's webhook (metadata.billing_cycle_id) records the payment and its order
    (runs.record_webhook), the card saved then."""
    async with tenant_transaction(engine, subscription.tenant_id) as connection:
        current = await renewals.locked_cycle(connection, cycle.id)
        if current is not None and current.status == BillingCycleStatus.CHARGING:
            await renewals.record_attempt(connection, current, "subscribe", current.amount,
                                          BillingAttemptOutcome.ACTION_REQUIRED, outcome.intent_id, outcome.code,
                                          outcome.decline_code, outcome.message)
            await connection.execute(update(CYCLE).where(CYCLE.c.id == current.id).values(
                status=BillingCycleStatus.FAILED.value, lease_until=None, payment_intent_id=outcome.intent_id,
                decline_code=SCA, failure_message=(outcome.message or "")[:1000], failed_at=func.now(),
                next_retry_at=None, action_required=True, updated_at=func.now()))
        await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
            first_payment_intent_id=outcome.intent_id, updated_at=func.now()))
        row = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id))).one()
    return Subscribed(row, outcome.client_secret)


async def _abandon(engine: AsyncEngine, tenant_id: uuid.UUID, subscription_id: uuid.UUID,
                   cart_id: uuid.UUID | None) -> None:
    """A declined first charge: nothing stays — the reserved units go back, the cart and the subscription (with
    its cycle) are deleted."""
    async with tenant_transaction(engine, tenant_id) as connection:
        await connection.execute(delete(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription_id))
        if cart_id is not None:
            await return_reserved_units(connection, cart_id)
            await connection.execute(delete(LINE).where(LINE.c.cart_id == cart_id))
            await connection.execute(delete(CART).where(CART.c.id == cart_id))
