"""Turning a paid cart into an order split by vendor, exactly once; order status changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.config import Settings
from cityos.domain.base import table_of
from cityos.domain.commerce import rules
from cityos.domain.commerce.models import CartStatus, CheckoutAttempt, InventoryReservation
from cityos.domain.commerce.service import (
    CART,
    checkout_snapshot,
    load_cart,
    order_id_for,
    priced_cart,
    reserve_units,
    return_reserved_units,
    snapshot_fingerprint,
    snapshot_lines,
)
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.orders.models import Order, OrderLine, OrderLineKind, OrderStatus, VendorOrder
from cityos.domain.orders.sales import record_sales
from cityos.domain.platform.outbox import OUTBOX, enqueue
from cityos.domain.promotions import service as promotions
from cityos.errors import BadUserInput, NotFound, OutOfStock, PromotionExhausted
from cityos.realtime.events import PendingEvents, event

PAYMENT_REFUND_TOPIC = "stripe.refund_payment"  # a whole payment given back (no order came of it)
ACCOUNTING_TOPIC = "erpnext.sync_order"  # an order (paid, refunded) to mirror in ERPNext (domain/accounting)
ORDER = table_of(Order)
VENDOR_ORDER = table_of(VendorOrder)
ORDER_LINE = table_of(OrderLine)
RESERVATION = table_of(InventoryReservation)
ATTEMPT = table_of(CheckoutAttempt)


NOT_CURRENT = "this payment does not belong to the cart's current checkout (the cart changed after it started)"
SOLD_OUT = "the items sold out before the payment arrived (their reservation had expired)"
AMOUNT_MISMATCH = "the amount paid does not match the checkout it was for"
ALREADY_PAID = "the cart was already paid for by another payment"
PROMOTION_GONE = "a promotion of the checkout had no uses left when the payment arrived"


@dataclass(frozen=True)
class Settlement:
    """What a succeeded payment became: an order, or a refund (with its reason and the outbox message that makes
    it at Stripe; None when it was recorded before)."""

    order: Row[Any] | None = None
    refund_reason: str | None = None
    refund_message_id: uuid.UUID | None = None

    @property
    def outcome(self) -> str:
        if self.order is not None:
            return f"order {self.order.id}"
        return f"refused: {self.refund_reason}; the payment is refunded"


async def settle_payment(connection: AsyncConnection, *, cart_id: uuid.UUID, intent_id: str, amount_received: int,
                         currency: str, ledger_policy: LedgerPolicy, events: PendingEvents | None = None,
                         ship: bool = False, account: bool = False) -> Settlement:
    """Settle a succeeded PaymentIntent of a checkout, exactly once, into one of two recorded outcomes: the order
    built from the snapshot the customer paid for (amount checked against it), or a refund with its reason
    (the PaymentIntent belongs to a superseded checkout, the amount differs, or the stock sold out after the
    reservation expired). The cart row and then the attempt row are locked, so the webhook, its retries and
    completeCheckout racing each other settle once; the refund itself is sent through Stripe after commit."""
    cart = await load_cart(connection, cart_id, lock=True)
    attempt = (await connection.execute(select(ATTEMPT).where(ATTEMPT.c.payment_intent_id == intent_id)
                                        .with_for_update())).first()
    if attempt is None:
        attempt = await _untracked_attempt(connection, cart, intent_id, amount_received, currency)
    if attempt.cart_id != cart.id:
        raise BadUserInput("this payment belongs to another cart", field="paymentIntentId")
    if attempt.status == "ordered":
        return Settlement(order=(await connection.execute(select(ORDER).where(ORDER.c.id == attempt.order_id))).one())
    if attempt.status in ("refund_pending", "refunded"):  # decided before: the same refund, never a second one
        pending = (await connection.execute(select(OUTBOX.c.id).where(
            OUTBOX.c.topic == "stripe.refund_payment", OUTBOX.c.status == "pending",
            OUTBOX.c.payload["payment_intent_id"].astext == intent_id))).scalar()
        return Settlement(refund_reason=attempt.reason, refund_message_id=pending)
    reason = _refusal(cart, attempt, intent_id, amount_received, currency)
    if reason is None:
        try:
            async with connection.begin_nested():
                order = await _order_from_snapshot(connection, cart, attempt, intent_id, ledger_policy, events, ship,
                                                   account)
            return Settlement(order=order)
        except OutOfStock:
            reason = SOLD_OUT
        except PromotionExhausted as exhausted:
            reason = f"{PROMOTION_GONE}: {exhausted.message}"
    return await _refund(connection, cart, attempt, intent_id, reason)


async def complete_paid_order(connection: AsyncConnection, settings: Settings, *, cart_id: uuid.UUID, intent_id: str,
                              amount_received: int, currency: str,
                              events: PendingEvents | None = None) -> Settlement:
    """The one use case that completes a paid checkout, whoever learns of the payment first (the Stripe webhook or
    completeCheckout): settle_payment with the platform's ledger policy (commission and payout hold), and a
    shipment requested for every vendor order when delivery (Fleetbase) is configured."""
    return await settle_payment(connection, cart_id=cart_id, intent_id=intent_id, amount_received=amount_received,
                                currency=currency, ledger_policy=LedgerPolicy.of(settings), events=events,
                                ship=bool(settings.FLEETBASE_URL), account=bool(settings.ERPNEXT_URL))


def _refusal(cart: Row[Any], attempt: Row[Any], intent_id: str, amount_received: int, currency: str) -> str | None:
    if not attempt.snapshot:
        return NOT_CURRENT
    if currency.lower() != attempt.currency_code or amount_received != attempt.amount or \
            attempt.amount != attempt.snapshot.get("totals", {}).get("total"):
        return AMOUNT_MISMATCH
    if cart.status == "completed":
        return ALREADY_PAID
    if attempt.status != "pending" or cart.payment_intent_id != intent_id or cart.order_id is None:
        return NOT_CURRENT
    return None


async def _untracked_attempt(connection: AsyncConnection, cart: Row[Any], intent_id: str, amount_received: int,
                             currency: str) -> Row[Any]:
    """A payment with no attempt row: a checkout started before attempts were recorded (the cart's current
    PaymentIntent: its snapshot is the cart as it is), or an unknown PaymentIntent naming this cart (recorded
    with an empty snapshot, so it is refunded)."""
    snapshot: dict[str, Any] = {}
    if cart.status == "open" and cart.payment_intent_id == intent_id:
        snapshot = checkout_snapshot(await priced_cart(connection, cart))
    return (await connection.execute(insert(ATTEMPT).values(
        tenant_id=cart.tenant_id, id=uuid.uuid4(), cart_id=cart.id, store_id=cart.store_id,
        customer_id=cart.customer_id, payment_intent_id=intent_id, fingerprint=snapshot_fingerprint(snapshot),
        amount=amount_received, currency_code=currency.lower(), snapshot=snapshot, status="pending",
    ).returning(*ATTEMPT.c))).one()


def new_order_of(cart: Row[Any], snapshot: dict[str, Any], *, currency_code: str | None = None,
                 payment_intent_id: str | None = None, status: OrderStatus = OrderStatus.PAID) -> NewOrder:
    """The order a checkout snapshot (commerce.service) describes: its lines and fee lines (a subscription's setup
    fee: no stock, no shipment), totals, shipping, vendors' own shipping and promotions."""
    totals = rules.Totals(**{key: value for key, value in snapshot["totals"].items() if key != "total"})
    fees = [(rules.PricedLine(uuid.UUID(fee["variant_id"]), uuid.UUID(fee["vendor_id"]) if fee.get("vendor_id")
                              else None, 1, int(fee["amount"]), int(fee["amount"])),
             {**fee, "kind": OrderLineKind.FEE.value}) for fee in snapshot.get("fees") or ()]
    return NewOrder(
        cart=cart, order_id=order_id_for(cart), currency_code=currency_code or snapshot["currency_code"],
        lines=snapshot_lines(snapshot) + [line for line, _ in fees],
        items=snapshot["lines"] + [item for _, item in fees],
        totals=totals, payment_intent_id=payment_intent_id, shipping_address=snapshot["shipping_address"],
        shipping_option_code=snapshot["shipping_option"]["code"], access_token_hash=cart.access_token_hash,
        company_id=cart.company_id, vendor_shipping={uuid.UUID(vendor): int(amount) for vendor, amount
                                                     in (snapshot.get("vendor_shipping") or {}).items()},
        promotions=list(snapshot.get("promotions") or []), status=status)


