"""Refunds that move money: the buyer's money back through Stripe, the commission ledger's reversals, the vendor's
share taken back from its transfer (or netted from its next payout), the restock.

Exactly once and never under a lock during a call out (DESIGN §3, §6), in steps:
1. `start_refund`, in a transaction of its own: lock the order row (two admins refunding at once queue here, so
   the second sees the first's refund), plan the refund (orders/rules.py: never more than captured minus the
   refunds not failed), write the refund `pending` with its lines and an outbox message. Commit.
2. The Stripe call (integrations/stripe/payments.py sends the message: `refunds.create` with idempotency key
   `refund-<id>`), nothing locked.
3. `refund_accepted` (Stripe took it): the ledger's reversals (marketplace/ledger.py), the restock per line,
   a transfer reversal per payout that already paid the refunded vendor share (outbox messages, sent like 2), and
   the order's status once everything is refunded. `refund_refused`: the refund `failed`, the ledger untouched.
4. Later, Stripe's events (`refund.updated`, `refund.failed`, `charge.refunded`) move the status; a refund that
   fails after it was accepted gets its reversals restored and its restock taken back out of stock (never below
   zero: units sold again meanwhile are recorded on the refund line and logged, `take_back_restock`). Replays
   change nothing (unique ledger keys, status guards, the webhook inbox).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog.models import Variant
from cityos.domain.commerce.rules import ORDER_TRANSITIONS
from cityos.domain.kernel import OrderStatus
from cityos.domain.marketplace import ledger
from cityos.domain.orders import rules
from cityos.domain.orders.models import (
    Order,
    OrderLine,
    OrderReturn,
    Refund,
    RefundLine,
    RefundStatus,
    RefundTransferReversal,
    VendorOrder,
)
from cityos.domain.orders.service import change_order_status, request_accounting
from cityos.domain.platform.outbox import enqueue
from cityos.errors import BadUserInput, NotFound
from cityos.realtime.events import PendingEvents, event

ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)
VENDOR_ORDER = table_of(VendorOrder)
REFUND = table_of(Refund)
REFUND_LINE = table_of(RefundLine)
REVERSAL = table_of(RefundTransferReversal)
RETURN = table_of(OrderReturn)
VARIANT = table_of(Variant)
REFUND_TOPIC = "stripe.refund_order"  # refunds.create for a refund row
REVERSAL_TOPIC = "stripe.reverse_transfer"  # transfers.reversals.create for a refund's paid-out vendor share
LIVE = ("pending", "succeeded", "requires_action")  # refund statuses that count against the refundable amount
NOTE_LENGTH = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefundRequest:
    lines: Sequence[rules.LineRequest]
    refund_shipping: bool = False
    reason: str = "requested_by_customer"
    note: str | None = None
    vendor_id: uuid.UUID | None = None  # a vendor's refund: only its own lines, never the shipping
    return_id: uuid.UUID | None = None
    order_status: str | None = None  # the status the order takes once fully refunded (default: refunded)
    everything: bool = False  # refund what is left (lines ignored): a cancellation or a whole refund


@dataclass(frozen=True)
class Started:
    refund: Row[Any]
    message_id: uuid.UUID


def _validated(request: RefundRequest) -> None:
    if request.reason not in rules.REFUND_REASONS:
        raise BadUserInput(f"reason must be one of {', '.join(rules.REFUND_REASONS)}", field="reason")
    if request.note is not None and len(request.note) > NOTE_LENGTH:
        raise BadUserInput(f"the note is longer than {NOTE_LENGTH} characters", field="note")
    if request.vendor_id is not None and request.refund_shipping:
        raise BadUserInput("a vendor refunds its own lines; the store refunds the shipping", field="refundShipping")


async def sold_lines(connection: AsyncConnection, order_id: uuid.UUID) -> list[rules.SoldLine]:
    """The order's lines with the units refunds (not failed) gave back already."""
    refunded = dict((await connection.execute(
        select(REFUND_LINE.c.order_line_id, func.sum(REFUND_LINE.c.quantity))
        .join(REFUND, (REFUND.c.tenant_id == REFUND_LINE.c.tenant_id) & (REFUND.c.id == REFUND_LINE.c.refund_id))
        .where(REFUND.c.order_id == order_id, REFUND.c.status.in_(LIVE))
        .group_by(REFUND_LINE.c.order_line_id))).all())
    rows = (await connection.execute(select(ORDER_LINE).where(ORDER_LINE.c.order_id == order_id)
                                     .order_by(ORDER_LINE.c.created_at, ORDER_LINE.c.id))).all()
    return [rules.SoldLine(row.id, row.vendor_id, row.quantity, row.total, int(refunded.get(row.id, 0)))
            for row in rows]


