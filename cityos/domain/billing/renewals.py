"""Renewals: every due billing cycle becomes one charge and one order, exactly once.

The three steps of the payouts (DESIGN.md §3, §6):
1. Claim: in one transaction, lock the due subscriptions (FOR UPDATE SKIP LOCKED: a second runner skips them) and
   insert each one's cycle for its next period, unique on (subscription, period_start) — a cycle is claimed once,
   whoever runs. A proration credit is taken off the cycle here. A period the customer skipped is recorded as a
   skipped cycle; a subscription set to cancel at period end is canceled instead. Commit.
2. Lease the cycle (pending → charging with a lease, one conditional UPDATE: one runner wins) and commit. Prepare
   its renewal order the way checkout does — a cart for the subscription's customer, its units reserved with the
   checkout's conditional decrement, the snapshot that is charged for — and commit (out of stock → the cycle is
   skipped, recorded, and the customer is notified through the outbox). Charge off-session with the cycle's id as
   the idempotency key, holding no lock.
3. Record: paid → the order is built by the checkout's own use case (orders.service.settle_payment, as
   complete_paid_order runs it: vendor split, commission ledger, Fleetbase and ERPNext through the outbox) from
   the cycle's snapshot, and the subscription's period advances; declined → dunning (dunning.record_failure);
   Stripe unavailable → the cycle is pending again and the next run charges it with the same key. A runner that
   dies between 2 and 3 leaves a `charging` cycle whose lease runs out; the next run charges again with the same
   key and Stripe answers with the first result, so there is one charge and one order per cycle.

The Stripe webhooks of renewal PaymentIntents record through the same functions (record_success,
dunning.record_failure) under the cycle's row lock, so a webhook racing the runner, replayed or reordered, never
records twice or advances twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.config import Settings
from cityos.db.engines import tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingAttempt,
    BillingAttemptOutcome,
    BillingCycleStatus,
    BillingInterval,
    CustomerSubscriptionStatus,
)
from cityos.domain.billing.queries import CYCLE, PLAN, SUBSCRIPTION
from cityos.domain.billing.service import PRODUCT, VARIANT, BillingGateway, PaymentOutcome
from cityos.domain.commerce.rules import PricedLine, cart_totals
from cityos.domain.commerce.service import (
    ATTEMPT,
    CART,
    LINE,
    create_cart,
    order_id_for,
    reserve_units,
    snapshot_fingerprint,
    tax_rate_of,
)
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.orders.service import PAYMENT_REFUND_TOPIC, settle_payment
from cityos.domain.platform.outbox import enqueue
from cityos.domain.promotions import service as promotions
from cityos.errors import BadUserInput, OutOfStock, Unavailable
from cityos.realtime.events import PendingEvents, subscription_event

ATTEMPT_ROW = table_of(BillingAttempt)
LEASE = timedelta(minutes=10)
RESERVATION_MINUTES = 30  # a renewal's units are held while it is charged; settle_payment re-takes them if needed
NOTICE_TOPIC = "billing.customer_notice"  # what the customer is told (skipped renewal, payment failed, canceled)
SHIPPING_CODE = "subscription"  # the renewal order's shipping option code: delivery is part of the plan's price
SETUP_FEE = "setup_fee"  # the code of the setup fee's line in an order's snapshot ("fees")
S = CustomerSubscriptionStatus
BILLABLE = (S.TRIALING, S.ACTIVE, S.PAST_DUE)  # a claimed or failed cycle of these is charged


def free_intent_id(cycle_id: uuid.UUID) -> str:
    """The payment reference of a cycle the proration credit paid in full (no PaymentIntent is made)."""
    return f"credit_{cycle_id}"


def sub_event(kind: str, subscription: Row[Any], status: str, **extra: Any) -> Any:
    return subscription_event(kind, tenant_id=subscription.tenant_id, store_id=subscription.store_id,
                              subscription_id=subscription.id, customer_id=subscription.customer_id,
                              vendor_id=subscription.vendor_id, status=status, **extra)


async def notify_customer(connection: AsyncConnection, subscription: Row[Any], kind: str, **details: Any) -> None:
    """The customer's notification, written to the outbox in the business transaction (sent once it commits)."""
    await enqueue(connection, tenant_id=subscription.tenant_id, topic=NOTICE_TOPIC, payload={
        "kind": kind, "subscription_id": str(subscription.id), "customer_id": subscription.customer_id,
        "email": subscription.email, **{key: str(value) if value is not None else None
                                        for key, value in details.items()}})