async def _order_from_snapshot(connection: AsyncConnection, cart: Row[Any], attempt: Row[Any], intent_id: str,
                               ledger_policy: LedgerPolicy, events: PendingEvents | None, ship: bool,
                               account: bool = False) -> Row[Any]:
    snapshot = attempt.snapshot
    lines = snapshot_lines(snapshot)
    reserved = {row.variant_id: row.quantity for row in (await connection.execute(
        select(RESERVATION).where(RESERVATION.c.cart_id == cart.id))).all()}
    if reserved != {line.variant_id: line.quantity for line in lines}:
        # The reservation expired before the payment arrived: take the units now, if they are still there.
        await reserve_units(connection, cart, [(line.variant_id, line.quantity, item["sku"])
                                               for line, item in zip(lines, snapshot["lines"], strict=True)], 1)
    new = new_order_of(cart, snapshot, currency_code=attempt.currency_code, payment_intent_id=intent_id)
    order = await place_order(connection, new, ledger_policy, events, ship=ship, account=account)
    await connection.execute(delete(RESERVATION).where(RESERVATION.c.cart_id == cart.id))  # the units are sold
    await connection.execute(update(CART).where(CART.c.id == cart.id).values(
        status="completed", completed_at=func.now(), payment_error=None, updated_at=func.now()))
    await connection.execute(update(ATTEMPT).where(ATTEMPT.c.id == attempt.id).values(
        status="ordered", order_id=order.id, settled_at=func.now(), updated_at=func.now()))
    return order