async def order_amounts(connection: AsyncConnection, order: Row[Any]) -> rules.OrderAmounts:
    refunded, shipping = (await connection.execute(select(
        func.coalesce(func.sum(REFUND.c.amount), 0), func.coalesce(func.sum(REFUND.c.shipping_amount), 0))
        .where(REFUND.c.order_id == order.id, REFUND.c.status.in_(LIVE)))).one()
    return rules.OrderAmounts(order.status, order.total, order.shipping_total, order.tax_total, int(refunded),
                              int(shipping) > 0, order.tax_inclusive)


async def start_refund(connection: AsyncConnection, order_id: uuid.UUID, request: RefundRequest,
                       requested_by: str) -> Started:
    """Step 1, in the caller's transaction, which must commit before the refund is sent (the outbox message)."""
    _validated(request)
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id).with_for_update())).first()
    if order is None:
        raise NotFound("no order with that id")
    rules.check_refundable(order.status)
    lines = await sold_lines(connection, order_id)
    amounts = await order_amounts(connection, order)
    requests, refund_shipping = list(request.lines), request.refund_shipping
    if request.everything:
        requests, refund_shipping = rules.everything_left(lines, amounts.shipping_refunded, order.shipping_total,
                                                          restock=request.order_status == "canceled")
    if request.vendor_id is not None:  # another vendor's line is not found, like another vendor's order
        lines = [line for line in lines if line.vendor_id == request.vendor_id]
    plan = rules.plan_refund(amounts, lines, requests, refund_shipping)
    vendors = {line.vendor_id for line in plan.lines}
    vendor_id = request.vendor_id or (vendors.pop() if len(vendors) == 1 and not plan.shipping_amount else None)
    refund = (await connection.execute(insert(REFUND).values(
        tenant_id=order.tenant_id, id=uuid.uuid4(), order_id=order.id, store_id=order.store_id,
        vendor_id=vendor_id, return_id=request.return_id, currency_code=order.currency_code,
        amount=plan.amount, shipping_amount=plan.shipping_amount, reason=request.reason, note=request.note,
        status=RefundStatus.PENDING.value, requested_by=requested_by[:200]).returning(*REFUND.c))).one()
    if plan.lines:
        await connection.execute(insert(REFUND_LINE), [{
            "tenant_id": order.tenant_id, "id": uuid.uuid4(), "refund_id": refund.id, "order_line_id": line.line_id,
            "first_unit": line.first_unit, "quantity": line.quantity, "amount": line.amount,
            "tax_amount": line.tax_amount, "restock": line.restock} for line in plan.lines])
    message_id = await enqueue(connection, tenant_id=order.tenant_id, topic=REFUND_TOPIC, payload={
        "refund_id": str(refund.id), "payment_intent_id": order.payment_intent_id, "amount": plan.amount,
        "reason": request.reason, "order_id": str(order.id), "order_status": request.order_status})
    return Started(refund, message_id)


async def _locked_refund(connection: AsyncConnection, refund_id: uuid.UUID) -> Row[Any] | None:
    return (await connection.execute(select(REFUND).where(REFUND.c.id == refund_id).with_for_update())).first()