# --- step 1: claim ----------------------------------------------------------------------------------------------

async def claim_due_cycles(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime,
                           events: PendingEvents) -> dict[str, int]:
    """A pending cycle for every renewable subscription whose period has ended (or a skipped one, or the
    cancellation it was set to at period end). Returns the counts."""
    counts = {"claimed": 0, "skipped": 0, "canceled": 0}
    async with tenant_transaction(engine, tenant_id) as connection:
        due = (await connection.execute(
            select(SUBSCRIPTION, PLAN.c.interval, PLAN.c.interval_count)
            .join(PLAN, (PLAN.c.tenant_id == SUBSCRIPTION.c.tenant_id) & (PLAN.c.id == SUBSCRIPTION.c.plan_id))
            .where(SUBSCRIPTION.c.tenant_id == tenant_id,
                   SUBSCRIPTION.c.status.in_([status.value for status in rules.RENEWABLE]),
                   SUBSCRIPTION.c.current_period_end <= now)
            .with_for_update(of=SUBSCRIPTION, skip_locked=True))).all()
        for subscription in due:
            if subscription.cancel_at_period_end:
                rules.check_transition(subscription.status, S.CANCELED)
                await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
                    status=S.CANCELED.value, canceled_at=subscription.current_period_end, updated_at=func.now()))
                await notify_customer(connection, subscription, "canceled")
                events.add(sub_event("subscription.canceled", subscription, S.CANCELED.value))
                counts["canceled"] += 1
                continue
            index = subscription.periods_billed
            start, end = rules.period_bounds(subscription.anchor, BillingInterval(subscription.interval),
                                             subscription.interval_count, index)
            if subscription.skip_period_index == index:
                await _insert_cycle(connection, subscription, index, start, end, subscription.amount, 0,
                                    BillingCycleStatus.SKIPPED, "skipped by the customer")
                await _advance(connection, subscription, index, start, end)
                events.add(sub_event("subscription.cycle_skipped", subscription, S.ACTIVE.value,
                                     reason="skipped by the customer"))
                counts["skipped"] += 1
                continue
            unit = subscription.amount // subscription.quantity
            unit_after, used = rules.apply_credit(unit, subscription.quantity, subscription.credit_balance)
            inserted = await _insert_cycle(connection, subscription, index, start, end,
                                           unit_after * subscription.quantity, used, BillingCycleStatus.PENDING)
            if inserted and used:
                await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
                    credit_balance=SUBSCRIPTION.c.credit_balance - used, updated_at=func.now()))
            counts["claimed"] += int(inserted)
    return counts


async def _insert_cycle(connection: AsyncConnection, subscription: Row[Any], index: int, start: datetime,
                        end: datetime, amount: int, credit: int, status: BillingCycleStatus,
                        skip_reason: str | None = None) -> bool:
    inserted = await connection.execute(pg_insert(CYCLE).values(
        tenant_id=subscription.tenant_id, id=uuid.uuid4(), subscription_id=subscription.id, period_index=index,
        period_start=start, period_end=end, amount=amount, credit_applied=credit,
        currency_code=subscription.currency_code, status=status.value, skip_reason=skip_reason,
    ).on_conflict_do_nothing(index_elements=["tenant_id", "subscription_id", "period_start"]))
    return bool(inserted.rowcount)


async def _advance(connection: AsyncConnection, subscription: Row[Any], index: int, start: datetime,
                   end: datetime, **values: Any) -> None:
    """The subscription's current period becomes the cycle's (never backwards: a late record changes nothing)."""
    if subscription.periods_billed > index:
        return
    status = subscription.status
    if status in (S.INCOMPLETE, S.TRIALING, S.PAST_DUE):  # incomplete: its first charge (subscribing.py)
        rules.check_transition(status, S.ACTIVE)
        status = S.ACTIVE.value
    await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
        current_period_start=start, current_period_end=end, periods_billed=index + 1, status=status,
        skip_period_index=None if subscription.skip_period_index == index else subscription.skip_period_index,
        updated_at=func.now(), **values))