async def _refund(connection: AsyncConnection, cart: Row[Any], attempt: Row[Any], intent_id: str,
                  reason: str) -> Settlement:
    await connection.execute(update(ATTEMPT).where(ATTEMPT.c.id == attempt.id).values(
        status="refund_pending", reason=reason, settled_at=func.now(), updated_at=func.now()))
    if cart.status == "open" and cart.payment_intent_id == intent_id:
        # The cart's own checkout could not become an order: it ends, its stock goes back, the buyer is told.
        await return_reserved_units(connection, cart.id)
        await connection.execute(update(CART).where(CART.c.id == cart.id).values(
            payment_intent_id=None, updated_at=func.now(),
            payment_error={"type": "refunded", "code": "payment_refunded", "decline_code": None,
                           "message": f"Your payment was refunded: {reason}."}))
    message_id = await enqueue(connection, tenant_id=cart.tenant_id, topic=PAYMENT_REFUND_TOPIC, payload={
        "payment_intent_id": intent_id, "attempt_id": str(attempt.id), "cart_id": str(cart.id), "reason": reason})
    return Settlement(refund_reason=reason, refund_message_id=message_id)


async def record_refund(connection: AsyncConnection, attempt_id: uuid.UUID, refund_id: str | None) -> None:
    await connection.execute(update(ATTEMPT).where(ATTEMPT.c.id == attempt_id).values(
        status="refunded", refund_id=refund_id, updated_at=func.now()))


async def record_canceled(connection: AsyncConnection, attempt_id: uuid.UUID) -> None:
    await connection.execute(update(ATTEMPT).where(ATTEMPT.c.id == attempt_id, ATTEMPT.c.status == "superseded")
                             .values(status="canceled", updated_at=func.now()))


async def request_accounting(connection: AsyncConnection, tenant_id: uuid.UUID, order_id: uuid.UUID) -> bool:
    """A refund of the order succeeded: if the order went to ERPNext, its sync again (the refund's credit note), unless
    one is already waiting. The order's `updated_at` moves too, so the sync-to-erpnext catch-up sees it."""
    await connection.execute(update(ORDER).where(ORDER.c.id == order_id).values(updated_at=func.now()))
    messages = OUTBOX.c.topic == ACCOUNTING_TOPIC, OUTBOX.c.payload["order_id"].astext == str(order_id)
    if not (await connection.execute(select(OUTBOX.c.id).where(*messages).limit(1))).first():
        return False  # never sent (ERPNext not configured, or not paid yet): the catch-up sends it all
    if (await connection.execute(select(OUTBOX.c.id).where(*messages, OUTBOX.c.status == "pending")
                                 .limit(1))).first():
        return False
    await enqueue(connection, tenant_id=tenant_id, topic=ACCOUNTING_TOPIC, payload={"order_id": str(order_id)})
    return True