async def refund_accepted(connection: AsyncConnection, refund_id: uuid.UUID, stripe_refund_id: str, status: str,
                          order_status: str | None, events: PendingEvents | None = None) -> list[uuid.UUID]:
    """Step 3: Stripe took the refund. Returns the outbox messages of the transfer reversals to send."""
    refund = await _locked_refund(connection, refund_id)
    if refund is None or refund.ledger_recorded:
        return []  # recorded before (a repeated send): nothing twice
    stripe_status = status if status in {item.value for item in RefundStatus} else RefundStatus.PENDING.value
    await connection.execute(update(REFUND).where(REFUND.c.id == refund.id).values(
        stripe_refund_id=stripe_refund_id, status=stripe_status, ledger_recorded=True, failure_reason=None,
        updated_at=func.now()))
    refunded = (await connection.execute(
        select(REFUND_LINE, ORDER_LINE.c.quantity.label("line_quantity"), ORDER_LINE.c.variant_id,
               ORDER_LINE.c.vendor_id)
        .join(ORDER_LINE, (ORDER_LINE.c.tenant_id == REFUND_LINE.c.tenant_id)
              & (ORDER_LINE.c.id == REFUND_LINE.c.order_line_id))
        .where(REFUND_LINE.c.refund_id == refund.id))).all()
    shares = await ledger.record_refund_reversals(connection, refund.id, [
        ledger.RefundedUnits(line.order_line_id, line.line_quantity, line.first_unit, line.quantity)
        for line in refunded if line.vendor_id is not None],
        shipping_of=refund.order_id if refund.shipping_amount > 0 else None)  # the vendors' own shipping
    for line in refunded:
        if line.restock:
            await connection.execute(update(VARIANT).where(VARIANT.c.id == line.variant_id).values(
                inventory_quantity=VARIANT.c.inventory_quantity + line.quantity))
    messages = []
    for share in shares:
        reversal_id = uuid.uuid4()
        await connection.execute(insert(REVERSAL).values(
            tenant_id=refund.tenant_id, id=reversal_id, refund_id=refund.id, vendor_id=share.vendor_id,
            payout_id=share.payout_id, stripe_transfer_id=share.transfer_id, amount=share.amount,
            currency_code=share.currency_code))
        messages.append(await enqueue(connection, tenant_id=refund.tenant_id, topic=REVERSAL_TOPIC, payload={
            "reversal_id": str(reversal_id), "refund_id": str(refund.id), "transfer_id": share.transfer_id,
            "amount": share.amount}))
    if stripe_status == RefundStatus.SUCCEEDED.value:  # its credit note in ERPNext
        await request_accounting(connection, refund.tenant_id, refund.order_id)
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == refund.order_id))).one()
    left = order.total - (await order_amounts(connection, order)).refunded
    if left == 0 and order.status in rules.REFUNDABLE_STATUSES:
        target = order_status or "refunded"
        if target not in ORDER_TRANSITIONS[OrderStatus(order.status)]:  # e.g. canceled once fulfilled
            target = "refunded"
        await change_order_status(connection, order.id, target, events)
    if refund.return_id is not None:  # the return it settles is refunded
        settled = (await connection.execute(update(RETURN).where(
            RETURN.c.id == refund.return_id, RETURN.c.status == "received").values(
            status="refunded", updated_at=func.now()).returning(*RETURN.c))).first()
        if settled is not None and events is not None:
            events.add(event("return.updated", tenant_id=settled.tenant_id, store_id=settled.store_id,
                             order_id=settled.order_id, vendor_id=settled.vendor_id, customer_id=settled.customer_id,
                             status=settled.status, return_id=str(settled.id)))
    if events is not None:
        events.add(event("refund.updated", tenant_id=refund.tenant_id, store_id=refund.store_id,
                         order_id=refund.order_id, vendor_id=refund.vendor_id, status=stripe_status,
                         refund_id=str(refund.id)))
    return messages


async def refund_refused(connection: AsyncConnection, refund_id: uuid.UUID, reason: str) -> None:
    """Stripe refused the refund (or gave up): `failed` with the reason; the ledger was never touched."""
    await connection.execute(update(REFUND).where(REFUND.c.id == refund_id, REFUND.c.ledger_recorded.is_(False))
                             .values(status=RefundStatus.FAILED.value, failure_reason=reason[:500],
                                     updated_at=func.now()))


async def reversal_done(connection: AsyncConnection, reversal_id: uuid.UUID, stripe_reversal_id: str) -> None:
    await connection.execute(update(REVERSAL).where(REVERSAL.c.id == reversal_id, REVERSAL.c.status == "pending")
                             .values(status="reversed", stripe_reversal_id=stripe_reversal_id, updated_at=func.now()))


async def reversal_refused(connection: AsyncConnection, reversal_id: uuid.UUID, reason: str) -> None:
    """The vendor's balance could not cover the reversal (or Stripe refused it): a debt the next payout nets."""
    reversal = (await connection.execute(select(REVERSAL).where(REVERSAL.c.id == reversal_id,
                                                                REVERSAL.c.status == "pending")
                                         .with_for_update())).first()
    if reversal is None:
        return
    await connection.execute(update(REVERSAL).where(REVERSAL.c.id == reversal_id).values(
        status="debt", failure_reason=reason[:500], updated_at=func.now()))
    await ledger.release_reversals(connection, reversal.refund_id, reversal.payout_id)