# --- step 2: lease, prepare, charge -----------------------------------------------------------------------------

async def lease(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> Row[Any] | None:
    """One pending cycle (or a charging one whose runner died) leased to this runner, committed."""
    async with tenant_transaction(engine, tenant_id) as connection:
        candidate = select(CYCLE.c.id).where(
            CYCLE.c.tenant_id == tenant_id,
            or_(CYCLE.c.status == BillingCycleStatus.PENDING.value,
                (CYCLE.c.status == BillingCycleStatus.CHARGING.value) & (CYCLE.c.lease_until < now)),
        ).order_by(CYCLE.c.period_start).limit(1).with_for_update(skip_locked=True).scalar_subquery()
        return (await connection.execute(update(CYCLE).where(CYCLE.c.id == candidate).values(
            status=BillingCycleStatus.CHARGING.value, lease_until=now + LEASE,
            attempts=func.greatest(CYCLE.c.attempts, 1), updated_at=func.now()).returning(*CYCLE.c))).first()


@dataclass(frozen=True)
class Renewal:
    """A leased cycle ready to charge: its subscription and the snapshot of its renewal order."""

    cycle: Row[Any]
    subscription: Row[Any]


async def prepare(engine: AsyncEngine, tenant_id: uuid.UUID, cycle: Row[Any], now: datetime,
                  events: PendingEvents) -> Renewal | None:
    """The renewal order's cart, reserved units and snapshot, once per cycle (a re-leased cycle keeps them).
    Out of stock → the cycle is skipped and recorded, the period advances and the customer is notified; None."""
    async with tenant_transaction(engine, tenant_id) as connection:
        current = (await connection.execute(select(CYCLE).where(CYCLE.c.id == cycle.id).with_for_update())).one()
        subscription = (await connection.execute(select(SUBSCRIPTION).where(
            SUBSCRIPTION.c.id == current.subscription_id).with_for_update())).one()
        if current.status != BillingCycleStatus.CHARGING:
            return None
        if subscription.status not in BILLABLE:  # canceled or paused after the cycle was claimed: not charged
            await connection.execute(update(CYCLE).where(CYCLE.c.id == current.id).values(
                status=BillingCycleStatus.SKIPPED.value, skip_reason=f"the subscription is {subscription.status}",
                lease_until=None, next_retry_at=None, updated_at=func.now()))
            await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(
                credit_balance=SUBSCRIPTION.c.credit_balance + current.credit_applied, updated_at=func.now()))
            return None
        if current.cart_id is not None:
            return Renewal(current, subscription)
        try:
            async with connection.begin_nested():
                prepared = await prepare_order(connection, subscription, current, now)
        except (OutOfStock, BadUserInput) as problem:
            await skip(connection, current, subscription, problem.message, events)
            return None
        return Renewal(prepared, subscription)


