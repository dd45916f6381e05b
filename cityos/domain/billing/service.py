"""Billing use cases: plans (vendors manage their own, store admins all of the store's) and subscribing (a Stripe
Customer and a payment method saved for off-session use: subscribing.py). Renewals are renewals.py's, dunning
dunning.py's, the customer's own changes selfservice.py's.

The payment provider is reached through the `BillingGateway` port declared here (integrations/stripe/billing.py
implements it); the domain imports no vendor SDK."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol, cast

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingInterval,
    SubscriptionPlanStatus,
)
from cityos.domain.billing.queries import PLAN, PLAN_PRICE
from cityos.domain.catalog.models import Product, Variant
from cityos.domain.commerce.service import REGION, validate_address
from cityos.domain.tenancy.models import Currency
from cityos.domain.tenancy.rules import validate_name
from cityos.errors import BadUserInput, PaymentFailed

PRODUCT = table_of(Product)
VARIANT = table_of(Variant)


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
    client_secret: str | None = None  # an intent that needs the customer's authentication: for Stripe.js

    @property
    def needs_authentication(self) -> bool:
        """The bank asks the customer to authenticate on-session (3-D Secure) before the intent can succeed."""
        return not self.succeeded and self.status == "requires_action" and bool(self.client_secret)


class BillingGateway(Protocol):
    """Stripe as billing needs it: Customers, SetupIntents and (off-session) PaymentIntents."""

    async def create_customer(self, *, email: str | None, metadata: dict[str, str], idempotency_key: str) -> str: ...

    async def save_payment_method(self, *, customer: str, payment_method: str, metadata: dict[str, str],
                                  idempotency_key: str) -> PaymentOutcome: ...

    async def client_secret(self, intent_id: str) -> tuple[str, str]:
        """The PaymentIntent's status and client secret (the customer confirms it on-session with Stripe.js)."""
        ...

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
    shipping_address: dict[str, Any] | None = None  # checked by renewal_region; where renewal orders ship to
    subscription_id: uuid.UUID = field(default_factory=uuid.uuid4)


async def renewal_region(connection: AsyncConnection, currency_code: str,
                         address: dict[str, Any] | None) -> dict[str, Any] | None:
    """Renewals become orders of a region that sells the subscription's currency (as a checkout's cart): none →
    BAD_USER_INPUT. The shipping address, when given, is checked against that region like a cart's."""
    region = (await connection.execute(select(REGION).where(REGION.c.currency_code == currency_code.lower())
                                       .order_by(REGION.c.created_at).limit(1))).first()
    if region is None:
        raise BadUserInput(f"no region of this store sells in {currency_code.upper()}", field="currencyCode")
    if address is None:
        return None
    return await validate_address(connection, cast("Row[Any]", SimpleNamespace(region_id=region.id)), address)


Mutate = Callable[[Callable[[AsyncConnection], Awaitable[Row[Any]]]], Awaitable[Row[Any]]]


def declined(outcome: PaymentOutcome) -> PaymentFailed:
    return PaymentFailed(outcome.message or "the card was declined", provider_code=outcome.code or "",
                         decline_code=outcome.decline_code or "")
