"""A company buyer's cart order: placed at once (by card, or on account), or — above the buyer's spending limits or
an approval threshold — held in `pending_approval` through the same approval requests, rules and levels as quotes,
then paid once finally approved (by card: the PaymentIntent the buyer confirms; on account: atomic credit and an
invoice) or canceled when rejected.

Written down:
- A held order is the order's rows (split by vendor, lines) in pending_approval: no payment, no ledger entry, no
  ERPNext or Fleetbase message; its cart waits in awaiting_approval and no longer changes. Its stock is reserved
  for CITYOS_APPROVAL_HOLD_HOURS (the existing reservations, released by release-expired-reservations when the
  hold lapses); the final approval on account takes the units again if the hold lapsed (OUT_OF_STOCK refuses the
  approval, nothing changes), by card the buyer's checkout reserves them as any checkout does.
- Final approval, on account: the credit is taken atomically (CREDIT_LIMIT_EXCEEDED or CREDIT_HOLD refuse the
  approval; nothing changes) and the order is placed awaiting_payment with its invoice. By card: the order becomes
  pending; the buyer calls placeCompanyOrder again for the PaymentIntent, and the payment (completeCheckout or the
  webhook) places it paid through the one order path.
- Rejection: the order is canceled, its stock goes back on sale, the cart ends (completed, with its order).
- On account needs payment terms (not prepaid) and no overdue invoice (CREDIT_HOLD)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.b2b import rules
from cityos.domain.b2b.models import ApprovalStatus, CompanyStatus, InvoiceStatus, PaymentMethod, PaymentTerms
from cityos.domain.b2b.service import (
    APPROVAL_REQUEST,
    COMPANY,
    INVOICE,
    approval_needed,
    check_credit_hold,
    check_store,
    membership,
    take_credit,
)
from cityos.domain.commerce import service as carts
from cityos.domain.commerce.models import CartStatus
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.orders.models import OrderStatus
from cityos.domain.orders.service import (
    ACCOUNTING_TOPIC,
    ORDER,
    ORDER_LINE,
    VENDOR_ORDER,
    change_order_status,
    confirm_held_order,
    hold_order,
    new_order_of,
    place_order,
)
from cityos.domain.platform.outbox import enqueue
from cityos.errors import BadUserInput, Conflict, CreditLimitExceeded, Forbidden, InvalidStateTransition
from cityos.realtime.events import PendingEvents, b2b_event


@dataclass(frozen=True)
class Placement:
    """How the order goes on: the payment method, the order's settings (ledger, Fleetbase, ERPNext), the hold."""

    method: PaymentMethod
    now: datetime
    ledger_policy: LedgerPolicy
    ship: bool
    account: bool
    hold_minutes: int


@dataclass(frozen=True)
class Placed:
    """What placing a company cart did: the order (held, or on account) with its approval request or invoice; or
    nothing yet (`pay_by_card`: the cart, or the approved order, is paid through a card checkout)."""

    order: Row[Any] | None = None
    approval_request: Row[Any] | None = None
    invoice: Row[Any] | None = None
    pay_by_card: bool = False


async def _company_for(connection: AsyncConnection, cart: Row[Any], method: PaymentMethod) -> Row[Any]:
    company = (await connection.execute(select(COMPANY).where(COMPANY.c.id == cart.company_id))).one()
    if company.status != CompanyStatus.ACTIVE:
        raise InvalidStateTransition("the company is suspended", **{"from": company.status, "to": "ordered"})
    check_store(company, cart.store_id)
    if method is PaymentMethod.ON_ACCOUNT:
        if company.payment_terms == PaymentTerms.PREPAID:
            raise BadUserInput("a prepaid company pays by card", field="paymentMethod")
        await check_credit_hold(connection, company.id)
    return company