async def prepare_order(connection: AsyncConnection, subscription: Row[Any], current: Row[Any],
                        now: datetime) -> Row[Any]:
    """The cycle's order prepared the way checkout prepares a cart's: a cart for the subscription's customer, its
    units reserved with the checkout's conditional decrement (OUT_OF_STOCK otherwise), and the snapshot that is
    charged for, taxed as checkout taxes a cart; the cycle's amount becomes its total. Returns the cycle."""
    tenant_id = subscription.tenant_id
    item = (await connection.execute(
        select(PLAN.c.variant_id, PLAN.c.name, VARIANT.c.sku, VARIANT.c.title.label("variant_title"),
               PRODUCT.c.id.label("product_id"), PRODUCT.c.title.label("product_title"), PRODUCT.c.vendor_id)
        .join(VARIANT, (VARIANT.c.tenant_id == PLAN.c.tenant_id) & (VARIANT.c.id == PLAN.c.variant_id))
        .join(PRODUCT, (PRODUCT.c.tenant_id == VARIANT.c.tenant_id) & (PRODUCT.c.id == VARIANT.c.product_id))
        .where(PLAN.c.id == subscription.plan_id))).one()
    cart = await create_cart(connection, tenant_id=tenant_id, store_id=subscription.store_id,
                             currency_code=subscription.currency_code, customer_id=subscription.customer_id,
                             email=subscription.email)
    cart = (await connection.execute(update(CART).where(CART.c.id == cart.id).values(
        order_id=order_id_for(cart), shipping_address=subscription.shipping_address,
    ).returning(*CART.c))).one()
    await connection.execute(insert(LINE).values(
        tenant_id=tenant_id, id=uuid.uuid4(), cart_id=cart.id, variant_id=item.variant_id,
        quantity=subscription.quantity))
    await reserve_units(connection, cart, [(item.variant_id, subscription.quantity, item.sku)], RESERVATION_MINUTES)
    quantity = subscription.quantity
    list_unit = (current.amount + current.credit_applied) // quantity
    unit = current.amount // quantity
    # The setup fee, not charged yet, goes with the first paid period: a fee line of the order (not a product line:
    # no stock, no shipment), priced and taxed like a line, with the plan's vendor and commission rules.
    fee = subscription.setup_fee
    # A promotion the subscription carries (for N renewals) comes off the line before tax, and counts one cycle.
    carried = await promotions.discount_renewal(
        connection, subscription, [promotions.CartLineFacts(item.product_id, item.vendor_id, quantity, unit)], now)
    promoted = {"promotion_discount": carried.line_discounts[0],
                "promotion_vendor_funded": carried.vendor_funded[0]} if carried.line_discounts[0] else {}
    priced = [PricedLine(item.variant_id, item.vendor_id, quantity, list_unit, unit, carried.line_discounts[0],
                         carried.vendor_funded[0])]
    fees = []
    if fee > 0:
        priced.append(PricedLine(item.variant_id, item.vendor_id, 1, fee, fee))
        fees.append({"code": SETUP_FEE, "variant_id": str(item.variant_id), "product_id": str(item.product_id),
                     "vendor_id": str(item.vendor_id) if item.vendor_id else None, "sku": item.sku,
                     "title": f"Setup fee — {item.name}", "amount": fee})
    # Taxed as the checkout taxes a cart: the region's (or the shipping state's) rate, added to the price or
    # contained in it per the region (commerce rules.cart_totals). The cycle charges the taxed total.
    rate, inclusive = await tax_rate_of(connection, cart)
    totals = cart_totals(priced, 0, rate, inclusive)
    snapshot = {
        "currency_code": subscription.currency_code,
        "lines": [{"variant_id": str(item.variant_id), "product_id": str(item.product_id),
                   "vendor_id": str(item.vendor_id) if item.vendor_id else None, "sku": item.sku,
                   "title": f"{item.product_title} — {item.variant_title}", "quantity": quantity,
                   "list_unit_price": list_unit, "unit_price": unit, **promoted}],
        "fees": fees,
        "totals": {"subtotal": totals.subtotal, "discount_total": totals.discount_total,
                   "shipping_total": 0, "tax_total": totals.tax_total, "total": totals.total,
                   "tax_inclusive": totals.tax_inclusive},
        "shipping_option": {"id": None, "code": SHIPPING_CODE},
        "shipping_address": subscription.shipping_address or {},
        "subscription": {"id": str(subscription.id), "cycle_id": str(current.id), "plan": item.name},
        **({"promotions": carried.applied} if carried.applied else {}),
    }
    prepared: Row[Any] = (await connection.execute(update(CYCLE).where(CYCLE.c.id == current.id).values(
        cart_id=cart.id, snapshot=snapshot, amount=totals.total, updated_at=func.now())
        .returning(*CYCLE.c))).one()
    return prepared


async def skip(connection: AsyncConnection, cycle: Row[Any], subscription: Row[Any], reason: str,
               events: PendingEvents) -> None:
    """The cycle is not charged (out of stock): recorded, its credit given back, the period advances and the
    customer is notified."""
    await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
        status=BillingCycleStatus.SKIPPED.value, skip_reason=reason[:500], lease_until=None, next_retry_at=None,
        updated_at=func.now()))
    await _advance(connection, subscription, cycle.period_index, cycle.period_start, cycle.period_end,
                   credit_balance=subscription.credit_balance + cycle.credit_applied)
    await notify_customer(connection, subscription, "renewal_skipped", cycle_id=cycle.id, reason=reason)
    events.add(sub_event("subscription.cycle_skipped", subscription, subscription.status, reason=reason,
                         cycle_id=str(cycle.id)))