async def refund_changed(connection: AsyncConnection, stripe_refund_id: str, status: str,
                         failure_reason: str | None, events: PendingEvents | None = None) -> str:
    """A `refund.updated` / `refund.failed` event: the refund's Stripe status. One that fails (or is canceled)
    after it was accepted gets its ledger reversals restored; a final status never changes again."""
    refund = (await connection.execute(select(REFUND).where(REFUND.c.stripe_refund_id == stripe_refund_id)
                                       .with_for_update())).first()
    if refund is None:
        return "ignored: not a refund of ours"
    if refund.status in ("failed", "canceled") or refund.status == status:
        return f"ignored: refund already {refund.status}"
    if status not in {item.value for item in RefundStatus}:
        return f"ignored: unknown refund status {status}"
    await connection.execute(update(REFUND).where(REFUND.c.id == refund.id).values(
        status=status, failure_reason=(failure_reason or None) and failure_reason[:500], updated_at=func.now()))
    outcome = f"refund {status}"
    if status == RefundStatus.SUCCEEDED.value or (status in ("failed", "canceled") and refund.ledger_recorded):
        await request_accounting(connection, refund.tenant_id, refund.order_id)  # its credit note (or its cancel)
    if status in ("failed", "canceled") and refund.ledger_recorded:
        restored = await ledger.restore_reversals(connection, refund.id)
        outcome += f"; {restored} ledger reversal(s) restored"
        unstocked, shortfall = await take_back_restock(connection, refund.id)
        if unstocked or shortfall:
            outcome += f"; {unstocked} restocked unit(s) taken back"
        if shortfall:
            outcome += f", {shortfall} sold again meanwhile (recorded)"
    if events is not None:
        events.add(event("refund.updated", tenant_id=refund.tenant_id, store_id=refund.store_id,
                         order_id=refund.order_id, vendor_id=refund.vendor_id, status=status,
                         refund_id=str(refund.id)))
    return outcome


async def take_back_restock(connection: AsyncConnection, refund_id: uuid.UUID) -> tuple[int, int]:
    """A refund that restocked its units failed (or was canceled) after it was accepted: the units go out of
    stock again, as a sale takes them (stock never below zero; carts' reservations are already out of
    `inventory_quantity`, so they keep their units). Units sold again meanwhile cannot be taken back: each line
    records what it took back (`unstocked`) and what it could not (`unstock_shortfall`), logged for the store to
    reconcile. Once per refund line. Returns (taken back, short)."""
    lines = (await connection.execute(
        select(REFUND_LINE.c.id, REFUND_LINE.c.quantity, ORDER_LINE.c.variant_id, ORDER_LINE.c.sku)
        .join(ORDER_LINE, (ORDER_LINE.c.tenant_id == REFUND_LINE.c.tenant_id)
              & (ORDER_LINE.c.id == REFUND_LINE.c.order_line_id))
        .where(REFUND_LINE.c.refund_id == refund_id, REFUND_LINE.c.restock,
               REFUND_LINE.c.unstocked + REFUND_LINE.c.unstock_shortfall == 0)
        .order_by(ORDER_LINE.c.variant_id, REFUND_LINE.c.id))).all()  # one lock order, as reservations take
    taken_back = short = 0
    for line in lines:
        in_stock = (await connection.execute(select(VARIANT.c.inventory_quantity).where(
            VARIANT.c.id == line.variant_id).with_for_update())).scalar()
        take = min(line.quantity, max(int(in_stock or 0), 0))
        if take:
            await connection.execute(update(VARIANT).where(VARIANT.c.id == line.variant_id).values(
                inventory_quantity=VARIANT.c.inventory_quantity - take))
        await connection.execute(update(REFUND_LINE).where(REFUND_LINE.c.id == line.id).values(
            unstocked=take, unstock_shortfall=line.quantity - take, updated_at=func.now()))
        if take < line.quantity:
            log.warning("refund %s failed after restocking %s × %s: %s unit(s) were sold again meanwhile and "
                        "could not be taken back out of stock", refund_id, line.quantity, line.sku,
                        line.quantity - take)
        taken_back, short = taken_back + take, short + line.quantity - take
    return taken_back, short


async def charge_refunded(connection: AsyncConnection, payment_intent_id: str | None, amount_refunded: int) -> str:
    """A `charge.refunded` event: what Stripe has refunded of the order's charge in all. Our pending refunds it
    covers are succeeded; the ledger moved when each refund was accepted, so a replay reverses nothing again."""
    if not payment_intent_id:
        return "ignored: no payment intent"
    order = (await connection.execute(select(ORDER).where(ORDER.c.payment_intent_id == payment_intent_id))).first()
    if order is None:
        return "ignored: not an order of ours"
    refunds = (await connection.execute(select(REFUND).where(REFUND.c.order_id == order.id,
                                                              REFUND.c.status.in_(LIVE))
                                        .order_by(REFUND.c.created_at).with_for_update())).all()
    recorded = sum(refund.amount for refund in refunds)  # a refund Stripe took before we recorded it counts too
    if amount_refunded >= recorded:
        pending = [refund.id for refund in refunds if refund.status == "pending" and refund.stripe_refund_id]
        if pending:
            await connection.execute(update(REFUND).where(REFUND.c.id.in_(pending)).values(
                status="succeeded", updated_at=func.now()))
            await request_accounting(connection, order.tenant_id, order.id)  # their credit notes in ERPNext
        extra = amount_refunded - recorded
        return (f"{len(pending)} refund(s) succeeded" +
                (f"; {extra} refunded outside the platform (not in the ledger)" if extra else ""))
    return f"ignored: Stripe has refunded {amount_refunded} of the {recorded} recorded"