async def place_company_order(connection: AsyncConnection, cart_id: uuid.UUID, buyer_id: str, placement: Placement,
                              events: PendingEvents | None = None) -> Placed:
    """The company checkout of a cart (under its row lock): held for approval when the buyer's limits or the
    company's rules require it; otherwise on account at once, or by card (the caller starts the card checkout).
    Called again for a cart whose order was approved for card payment: pay_by_card."""
    cart = await carts.load_cart(connection, cart_id, lock=True)
    if cart.company_id is None or cart.customer_id != buyer_id:
        raise Forbidden("only the company buyer of this cart places its order")
    if cart.status == CartStatus.AWAITING_APPROVAL:
        order = (await connection.execute(select(ORDER).where(ORDER.c.id == cart.order_id))).one()
        if order.status == OrderStatus.PENDING and placement.method is PaymentMethod.CARD:
            return Placed(order=order, pay_by_card=True)
        raise InvalidStateTransition(f"this cart's order is {order.status}",
                                     **{"from": order.status, "to": "placed"})
    if cart.status != CartStatus.OPEN:
        raise Conflict("this cart was already ordered", field="cartId")
    buyer = await membership(connection, cart.company_id, buyer_id)
    if buyer is None:
        raise Forbidden("the cart's buyer is no longer a user of its company")
    company = await _company_for(connection, cart, placement.method)
    priced = await carts.priced_cart(connection, cart)
    problems = carts.checkout_problems(priced)
    if problems:
        raise BadUserInput("; ".join(message for _, message in problems), field=problems[0][0])
    snapshot = carts.checkout_snapshot(priced)
    goods = priced.totals.subtotal - priced.totals.discount_total
    reasons, levels = await approval_needed(connection, company.id, buyer, goods, placement.now)
    if not levels:
        if placement.method is PaymentMethod.CARD:
            return Placed(pay_by_card=True)
        order, invoice = await _on_account(connection, cart, snapshot, company, buyer_id, placement, events)
        return Placed(order=order, invoice=invoice)
    total = int(snapshot["totals"]["total"])
    available = rules.available_credit(company.credit_limit, company.credit_used)
    if placement.method is PaymentMethod.ON_ACCOUNT and total > available:  # now rather than at the approval
        raise CreditLimitExceeded(f"the order ({total}) is above the company's available credit ({available})",
                                  available=available, amount=total, currencyCode=company.currency_code)
    await carts.supersede_checkout(connection, cart, "the cart's order waits for approval")
    await carts.reserve_units(connection, cart, _units(snapshot), placement.hold_minutes)
    order = await hold_order(connection, new_order_of(cart, snapshot))
    await connection.execute(update(carts.CART).where(carts.CART.c.id == cart.id).values(
        status=CartStatus.AWAITING_APPROVAL.value, order_id=order.id, updated_at=func.now()))
    request = (await connection.execute(insert(APPROVAL_REQUEST).values(
        tenant_id=cart.tenant_id, id=uuid.uuid4(), company_id=company.id, order_id=order.id, buyer_id=buyer_id,
        amount=goods, currency_code=cart.currency_code, reasons=reasons, payment_method=placement.method.value,
        levels=[level.as_json() for level in levels], current_level=0, status=ApprovalStatus.PENDING.value)
        .returning(*APPROVAL_REQUEST.c))).one()
    _approval_event(events, request, "approval.requested")
    return Placed(order=order, approval_request=request)


def _units(snapshot: dict[str, Any]) -> list[tuple[uuid.UUID, int, str]]:
    return [(uuid.UUID(line["variant_id"]), int(line["quantity"]), line["sku"]) for line in snapshot["lines"]]


async def _on_account(connection: AsyncConnection, cart: Row[Any], snapshot: dict[str, Any], company: Row[Any],
                      buyer_id: str, placement: Placement, events: PendingEvents | None,
                      held: Row[Any] | None = None) -> tuple[Row[Any], Row[Any]]:
    """Place the cart's order (or its held order) on account: credit taken atomically, the units taken (again if
    the hold lapsed), the order awaiting_payment through the one order path, the invoice due by the terms."""
    terms = PaymentTerms(company.payment_terms)
    due = rules.due_date(placement.now, terms)
    total = int(snapshot["totals"]["total"])
    await take_credit(connection, company.id, total)
    await carts.supersede_checkout(connection, cart, "the cart was ordered on account")  # a card checkout begun
    await carts.reserve_units(connection, cart, _units(snapshot), 1)
    if held is None:
        order = await place_order(connection, new_order_of(cart, snapshot, status=OrderStatus.AWAITING_PAYMENT),
                                  placement.ledger_policy, events, ship=placement.ship, account=False)
    else:
        order = await confirm_held_order(connection, held, OrderStatus.AWAITING_PAYMENT, placement.ledger_policy,
                                         events, ship=placement.ship, account=False)
    await connection.execute(delete(carts.RESERVATION).where(carts.RESERVATION.c.cart_id == cart.id))
    await connection.execute(update(carts.CART).where(carts.CART.c.id == cart.id).values(
        status=CartStatus.COMPLETED.value, order_id=order.id, completed_at=func.now(), updated_at=func.now()))
    invoice = (await connection.execute(insert(INVOICE).values(
        tenant_id=cart.tenant_id, id=uuid.uuid4(), company_id=company.id, order_id=order.id, buyer_id=buyer_id,
        amount=total, currency_code=order.currency_code, payment_terms=terms.value, due_at=due,
        status=InvoiceStatus.OPEN.value).returning(*INVOICE.c))).one()
    if placement.account:  # after the invoice row: the message reads it (domain/accounting)
        await enqueue(connection, tenant_id=cart.tenant_id, topic=ACCOUNTING_TOPIC,
                      payload={"order_id": str(order.id)})
    return order, invoice