def renewal_metadata(tenant_id: uuid.UUID, cycle: Row[Any]) -> dict[str, str]:
    return {"tenant_id": str(tenant_id), "subscription_id": str(cycle.subscription_id),
            "billing_cycle_id": str(cycle.id), "period_start": cycle.period_start.isoformat()}


async def charge(gateway: BillingGateway, tenant_id: uuid.UUID, renewal: Renewal) -> PaymentOutcome:
    """The off-session charge, with no lock held; a cycle the credit paid in full charges nothing."""
    cycle, subscription = renewal.cycle, renewal.subscription
    if cycle.amount == 0:
        return PaymentOutcome(True, intent_id=free_intent_id(cycle.id), status="succeeded")
    if subscription.stripe_customer_id is None or subscription.stripe_payment_method_id is None:
        return PaymentOutcome(False, code="no_payment_method", message="no saved payment method")
    return await gateway.charge(
        amount=cycle.amount, currency=cycle.currency_code, customer=subscription.stripe_customer_id,
        payment_method=subscription.stripe_payment_method_id, off_session=True, save_for_later=False,
        metadata=renewal_metadata(tenant_id, cycle), transfer_group=f"billing-cycle-{cycle.id}",
        idempotency_key=rules.renewal_idempotency_key(str(cycle.id), cycle.attempts))


# --- step 3: record ---------------------------------------------------------------------------------------------

async def record_attempt(connection: AsyncConnection, cycle: Row[Any], source: str, amount: int,
                         outcome: BillingAttemptOutcome, intent_id: str | None, code: str | None = None,
                         decline_code: str | None = None, message: str | None = None) -> bool:
    """One row per attempt (PaymentIntent, outcome); False when it was recorded before (a webhook about an
    attempt the runner already recorded, a replay)."""
    inserted = await connection.execute(pg_insert(ATTEMPT_ROW).values(
        tenant_id=cycle.tenant_id, id=uuid.uuid4(), cycle_id=cycle.id, subscription_id=cycle.subscription_id,
        attempt=max(cycle.attempts, 1), source=source, payment_intent_id=intent_id, amount=amount,
        outcome=outcome.value, code=code, decline_code=decline_code, message=(message or "")[:1000] or None,
    ).on_conflict_do_nothing(index_elements=["tenant_id", "payment_intent_id", "outcome"]))
    return bool(inserted.rowcount)