async def change_order_status(connection: AsyncConnection, order_id: uuid.UUID, target: str,
                              events: PendingEvents | None = None) -> Row[Any]:
    """The order's status (and its vendor orders'). The money of a canceled or refunded paid order goes back
    through a refund first (orders/refunds.py: Stripe, the ledger's reversals, the restock), which moves the status
    here once everything is refunded. Its shipments are fulfillment's: fulfillment.service.update_order_status
    stops them."""
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id).with_for_update())).first()
    if order is None:
        raise NotFound("no order with that id")
    status = rules.next_order_status(order.status, target)
    if status == "refunded":
        await request_accounting(connection, order.tenant_id, order_id)
    if status == "canceled":  # its promotion uses count no more
        await promotions.release(connection, order_id)
    parts = (await connection.execute(update(VENDOR_ORDER).where(VENDOR_ORDER.c.order_id == order_id)
                                      .values(status=status, updated_at=func.now())
                                      .returning(VENDOR_ORDER.c.id, VENDOR_ORDER.c.vendor_id))).all()
    if events is not None:
        for part in parts:
            events.add(event("order.status_changed", tenant_id=order.tenant_id, store_id=order.store_id,
                             order_id=order.id, vendor_id=part.vendor_id, vendor_order_id=part.id,
                             customer_id=order.customer_id, status=status))
    return (await connection.execute(update(ORDER).where(ORDER.c.id == order_id)
                                     .values(status=status, updated_at=func.now()).returning(*ORDER.c))).one()


@dataclass(frozen=True)
class NewOrder:
    """What an order is made of, whoever sells it (a paid checkout's snapshot, an accepted B2B quote)."""

    cart: Row[Any]
    order_id: uuid.UUID
    currency_code: str
    lines: list[rules.PricedLine]
    items: list[dict[str, Any]]  # per line: product_id, sku, title, and kind ("fee": a fee line; default "item")
    totals: rules.Totals
    shipping_address: dict[str, Any]
    shipping_option_code: str
    payment_intent_id: str | None = None  # None: paid on account (a B2B invoice)
    access_token_hash: str | None = None
    company_id: uuid.UUID | None = None
    vendor_shipping: dict[uuid.UUID, int] = field(default_factory=dict)  # vendors shipping their own items
    promotions: list[dict[str, Any]] = field(default_factory=list)  # the snapshot's (commerce.promotion_snapshot)
    status: OrderStatus = OrderStatus.PAID  # AWAITING_PAYMENT: placed on account (a B2B invoice)


async def place_order(connection: AsyncConnection, new: NewOrder, ledger_policy: LedgerPolicy,
                      events: PendingEvents | None, *, ship: bool, account: bool) -> Row[Any]:
    """The one order path: the paid order split by vendor (largest remainder), its lines, the ledger's sales and
    commissions, the ERPNext and Fleetbase outbox messages, and order.created events after commit. A company
    order that waited for approval (hold_order) already has its rows: approved, it is confirmed here instead."""
    if new.cart.status == CartStatus.AWAITING_APPROVAL:  # approved, and now paid by card
        held = (await connection.execute(select(ORDER).where(ORDER.c.id == new.order_id).with_for_update())).one()
        return await confirm_held_order(connection, held, new.status, ledger_policy, events, ship=ship,
                                        account=account, payment_intent_id=new.payment_intent_id)
    order, vendor_order_ids = await _insert_order(connection, new, rules.next_order_status("pending", new.status))
    await _placed(connection, order, vendor_order_ids, ledger_policy, events, ship=ship, account=account)
    return order


async def hold_order(connection: AsyncConnection, new: NewOrder) -> Row[Any]:
    """A company buyer's order above their limits or an approval threshold: its rows (split by vendor, lines) in
    pending_approval, without payment, ledger, ERPNext or Fleetbase (confirm_held_order does those once
    approved)."""
    order, _ = await _insert_order(connection, new, OrderStatus.PENDING_APPROVAL)
    return order


async def confirm_held_order(connection: AsyncConnection, order: Row[Any], status: OrderStatus,
                             ledger_policy: LedgerPolicy, events: PendingEvents | None, *, ship: bool, account: bool,
                             payment_intent_id: str | None = None) -> Row[Any]:
    """A held order is placed: paid by card (pending → paid) or on account (pending_approval → awaiting_payment);
    then the ledger, the outbox messages and the events of any placed order."""
    target = rules.next_order_status(order.status, status)
    confirmed = (await connection.execute(update(ORDER).where(ORDER.c.id == order.id).values(
        status=target.value, payment_intent_id=payment_intent_id, updated_at=func.now())
        .returning(*ORDER.c))).one()
    parts = (await connection.execute(update(VENDOR_ORDER).where(VENDOR_ORDER.c.order_id == order.id).values(
        status=target.value, updated_at=func.now()).returning(VENDOR_ORDER.c.id, VENDOR_ORDER.c.vendor_id))).all()
    await _placed(connection, confirmed, {part.vendor_id: part.id for part in parts}, ledger_policy, events,
                  ship=ship, account=account)
    return confirmed


