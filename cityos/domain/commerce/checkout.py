"""The startCheckout use case: price the cart, get its PaymentIntent from the payment provider with no row
locked, then, under the cart's lock, check the cart is still what the PaymentIntent charges for, reserve its
stock and record the attempt. The provider is reached through the `PaymentGateway` port declared here (the
Stripe integration implements it); the domain imports no vendor SDK."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.db.request import RequestDatabase
from cityos.domain.commerce import service as carts
from cityos.errors import BadUserInput, Conflict


class PaymentIntent(Protocol):
    """What checkout needs of a payment provider's PaymentIntent."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def amount(self) -> int: ...

    @property
    def client_secret(self) -> str | None: ...


class PaymentGateway(Protocol):
    """The port to the payment provider (Stripe). Its errors are the platform's typed errors (UNAVAILABLE,
    PAYMENT_FAILED)."""

    async def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent: ...

    async def create_payment_intent(self, *, amount: int, currency: str, transfer_group: str,
                                    metadata: dict[str, str], idempotency_key: str, customer: str | None = None,
                                    save_card: bool = False) -> PaymentIntent:
        """`customer`, `save_card`: the card is saved to that customer for off-session charges (a snapshot's
        `stripe_customer` and `save_card`: a cart of subscriptions, billing/cart.py)."""
        ...


@dataclass(frozen=True)
class StartedCheckout:
    payment_intent_id: str
    client_secret: str
    amount: int  # minor units, as the provider has it
    currency_code: str
    order_id: uuid.UUID  # the id the order will have once the payment succeeds
    order_access_token: str


OPEN = frozenset({"open"})
Snapshot = Callable[[AsyncConnection, Row[Any]], Awaitable[dict[str, Any]]]


async def cart_snapshot(connection: AsyncConnection, cart: Row[Any]) -> dict[str, Any]:
    """What a cart's checkout charges for: the cart priced now (it must be ready: lines, email, address, option)."""
    priced = await carts.priced_cart(connection, cart)
    problems = carts.checkout_problems(priced)
    if problems:
        raise BadUserInput("; ".join(message for _, message in problems), field=problems[0][0])
    return carts.checkout_snapshot(priced)


async def start_checkout(db: RequestDatabase, cart: Row[Any], payments: PaymentGateway, *, cookie_secret: str,
                         reservation_minutes: int, snapshot_of: Snapshot = cart_snapshot,
                         payable: frozenset[str] = OPEN) -> StartedCheckout:
    """`snapshot_of`: what is charged for, from the cart (default: the cart as priced now; a B2B quote's checkout
    passes the accepted version's lines and prices, an approved company order its own). `payable`: the cart
    statuses it may be paid in (an approved company order's cart waits in awaiting_approval)."""
    if cart.status not in payable:
        raise BadUserInput("this cart is already checked out", field="cartId")
    # 1. Price the cart and get its PaymentIntent from Stripe before any row is locked (DESIGN.md §3).
    snapshot = await db.run(lambda connection: snapshot_of(connection, cart))
    total = int(snapshot["totals"]["total"])
    fingerprint = carts.snapshot_fingerprint(snapshot)
    current = await db.run(lambda connection: carts.current_attempt(connection, cart))
    intent: PaymentIntent | None = None
    if current is not None and current.fingerprint == fingerprint and current.status == "pending":
        intent = await payments.retrieve_payment_intent(current.payment_intent_id)
        if intent.status == "succeeded":
            raise BadUserInput("this checkout is paid: call completeCheckout", field="cartId")
        if intent.status == "canceled":
            intent = None
    if intent is None:
        sequence = await db.run(lambda connection: carts.attempt_count(connection, cart.id))
        order_id = carts.order_id_for(cart)
        intent = await payments.create_payment_intent(
            amount=total, currency=cart.currency_code, transfer_group=str(order_id),
            idempotency_key=carts.payment_idempotency_key(cart.id, fingerprint, sequence),
            metadata={"tenant_id": str(cart.tenant_id), "store_id": str(cart.store_id), "cart_id": str(cart.id),
                      "order_id": str(order_id)},
            customer=snapshot.get("stripe_customer"), save_card=bool(snapshot.get("save_card")))
    token = carts.order_access_token(cookie_secret, cart.tenant_id, cart.id)
    paid_intent = intent

    # 2. Under the cart's lock: the cart must still be what the PaymentIntent charges for; reserve its stock.
    async def work(connection: AsyncConnection) -> StartedCheckout:
        row = await carts.load_cart(connection, cart.id, lock=True)
        if row.status not in payable:
            raise BadUserInput("this cart is already checked out", field="cartId")
        if carts.snapshot_fingerprint(await snapshot_of(connection, row)) != fingerprint:
            raise Conflict("the cart changed while its checkout started; start the checkout again")
        order_id = carts.order_id_for(row)
        if row.payment_intent_id != paid_intent.id:
            await carts.supersede_checkout(connection, row, "a new checkout of the cart started")
            await connection.execute(insert(carts.ATTEMPT).values(
                tenant_id=row.tenant_id, id=uuid.uuid4(), cart_id=row.id, store_id=row.store_id,
                customer_id=row.customer_id, payment_intent_id=paid_intent.id, fingerprint=fingerprint,
                amount=paid_intent.amount, currency_code=row.currency_code, snapshot=snapshot,
                status="pending").on_conflict_do_nothing())
        await carts.reserve_units(connection, row, [(uuid.UUID(line["variant_id"]), int(line["quantity"]), line["sku"])
                                                    for line in snapshot["lines"]], reservation_minutes)
        await connection.execute(update(carts.CART).where(carts.CART.c.id == row.id).values(
            payment_intent_id=paid_intent.id, payment_error=None, order_id=order_id,
            access_token_hash=carts.access_token_hash(token), updated_at=func.now()))
        return StartedCheckout(payment_intent_id=paid_intent.id, client_secret=paid_intent.client_secret or "",
                               amount=paid_intent.amount, currency_code=row.currency_code, order_id=order_id,
                               order_access_token=token)

    return await db.mutate(work)