async def record_success(connection: AsyncConnection, settings: Settings, cycle: Row[Any], *, intent_id: str,
                         charge_id: str | None, amount: int, source: str, now: datetime,
                         events: PendingEvents) -> str:
    """A paid cycle (its row locked by the caller): the renewal order through the checkout's use case, the cycle
    paid, the period advanced. Recording it again changes nothing."""
    if cycle.status == BillingCycleStatus.PAID:
        return "already paid"
    subscription = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == cycle.subscription_id)
                                             .with_for_update())).one()
    await record_attempt(connection, cycle, source, amount, BillingAttemptOutcome.SUCCEEDED, intent_id)
    order_id = None
    if cycle.cart_id is not None and cycle.snapshot:
        await connection.execute(pg_insert(ATTEMPT).values(  # settled before (a crash after): settle_payment says so
            tenant_id=cycle.tenant_id, id=uuid.uuid4(), cart_id=cycle.cart_id, store_id=subscription.store_id,
            customer_id=subscription.customer_id, payment_intent_id=intent_id,
            fingerprint=snapshot_fingerprint(cycle.snapshot), amount=cycle.amount,
            currency_code=cycle.currency_code, snapshot=cycle.snapshot, status="pending",
        ).on_conflict_do_nothing(index_elements=["tenant_id", "payment_intent_id"]))
        await connection.execute(update(CART).where(CART.c.id == cycle.cart_id).values(
            payment_intent_id=intent_id, updated_at=func.now()))
        # The checkout's settlement, as complete_paid_order runs it, except that a renewal without a shipping
        # address (nothing physical to deliver) asks Fleetbase for no shipment.
        settled = await settle_payment(connection, cart_id=cycle.cart_id, intent_id=intent_id,
                                       amount_received=amount, currency=cycle.currency_code,
                                       ledger_policy=LedgerPolicy.of(settings), events=events,
                                       ship=bool(settings.FLEETBASE_URL) and bool(subscription.shipping_address),
                                       account=bool(settings.ERPNEXT_URL))
        if settled.order is None:  # sold out after the reservation ran out: refunded by the checkout's rule
            await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
                payment_intent_id=intent_id, charge_id=charge_id, charged_at=now, lease_until=None,
                next_retry_at=None, action_required=False, updated_at=func.now()))
            await skip(connection, cycle, subscription, settled.refund_reason or "refunded", events)
            return "skipped"
        order_id = settled.order.id
    await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
        status=BillingCycleStatus.PAID.value, lease_until=None, payment_intent_id=intent_id, charge_id=charge_id,
        order_id=order_id, decline_code=None, failure_message=None, charged_at=now, next_retry_at=None,
        action_required=False, updated_at=func.now()))
    await _advance(connection, subscription, cycle.period_index, cycle.period_start, cycle.period_end,
                   last_decline_code=None, last_payment_error=None)
    if cycle.snapshot and cycle.snapshot.get("fees"):  # the setup fee is paid: never charged again
        await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id).values(setup_fee=0))
    events.add(sub_event("subscription.renewed", subscription, S.ACTIVE.value, cycle_id=str(cycle.id),
                         order_id=str(order_id) if order_id else None))
    return "paid"


async def refund_late_payment(connection: AsyncConnection, cycle: Row[Any], intent: dict[str, Any]) -> str:
    """A payment Stripe took for a cycle already closed without it (its first charge went unanswered or waited for
    3-D Secure, and the subscription expired before the payment's webhook came; or the subscription stopped while
    a renewal was charged): recorded as the cycle's attempt and refunded whole through the outbox, once — the
    customer is never charged for a period nobody delivers. A cycle skipped after its payment (sold out) has
    recorded that payment already and refunded it itself: nothing more here."""
    intent_id = str(intent["id"])
    if not await record_attempt(connection, cycle, "webhook", int(intent.get("amount_received") or 0),
                                BillingAttemptOutcome.SUCCEEDED, intent_id,
                                message="refunded: the billing cycle was closed before this payment arrived"):
        return f"ignored: the cycle is {cycle.status}"
    await enqueue(connection, tenant_id=cycle.tenant_id, topic=PAYMENT_REFUND_TOPIC, payload={
        "payment_intent_id": intent_id, "cart_id": str(cycle.cart_id) if cycle.cart_id else "",
        "reason": "the billing cycle was closed before the payment arrived"})
    return "refunded: the cycle was closed before the payment arrived"


async def locked_cycle(connection: AsyncConnection, cycle_id: uuid.UUID) -> Row[Any] | None:
    return (await connection.execute(select(CYCLE).where(CYCLE.c.id == cycle_id).with_for_update())).first()


async def release(engine: AsyncEngine, tenant_id: uuid.UUID, cycle: Row[Any], error: Unavailable,
                  back_to: BillingCycleStatus) -> None:
    """Stripe did not answer: the cycle goes back to where it was (due), nothing else is written. A dunning retry
    gives its attempt back, so the schedule is not shortened and the next try reuses the same idempotency key
    (should Stripe have taken the call after all, it answers with that PaymentIntent)."""
    attempts = CYCLE.c.attempts - 1 if back_to is BillingCycleStatus.FAILED else CYCLE.c.attempts
    async with tenant_transaction(engine, tenant_id) as connection:
        await connection.execute(update(CYCLE).where(
            CYCLE.c.id == cycle.id, CYCLE.c.status == BillingCycleStatus.CHARGING.value).values(
            status=back_to.value, lease_until=None, attempts=attempts, failure_message=error.message[:1000],
            updated_at=func.now()))
