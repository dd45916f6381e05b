"""Subscribing from a cart: subscription plans in a cart check out with the cart's PaymentIntent into customer
subscriptions.

- `add_to_cart`: a plan (without a trial: a trial starts with subscribe, its first charge at the trial's end) of
  the cart's store, priced in the cart's currency, × quantity; the cart must be a signed-in customer's (a
  subscription belongs to one). Changing the cart ends its checkout, like any cart change.
- **A cart holds products or subscriptions, not both**: a mixed cart's checkout is BAD_USER_INPUT (field `cartId`)
  — check the products out in a cart of their own. (Their order, delivery and refunds differ: a renewal's delivery
  is part of the plan's price, a product's is the shipping option's.)
- `checkout_snapshot` (startCheckout's `snapshot_of` for such a cart): each plan's variant × quantity at the plan's
  price, the setup fees as fee lines, taxed as checkout taxes a cart, delivery included (shipping option code
  `subscription`), the Stripe Customer the PaymentIntent is made for, and `save_card` so the card is saved for
  off-session use (setup_future_usage=off_session). The checkout then reserves, charges and settles it as any cart:
  the order (vendor split, ledger, Fleetbase, ERPNext) is the checkout's.
- `subscriptions_from_checkout`, in the settlement's transaction (completeCheckout or the payment_intent.succeeded
  webhook, whichever comes first): one `active` subscription per plan, its period 1 paid by that order (a `paid`
  cycle naming the order, the order's total split over the plans by largest remainder), the PaymentIntent's card
  saved for its renewals. Its id derives from the order and the plan, so a replay creates nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.billing import rules
from cityos.domain.billing.models import (
    BillingAttemptOutcome,
    BillingCycleStatus,
    BillingInterval,
    CartSubscriptionItem,
    CustomerSubscriptionStatus,
    SubscriptionPlanStatus,
)
from cityos.domain.billing.queries import CYCLE, PLAN, PLAN_PRICE, SUBSCRIPTION
from cityos.domain.billing.renewals import SETUP_FEE, SHIPPING_CODE, record_attempt, sub_event
from cityos.domain.billing.service import PRODUCT, VARIANT
from cityos.domain.commerce.rules import PricedLine, allocate, cart_totals
from cityos.domain.commerce.service import ATTEMPT, CART, LINE, release_reservations, tax_rate_of
from cityos.domain.orders.service import ORDER
from cityos.errors import BadUserInput
from cityos.realtime.events import PendingEvents

ITEM = table_of(CartSubscriptionItem)
MIXED = ("a cart holds products or subscriptions, not both: check the products out in a cart of their own")
SUBSCRIPTION_NAMESPACE = uuid.UUID("3d0c7a52-1f4e-4f0a-9a57-6c1f0e2b8d41")


def subscription_id_for(order_id: uuid.UUID, plan_id: uuid.UUID) -> uuid.UUID:
    """The subscription a checked-out plan becomes: derived, so settling twice creates it once."""
    return uuid.uuid5(SUBSCRIPTION_NAMESPACE, f"{order_id}:{plan_id}")


async def has_items(connection: AsyncConnection, cart_id: uuid.UUID) -> bool:
    return (await connection.execute(select(ITEM.c.id).where(ITEM.c.cart_id == cart_id).limit(1))).first() is not None


async def add_to_cart(connection: AsyncConnection, cart: Row[Any], plan: Row[Any], quantity: int) -> None:
    """Put `quantity` of a plan in the cart (0 takes it out). The cart row is locked by the caller."""
    if cart.status != "open":
        raise BadUserInput("this cart is already checked out", field="cartId")
    if cart.customer_id is None:
        raise BadUserInput("sign in as a customer to subscribe: a subscription belongs to one", field="cartId")
    if plan.status != SubscriptionPlanStatus.ACTIVE or plan.store_id != cart.store_id:
        raise BadUserInput("this plan is not offered in this cart's store", field="planId")
    if plan.trial_days > 0:
        raise BadUserInput("a plan with a trial is subscribed to with subscribe (nothing is paid until the trial "
                           "ends)", field="planId")
    if not 0 <= quantity <= 1000:
        raise BadUserInput("quantity must be 0-1000", field="quantity")
    price = (await connection.execute(select(PLAN_PRICE.c.id).where(
        PLAN_PRICE.c.plan_id == plan.id, PLAN_PRICE.c.currency_code == cart.currency_code))).first()
    if price is None:
        raise BadUserInput(f"this plan has no price in {cart.currency_code.upper()}", field="planId")
    if (await connection.execute(select(LINE.c.id).where(LINE.c.cart_id == cart.id).limit(1))).first():
        raise BadUserInput(MIXED, field="cartId")
    same_variant = (await connection.execute(select(ITEM.c.id).join(
        PLAN, (PLAN.c.tenant_id == ITEM.c.tenant_id) & (PLAN.c.id == ITEM.c.plan_id)).where(
        ITEM.c.cart_id == cart.id, PLAN.c.variant_id == plan.variant_id, ITEM.c.plan_id != plan.id))).first()
    if same_variant:
        raise BadUserInput("the cart already subscribes to this item with another plan", field="planId")
    await release_reservations(connection, cart)  # the cart changes: its checkout ends
    if quantity == 0:
        await connection.execute(delete(ITEM).where(ITEM.c.cart_id == cart.id, ITEM.c.plan_id == plan.id))
        return
    statement = pg_insert(ITEM).values(tenant_id=cart.tenant_id, id=uuid.uuid4(), cart_id=cart.id, plan_id=plan.id,
                                       quantity=quantity)
    await connection.execute(statement.on_conflict_do_update(
        index_elements=["tenant_id", "cart_id", "plan_id"],
        set_={"quantity": statement.excluded.quantity, "updated_at": func.now()}))


async def items_of(connection: AsyncConnection, cart: Row[Any]) -> Sequence[Any]:
    """The plans in the cart, each with its price and setup fee in the cart's currency (None: no longer priced in
    it), its variant and product."""
    return (await connection.execute(
        select(ITEM.c.quantity, PLAN.c.id.label("plan_id"), PLAN.c.name, PLAN.c.status, PLAN.c.trial_days,
               PLAN.c.variant_id, PLAN_PRICE.c.amount, PLAN_PRICE.c.setup_fee, VARIANT.c.sku,
               VARIANT.c.title.label("variant_title"), PRODUCT.c.id.label("product_id"),
               PRODUCT.c.title.label("product_title"), PRODUCT.c.vendor_id)
        .join(PLAN, (PLAN.c.tenant_id == ITEM.c.tenant_id) & (PLAN.c.id == ITEM.c.plan_id))
        .outerjoin(PLAN_PRICE, (PLAN_PRICE.c.tenant_id == PLAN.c.tenant_id) & (PLAN_PRICE.c.plan_id == PLAN.c.id)
                   & (PLAN_PRICE.c.currency_code == cart.currency_code))
        .join(VARIANT, (VARIANT.c.tenant_id == PLAN.c.tenant_id) & (VARIANT.c.id == PLAN.c.variant_id))
        .join(PRODUCT, (PRODUCT.c.tenant_id == VARIANT.c.tenant_id) & (PRODUCT.c.id == VARIANT.c.product_id))
        .where(ITEM.c.cart_id == cart.id).order_by(ITEM.c.created_at, ITEM.c.id))).all()


async def checkout_snapshot(connection: AsyncConnection, cart: Row[Any], *, stripe_customer: str) -> dict[str, Any]:
    """What the checkout of a cart of subscriptions charges for (module docstring)."""
    items = await items_of(connection, cart)
    if not items:
        raise BadUserInput("the cart holds no subscription", field="cartId")
    if (await connection.execute(select(LINE.c.id).where(LINE.c.cart_id == cart.id).limit(1))).first():
        raise BadUserInput(MIXED, field="cartId")
    if not cart.email:
        raise BadUserInput("the cart needs an email", field="email")
    if not cart.shipping_address:
        raise BadUserInput("the cart needs a shipping address: the subscriptions deliver there",
                           field="shippingAddress")
    lines, fees, priced, subscriptions = [], [], [], []
    for item in items:
        if item.status != SubscriptionPlanStatus.ACTIVE or item.amount is None or item.trial_days > 0:
            raise BadUserInput(f"{item.name} is no longer offered as it was: take it out of the cart",
                               field="cartId")
        vendor = str(item.vendor_id) if item.vendor_id else None
        lines.append({"variant_id": str(item.variant_id), "product_id": str(item.product_id), "vendor_id": vendor,
                      "sku": item.sku, "title": f"{item.product_title} — {item.variant_title}",
                      "quantity": item.quantity, "list_unit_price": item.amount, "unit_price": item.amount})
        priced.append(PricedLine(item.variant_id, item.vendor_id, item.quantity, item.amount, item.amount))
        if item.setup_fee:
            fees.append({"code": SETUP_FEE, "variant_id": str(item.variant_id), "product_id": str(item.product_id),
                         "vendor_id": vendor, "sku": item.sku, "title": f"Setup fee — {item.name}",
                         "amount": item.setup_fee})
        subscriptions.append({"plan_id": str(item.plan_id), "quantity": item.quantity,
                              "amount": item.amount * item.quantity, "setup_fee": item.setup_fee})
    for fee in fees:
        priced.append(PricedLine(uuid.UUID(fee["variant_id"]), uuid.UUID(fee["vendor_id"]) if fee["vendor_id"]
                                 else None, 1, fee["amount"], fee["amount"]))
    rate, inclusive = await tax_rate_of(connection, cart)
    totals = cart_totals(priced, 0, rate, inclusive)
    return {
        "currency_code": cart.currency_code, "lines": lines, "fees": fees,
        "totals": {"subtotal": totals.subtotal, "discount_total": totals.discount_total, "shipping_total": 0,
                   "tax_total": totals.tax_total, "total": totals.total, "tax_inclusive": totals.tax_inclusive},
        "shipping_option": {"id": None, "code": SHIPPING_CODE}, "vendor_shipping": {},
        "shipping_address": cart.shipping_address, "subscriptions": subscriptions,
        "stripe_customer": stripe_customer, "save_card": True,
    }


async def subscriptions_from_checkout(connection: AsyncConnection, intent_id: str, payment_method: str | None,
                                      now: datetime, events: PendingEvents) -> int:
    """The subscriptions a settled checkout of plans starts (module docstring); how many were created now."""
    attempt = (await connection.execute(select(ATTEMPT).where(ATTEMPT.c.payment_intent_id == intent_id))).first()
    if attempt is None or attempt.status != "ordered" or not (attempt.snapshot or {}).get("subscriptions"):
        return 0
    snapshot = attempt.snapshot
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == attempt.order_id))).one()
    cart = (await connection.execute(select(CART).where(CART.c.id == attempt.cart_id))).one()
    wanted = snapshot["subscriptions"]
    shares = allocate(order.total, [int(item["amount"]) + int(item["setup_fee"]) for item in wanted])
    created = 0
    for item, share in zip(wanted, shares, strict=True):
        plan = (await connection.execute(select(PLAN).where(PLAN.c.id == uuid.UUID(item["plan_id"])))).one()
        start, end = rules.period_bounds(now, BillingInterval(plan.interval), plan.interval_count, 0)
        subscription = (await connection.execute(pg_insert(SUBSCRIPTION).values(
            tenant_id=order.tenant_id, id=subscription_id_for(order.id, plan.id), store_id=plan.store_id,
            plan_id=plan.id, vendor_id=plan.vendor_id, customer_id=cart.customer_id, email=cart.email,
            currency_code=order.currency_code, amount=int(item["amount"]), quantity=int(item["quantity"]),
            status=CustomerSubscriptionStatus.ACTIVE.value, anchor=now, periods_billed=1,
            current_period_start=start, current_period_end=end, stripe_customer_id=snapshot.get("stripe_customer"),
            stripe_payment_method_id=payment_method, first_payment_intent_id=intent_id, setup_fee=0,
            shipping_address=cart.shipping_address,
        ).on_conflict_do_nothing(index_elements=["tenant_id", "id"]).returning(*SUBSCRIPTION.c))).first()
        if subscription is None:
            continue  # settled before: created then
        cycle = (await connection.execute(pg_insert(CYCLE).values(
            tenant_id=order.tenant_id, id=uuid.uuid4(), subscription_id=subscription.id, period_index=0,
            period_start=start, period_end=end, amount=share, currency_code=order.currency_code,
            status=BillingCycleStatus.PAID.value, attempts=1, payment_intent_id=intent_id, order_id=order.id,
            cart_id=cart.id, charged_at=now).returning(*CYCLE.c))).one()
        await record_attempt(connection, cycle, "checkout", share, BillingAttemptOutcome.SUCCEEDED, intent_id)
        events.add(sub_event("subscription.started", subscription, subscription.status, cycle_id=str(cycle.id),
                             order_id=str(order.id)))
        created += 1
    return created
