"""Billing use cases: plans (vendors manage their own, store admins all of the store's), subscribing (a Stripe
Customer and a payment method saved for off-session use) and the renewal of billing cycles.

The payment provider is reached through the `BillingGateway` port declared here (integrations/stripe/billing.py
implements it); the domain imports no vendor SDK.

Renewals are exactly once per cycle, in the three steps of the payouts (DESIGN.md §3, §6):
1. Claim: in one transaction, lock the due subscriptions (FOR UPDATE SKIP LOCKED: a second runner skips them) and
   insert each one's cycle for its next period, unique on (subscription, period_start) — a cycle is claimed once,
   whoever runs. Commit.
2. Lease the cycle (pending → charging with a lease, one conditional UPDATE: one runner wins) and commit; charge
   off-session with the cycle's id as the idempotency key, holding no lock.
3. Record: paid → the subscription's period advances; declined → the cycle is failed with Stripe's decline code and
   the subscription is past_due; Stripe unavailable → the cycle is pending again and the next run charges it with
   the same key. A runner that dies between 2 and 3 leaves a `charging` cycle whose lease runs out; the next run
   charges again with the same key and Stripe answers with the first result, so there is one charge per cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingCycleStatus,
    BillingInterval,
    CustomerSubscriptionStatus,
    SubscriptionPlanStatus,
)
from cityos.domain.billing.queries import CYCLE, PLAN, PLAN_PRICE, SUBSCRIPTION
from cityos.domain.catalog.models import Product, Variant
from cityos.domain.kernel import validate_email
from cityos.domain.tenancy.models import Currency
from cityos.domain.tenancy.rules import validate_name
from cityos.errors import BadUserInput, PaymentFailed, Unavailable

PRODUCT = table_of(Product)
VARIANT = table_of(Variant)
LEASE = timedelta(minutes=10)


# --- the port ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentOutcome:
    """The answer to a charge or a card set-up: succeeded, or declined with the provider's codes. A provider that
    cannot answer raises Unavailable instead."""

    succeeded: bool
    intent_id: str | None = None  # pi_… or seti_…
    payment_method_id: str | None = None  # the saved card (pm_…)
    charge_id: str | None = None
    status: str | None = None
    code: str | None = None  # card_declined, authentication_required, …
    decline_code: str | None = None  # generic_decline, insufficient_funds, …
    message: str | None = None


class BillingGateway(Protocol):
    """Stripe as billing needs it: Customers, SetupIntents and (off-session) PaymentIntents."""

    async def create_customer(self, *, email: str | None, metadata: dict[str, str], idempotency_key: str) -> str: ...

    async def save_payment_method(self, *, customer: str, payment_method: str, metadata: dict[str, str],
                                  idempotency_key: str) -> PaymentOutcome: ...

    async def charge(self, *, amount: int, currency: str, customer: str, payment_method: str, off_session: bool,
                     save_for_later: bool, metadata: dict[str, str], transfer_group: str,
                     idempotency_key: str) -> PaymentOutcome: ...


# --- plans ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanPrice:
    currency_code: str
    amount: int
    setup_fee: int = 0


@dataclass
class PlanChanges:
    name: str | None = None
    interval: BillingInterval | None = None
    interval_count: int | None = None
    trial_days: int | None = None
    prices: list[PlanPrice] | None = None


async def variant_owner(connection: AsyncConnection, variant_id: uuid.UUID) -> Row[Any] | None:
    """The variant's product, store and vendor (what a plan's policy attributes come from)."""
    owner = (await connection.execute(
        select(VARIANT.c.id.label("variant_id"), PRODUCT.c.id.label("product_id"), PRODUCT.c.store_id,
               PRODUCT.c.vendor_id)
        .join(PRODUCT, (PRODUCT.c.tenant_id == VARIANT.c.tenant_id) & (PRODUCT.c.id == VARIANT.c.product_id))
        .where(VARIANT.c.id == variant_id))).first()
    return cast("Row[Any] | None", owner)


async def _validate_prices(connection: AsyncConnection, prices: Sequence[PlanPrice]) -> list[PlanPrice]:
    if not prices:
        raise BadUserInput("a plan needs a price in at least one currency", field="prices")
    codes = [price.currency_code.lower() for price in prices]
    if len(set(codes)) != len(codes):
        raise BadUserInput("one price per currency", field="prices")
    known = set((await connection.execute(select(Currency.code).where(Currency.code.in_(codes)))).scalars())
    for price in prices:
        if price.currency_code.lower() not in known:
            raise BadUserInput(f"unknown currency {price.currency_code!r}", field="prices")
        if price.amount <= 0:
            raise BadUserInput("a plan's price must be positive", field="prices")
        if price.setup_fee < 0:
            raise BadUserInput("a setup fee must not be negative", field="prices")
    return [PlanPrice(price.currency_code.lower(), price.amount, price.setup_fee) for price in prices]


async def _replace_prices(connection: AsyncConnection, plan: Row[Any], prices: Sequence[PlanPrice]) -> None:
    await connection.execute(PLAN_PRICE.delete().where(PLAN_PRICE.c.plan_id == plan.id))
    await connection.execute(insert(PLAN_PRICE), [
        {"tenant_id": plan.tenant_id, "id": uuid.uuid4(), "plan_id": plan.id, "currency_code": price.currency_code,
         "amount": price.amount, "setup_fee": price.setup_fee} for price in prices])


async def create_plan(connection: AsyncConnection, *, tenant_id: uuid.UUID, owner: Row[Any], name: str,
                      interval: BillingInterval, interval_count: int, trial_days: int,
                      prices: Sequence[PlanPrice]) -> Row[Any]:
    """A plan selling `owner` (variant_owner's row) on a schedule."""
    rules.validate_plan_terms(interval_count, trial_days)
    checked = await _validate_prices(connection, prices)
    plan = (await connection.execute(insert(PLAN).values(
        tenant_id=tenant_id, id=uuid.uuid4(), store_id=owner.store_id, product_id=owner.product_id,
        variant_id=owner.variant_id, vendor_id=owner.vendor_id, name=validate_name(name, "name", 255),
        interval=interval.value, interval_count=interval_count, trial_days=trial_days,
        status=SubscriptionPlanStatus.ACTIVE.value).returning(*PLAN.c))).one()
    await _replace_prices(connection, plan, checked)
    return plan


async def update_plan(connection: AsyncConnection, *, plan: Row[Any], changes: PlanChanges) -> Row[Any]:
    """Change a plan. Existing subscriptions keep the terms they subscribed to (amount, anchor); the schedule's
    interval applies to their next periods."""
    if plan.status == SubscriptionPlanStatus.ARCHIVED:
        raise BadUserInput("an archived plan cannot change", field="id")
    rules.validate_plan_terms(changes.interval_count if changes.interval_count is not None else plan.interval_count,
                              changes.trial_days if changes.trial_days is not None else plan.trial_days)
    values: dict[str, Any] = {"updated_at": func.now()}
    if changes.name is not None:
        values["name"] = validate_name(changes.name, "name", 255)
    if changes.interval is not None:
        values["interval"] = changes.interval.value
    if changes.interval_count is not None:
        values["interval_count"] = changes.interval_count
    if changes.trial_days is not None:
        values["trial_days"] = changes.trial_days
    updated = (await connection.execute(update(PLAN).where(PLAN.c.id == plan.id).values(**values)
                                        .returning(*PLAN.c))).one()
    if changes.prices is not None:
        await _replace_prices(connection, updated, await _validate_prices(connection, changes.prices))
    return updated


async def archive_plan(connection: AsyncConnection, *, plan: Row[Any]) -> Row[Any]:
    """No new subscriptions; existing ones go on renewing."""
    return (await connection.execute(update(PLAN).where(PLAN.c.id == plan.id).values(
        status=SubscriptionPlanStatus.ARCHIVED.value, updated_at=func.now()).returning(*PLAN.c))).one()


# --- subscribing ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscribeRequest:
    plan: Row[Any]
    price: Row[Any]
    customer_id: str
    email: str | None
    payment_method: str  # from Stripe.js (or a test-mode pm_card_… alias)
    now: datetime
    quantity: int = 1
    subscription_id: uuid.UUID = field(default_factory=uuid.uuid4)


Mutate = Callable[[Callable[[AsyncConnection], Awaitable[Row[Any]]]], Awaitable[Row[Any]]]


def _declined(outcome: PaymentOutcome) -> PaymentFailed:
    return PaymentFailed(outcome.message or "the card was declined", provider_code=outcome.code or "",
                         decline_code=outcome.decline_code or "")


async def subscribe(connection_work: Mutate, gateway: BillingGateway, request: SubscribeRequest) -> Row[Any]:
    """Save the customer's card for off-session renewals and start the subscription. With a trial and no setup fee
    the card is saved by a SetupIntent; otherwise the first charge (setup fee, plus the first period without a
    trial) is a PaymentIntent with setup_future_usage=off_session. The Stripe calls come first, with no row locked,
    each with an idempotency key derived from the subscription's id; then the subscription is written
    (`connection_work`: the request's mutate)."""
    plan, price = request.plan, request.price
    if plan.status != SubscriptionPlanStatus.ACTIVE:
        raise BadUserInput("this plan is no longer offered", field="planId")
    if not 1 <= request.quantity <= 1000:
        raise BadUserInput("quantity must be 1-1000", field="quantity")
    email = validate_email(request.email) if request.email else None
    sid = str(request.subscription_id)
    metadata = {"tenant_id": str(plan.tenant_id), "subscription_id": sid, "plan_id": str(plan.id)}
    customer = await gateway.create_customer(email=email, metadata={**metadata,
                                                                            "customer_id": request.customer_id},
                                             idempotency_key=f"subscription-{sid}-customer")
    amount = price.amount * request.quantity
    due_now = rules.first_charge(amount, price.setup_fee, plan.trial_days)
    if due_now == 0:
        outcome = await gateway.save_payment_method(customer=customer, payment_method=request.payment_method,
                                                    metadata=metadata, idempotency_key=f"subscription-{sid}-setup")
    else:
        outcome = await gateway.charge(amount=due_now, currency=price.currency_code, customer=customer,
                                       payment_method=request.payment_method, off_session=False,
                                       save_for_later=True, metadata=metadata, transfer_group=f"subscription-{sid}",
                                       idempotency_key=f"subscription-{sid}-first")
    if not outcome.succeeded:
        raise _declined(outcome)
    interval = BillingInterval(plan.interval)
    if plan.trial_days > 0:
        anchor = request.now + timedelta(days=plan.trial_days)
        status, start, end, billed, trial_end = CustomerSubscriptionStatus.TRIALING, request.now, anchor, 0, anchor
    else:
        anchor = request.now
        start, end = rules.period_bounds(anchor, interval, plan.interval_count, 0)
        status, billed, trial_end = CustomerSubscriptionStatus.ACTIVE, 1, None
    values = {
        "tenant_id": plan.tenant_id, "id": request.subscription_id, "store_id": plan.store_id, "plan_id": plan.id,
        "vendor_id": plan.vendor_id, "customer_id": request.customer_id, "email": email,
        "currency_code": price.currency_code, "amount": amount, "quantity": request.quantity,
        "status": status.value, "anchor": anchor, "periods_billed": billed, "current_period_start": start,
        "current_period_end": end, "trial_end": trial_end, "stripe_customer_id": customer,
        "stripe_payment_method_id": outcome.payment_method_id,
        "setup_intent_id": outcome.intent_id if due_now == 0 else None,
        "first_payment_intent_id": outcome.intent_id if due_now else None}

    async def work(connection: AsyncConnection) -> Row[Any]:
        return (await connection.execute(insert(SUBSCRIPTION).values(**values).returning(*SUBSCRIPTION.c))).one()

    result: Row[Any] = await connection_work(work)
    return result


# --- renewals ---------------------------------------------------------------------------------------------------

async def claim_due_cycles(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> int:
    """Step 1: a pending cycle for every renewable subscription whose period has ended. Returns how many new."""
    created = 0
    async with tenant_transaction(engine, tenant_id) as connection:
        due = (await connection.execute(
            select(SUBSCRIPTION, PLAN.c.interval, PLAN.c.interval_count)
            .join(PLAN, (PLAN.c.tenant_id == SUBSCRIPTION.c.tenant_id) & (PLAN.c.id == SUBSCRIPTION.c.plan_id))
            .where(SUBSCRIPTION.c.tenant_id == tenant_id,
                   SUBSCRIPTION.c.status.in_([status.value for status in rules.RENEWABLE]),
                   SUBSCRIPTION.c.current_period_end <= now)
            .with_for_update(of=SUBSCRIPTION, skip_locked=True))).all()
        for subscription in due:
            index = subscription.periods_billed
            start, end = rules.period_bounds(subscription.anchor, BillingInterval(subscription.interval),
                                             subscription.interval_count, index)
            inserted = await connection.execute(pg_insert(CYCLE).values(
                tenant_id=tenant_id, id=uuid.uuid4(), subscription_id=subscription.id, period_index=index,
                period_start=start, period_end=end, amount=subscription.amount,
                currency_code=subscription.currency_code, status=BillingCycleStatus.PENDING.value,
            ).on_conflict_do_nothing(index_elements=["tenant_id", "subscription_id", "period_start"]))
            created += inserted.rowcount or 0
    return created


async def _lease(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> Row[Any] | None:
    """Step 2a: one pending cycle (or a charging one whose runner died) leased to this runner, committed."""
    async with tenant_transaction(engine, tenant_id) as connection:
        candidate = select(CYCLE.c.id).where(
            CYCLE.c.tenant_id == tenant_id,
            or_(CYCLE.c.status == BillingCycleStatus.PENDING.value,
                (CYCLE.c.status == BillingCycleStatus.CHARGING.value) & (CYCLE.c.lease_until < now)),
        ).order_by(CYCLE.c.period_start).limit(1).with_for_update(skip_locked=True).scalar_subquery()
        return (await connection.execute(update(CYCLE).where(CYCLE.c.id == candidate).values(
            status=BillingCycleStatus.CHARGING.value, lease_until=now + LEASE,
            attempts=func.greatest(CYCLE.c.attempts, 1), updated_at=func.now()).returning(*CYCLE.c))).first()


async def charge_cycle(engine: AsyncEngine, gateway: BillingGateway, tenant_id: uuid.UUID, cycle: Row[Any],
                       now: datetime) -> str:
    """Steps 2b and 3 for a leased cycle: 'paid', 'failed' or 'retry' (Stripe unavailable)."""
    async with tenant_transaction(engine, tenant_id) as connection:
        subscription = (await connection.execute(select(SUBSCRIPTION).where(
            SUBSCRIPTION.c.id == cycle.subscription_id))).one()
    if subscription.stripe_customer_id is None or subscription.stripe_payment_method_id is None:
        outcome = PaymentOutcome(False, code="no_payment_method", message="no saved payment method")
    else:
        try:
            outcome = await gateway.charge(
                amount=cycle.amount, currency=cycle.currency_code, customer=subscription.stripe_customer_id,
                payment_method=subscription.stripe_payment_method_id, off_session=True, save_for_later=False,
                metadata={"tenant_id": str(tenant_id), "subscription_id": str(subscription.id),
                          "billing_cycle_id": str(cycle.id), "period_start": cycle.period_start.isoformat()},
                transfer_group=f"billing-cycle-{cycle.id}",
                idempotency_key=rules.renewal_idempotency_key(str(cycle.id), cycle.attempts))
        except Unavailable as error:
            async with tenant_transaction(engine, tenant_id) as connection:
                await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
                    status=BillingCycleStatus.PENDING.value, lease_until=None, failure_message=error.message[:1000],
                    updated_at=func.now()))
            return "retry"
    async with tenant_transaction(engine, tenant_id) as connection:
        current = (await connection.execute(select(CYCLE.c.status).where(CYCLE.c.id == cycle.id)
                                            .with_for_update())).scalar_one()
        if current != BillingCycleStatus.CHARGING:
            return "skipped"  # another runner recorded it after our lease ran out (same key, same answer)
        sub = (await connection.execute(select(SUBSCRIPTION).where(SUBSCRIPTION.c.id == subscription.id)
                                        .with_for_update())).one()
        if outcome.succeeded:
            await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
                status=BillingCycleStatus.PAID.value, lease_until=None, payment_intent_id=outcome.intent_id,
                charge_id=outcome.charge_id, decline_code=None, failure_message=None, charged_at=now,
                updated_at=func.now()))
            advance: dict[str, Any] = {"current_period_start": cycle.period_start,
                                       "current_period_end": cycle.period_end,
                                       "periods_billed": cycle.period_index + 1, "last_decline_code": None,
                                       "last_payment_error": None}
            if sub.status in (CustomerSubscriptionStatus.TRIALING, CustomerSubscriptionStatus.PAST_DUE):
                rules.check_transition(sub.status, CustomerSubscriptionStatus.ACTIVE)
                advance["status"] = CustomerSubscriptionStatus.ACTIVE.value
            await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == sub.id).values(
                **advance, updated_at=func.now()))
            return "paid"
        await connection.execute(update(CYCLE).where(CYCLE.c.id == cycle.id).values(
            status=BillingCycleStatus.FAILED.value, lease_until=None, payment_intent_id=outcome.intent_id,
            decline_code=outcome.decline_code or outcome.code, failure_message=(outcome.message or "")[:1000],
            updated_at=func.now()))
        values: dict[str, Any] = {"last_decline_code": outcome.decline_code or outcome.code,
                                  "last_payment_error": (outcome.message or "")[:1000], "updated_at": func.now()}
        if sub.status != CustomerSubscriptionStatus.PAST_DUE:
            rules.check_transition(sub.status, CustomerSubscriptionStatus.PAST_DUE)
            values["status"] = CustomerSubscriptionStatus.PAST_DUE.value
        await connection.execute(update(SUBSCRIPTION).where(SUBSCRIPTION.c.id == sub.id).values(**values))
        return "failed"


async def process_billing_cycles(engine: AsyncEngine, gateway: BillingGateway, tenant_id: uuid.UUID,
                                 now: datetime) -> dict[str, int]:
    """The process-billing-cycles job for one tenant at `now` (the clock seam: tests pass a later time)."""
    counts = {"claimed": await claim_due_cycles(engine, tenant_id, now), "paid": 0, "failed": 0, "retry": 0,
              "skipped": 0}
    while (cycle := await _lease(engine, tenant_id, now)) is not None:
        outcome = await charge_cycle(engine, gateway, tenant_id, cycle, now)
        counts[outcome] += 1
        if outcome == "retry":
            break  # Stripe is unavailable: the cycles stay pending for the next run
    return counts