async def _insert_order(connection: AsyncConnection, new: NewOrder, status: OrderStatus,
                        ) -> tuple[Row[Any], dict[uuid.UUID | None, uuid.UUID]]:
    cart, totals, lines = new.cart, new.totals, new.lines
    order = (await connection.execute(insert(ORDER).values(
        tenant_id=cart.tenant_id, id=new.order_id, store_id=cart.store_id, cart_id=cart.id,
        customer_id=cart.customer_id, email=cart.email, currency_code=new.currency_code,
        status=status.value, subtotal=totals.subtotal,
        discount_total=totals.discount_total, shipping_total=totals.shipping_total, tax_total=totals.tax_total,
        total=totals.total, payment_intent_id=new.payment_intent_id, shipping_address=new.shipping_address,
        shipping_option_code=new.shipping_option_code, access_token_hash=new.access_token_hash,
        company_id=new.company_id, tax_inclusive=totals.tax_inclusive).returning(*ORDER.c))).one()
    parts = rules.split_by_vendor(lines, totals, new.vendor_shipping)
    vendor_order_ids: dict[uuid.UUID | None, uuid.UUID] = {}
    for vendor_id, part in parts.items():
        vendor_order_ids[vendor_id] = uuid.uuid4()
        await connection.execute(insert(VENDOR_ORDER).values(
            tenant_id=cart.tenant_id, id=vendor_order_ids[vendor_id], order_id=order.id, store_id=cart.store_id,
            vendor_id=vendor_id, status=order.status, subtotal=part.subtotal, discount_total=part.discount_total,
            shipping_total=part.shipping_total, tax_total=part.tax_total, total=part.total,
            tax_inclusive=part.tax_inclusive, own_shipping=vendor_id is not None and vendor_id in new.vendor_shipping))
    line_ids = [uuid.uuid4() for _ in lines]
    await connection.execute(insert(ORDER_LINE), [{
        "tenant_id": cart.tenant_id, "order_id": order.id,
        "vendor_order_id": vendor_order_ids[line.vendor_id], "variant_id": line.variant_id,
        "product_id": uuid.UUID(item["product_id"]), "vendor_id": line.vendor_id, "sku": item["sku"],
        "title": item["title"], "quantity": line.quantity, "list_unit_price": line.list_unit_price,
        "unit_price": line.unit_price, "subtotal": line.subtotal, "discount_total": line.discount,
        "total": line.total, "promotion_discount": line.promotion_discount,
        "promotion_vendor_funded": line.promotion_vendor_funded, "id": line_id,
        "kind": item.get("kind", OrderLineKind.ITEM.value)}
        for line, item, line_id in zip(lines, new.items, line_ids, strict=True)])
    if new.promotions:  # a use of each promotion (PROMOTION_EXHAUSTED when the last one went to another buyer)
        await promotions.redeem(
            connection, tenant_id=cart.tenant_id, order_id=order.id,
            key=promotions.customer_key(cart.customer_id, cart.email), currency_code=new.currency_code,
            order_total=totals.total, applied=new.promotions,
            lines=[promotions.OrderLineRef(line_id, vendor_order_ids[line.vendor_id], line.vendor_id)
                   for line, line_id in zip(lines, line_ids, strict=True)])
    return order, vendor_order_ids


async def _placed(connection: AsyncConnection, order: Row[Any], vendor_order_ids: dict[uuid.UUID | None, uuid.UUID],
                  ledger_policy: LedgerPolicy, events: PendingEvents | None, *, ship: bool, account: bool) -> None:
    await record_sales(connection, order.id, ledger_policy)  # the vendors' shares and the platform's commission
    if account:  # the invoice and payment in ERPNext, sent by the outbox dispatcher once this commits
        await enqueue(connection, tenant_id=order.tenant_id, topic=ACCOUNTING_TOPIC,
                      payload={"order_id": str(order.id)})
    for vendor_id, vendor_order_id in vendor_order_ids.items():
        if ship:  # a Fleetbase order per vendor order, sent by the outbox dispatcher once this commits
            await enqueue(connection, tenant_id=order.tenant_id, topic="fleetbase.create_order",
                          payload={"vendor_order_id": str(vendor_order_id)})
        if events is not None:
            events.add(event("order.created", tenant_id=order.tenant_id, store_id=order.store_id, order_id=order.id,
                             vendor_id=vendor_id, vendor_order_id=vendor_order_id, customer_id=order.customer_id,
                             status=order.status))