async def held_order_snapshot(connection: AsyncConnection, order_id: uuid.UUID) -> dict[str, Any]:
    """What the card checkout of an approved held order charges for, in checkout's snapshot shape: the order's own
    lines and totals (never the cart repriced). Only an approved order (pending) is paid."""
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id))).one()
    if order.status not in (OrderStatus.PENDING, OrderStatus.PENDING_APPROVAL):
        raise InvalidStateTransition(f"the order is {order.status}", **{"from": order.status, "to": "paid"})
    lines = (await connection.execute(select(ORDER_LINE).where(ORDER_LINE.c.order_id == order.id)
                                      .order_by(ORDER_LINE.c.sku, ORDER_LINE.c.id))).all()
    parts = (await connection.execute(select(VENDOR_ORDER.c.vendor_id, VENDOR_ORDER.c.shipping_total).where(
        VENDOR_ORDER.c.order_id == order.id))).all()
    return {"currency_code": order.currency_code,
            "lines": [{"variant_id": str(line.variant_id), "product_id": str(line.product_id),
                       "vendor_id": str(line.vendor_id) if line.vendor_id else None, "sku": line.sku,
                       "title": line.title, "quantity": line.quantity, "list_unit_price": line.list_unit_price,
                       "unit_price": line.unit_price} for line in lines],
            "totals": {"subtotal": order.subtotal, "discount_total": order.discount_total,
                       "shipping_total": order.shipping_total, "tax_total": order.tax_total, "total": order.total,
                       "tax_inclusive": order.tax_inclusive},
            "shipping_option": {"id": None, "code": order.shipping_option_code},
            "vendor_shipping": {str(part.vendor_id): part.shipping_total for part in parts if part.vendor_id},
            "shipping_address": order.shipping_address}


async def approval_decided(connection: AsyncConnection, request: Row[Any], placement: Placement,
                           events: PendingEvents | None = None) -> None:
    """The final decision on a held order's approval request (service.decide calls this under the request's lock):
    approved → paid on account now, or pending for the buyer's card payment; rejected → canceled, stock back. The
    payment method is the request's (chosen when the order was placed), not `placement.method`."""
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == request.order_id).with_for_update())).one()
    cart = await carts.load_cart(connection, order.cart_id, lock=True)
    if request.status == ApprovalStatus.REJECTED:
        await carts.return_reserved_units(connection, cart.id)
        await change_order_status(connection, order.id, OrderStatus.CANCELED.value, events)
        await connection.execute(update(carts.CART).where(carts.CART.c.id == cart.id).values(
            status=CartStatus.COMPLETED.value, completed_at=func.now(), updated_at=func.now()))
        return
    method = PaymentMethod(request.payment_method)
    if method is PaymentMethod.CARD:
        await change_order_status(connection, order.id, OrderStatus.PENDING.value, events)
        return
    company = await _company_for(connection, cart, method)
    snapshot = await held_order_snapshot(connection, order.id)
    await _on_account(connection, cart, snapshot, company, request.buyer_id, placement, events, held=order)


def _approval_event(events: PendingEvents | None, request: Row[Any], kind: str) -> None:
    if events is not None:
        events.add(b2b_event(kind, tenant_id=request.tenant_id, company_id=request.company_id, quote_id=None,
                             order_id=request.order_id, approval_request_id=request.id, buyer_id=request.buyer_id,
                             status=request.status, level=request.current_level))
