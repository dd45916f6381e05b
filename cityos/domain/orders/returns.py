"""Returns: a buyer (or an admin for them) asks to return delivered lines with a reason, within the store's
return window; the store (or the vendor whose lines they all are) approves or rejects; receiving the items
restocks them or not, per line, and starts the refund of those units (orders/refunds.py) in the same transaction.
Live `return.updated` events go to the order's, store's and vendor's channels after commit."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.orders import refunds, rules
from cityos.domain.orders.models import (
    Order,
    OrderLine,
    OrderLineKind,
    OrderReturn,
    ReturnLine,
    VendorFulfillment,
    VendorOrder,
)
from cityos.domain.tenancy.models import Store
from cityos.errors import BadUserInput, InvalidStateTransition, NotFound
from cityos.realtime.events import PendingEvents, event

ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)
VENDOR_ORDER = table_of(VendorOrder)
RETURN = table_of(OrderReturn)
RETURN_LINE = table_of(ReturnLine)
STORE = table_of(Store)
OPEN = ("requested", "approved", "received")
REASON_LENGTH = 500
DELIVERED_PARTS = ("fulfilled", "completed")


def _announce(events: PendingEvents | None, row: Row[Any]) -> None:
    if events is not None:
        events.add(event("return.updated", tenant_id=row.tenant_id, store_id=row.store_id, order_id=row.order_id,
                         vendor_id=row.vendor_id, customer_id=row.customer_id, status=row.status,
                         return_id=str(row.id)))


DeliveredAt = Callable[[AsyncConnection, set[uuid.UUID]], Awaitable[dict[uuid.UUID, datetime]]]


async def fulfilled_at(connection: AsyncConnection, vendor_order_ids: set[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """When each vendor order was delivered (its vendor marked it delivered, or Fleetbase did) or marked fulfilled
    (or completed), as far as the orders context knows; the fulfillment context adds its shipments' deliveries
    (fulfillment.service.delivered_at)."""
    return {part.id: part.at for part in (await connection.execute(
        select(VENDOR_ORDER.c.id, func.coalesce(VENDOR_ORDER.c.delivered_at, VENDOR_ORDER.c.updated_at).label("at"))
        .where(VENDOR_ORDER.c.id.in_(vendor_order_ids),
               or_(VENDOR_ORDER.c.status.in_(DELIVERED_PARTS),
                   VENDOR_ORDER.c.fulfillment_status == VendorFulfillment.DELIVERED.value)))).all()}


async def request_return(connection: AsyncConnection, order_id: uuid.UUID, lines: Sequence[tuple[uuid.UUID, int]],
                         reason: str, requested_by: str, events: PendingEvents | None = None,
                         delivered_at: DeliveredAt = fulfilled_at) -> Row[Any]:
    """A return of units of delivered lines (delivered_at: when each vendor order was delivered), inside the
    store's return window, of units neither refunded nor in another open return."""
    reason = reason.strip()
    if not reason or len(reason) > REASON_LENGTH:
        raise BadUserInput(f"give a reason of 1 to {REASON_LENGTH} characters", field="reason")
    if not lines:
        raise BadUserInput("name the lines to return", field="lines")
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id).with_for_update())).first()
    if order is None:
        raise NotFound("no order with that id")
    if order.status not in rules.REFUNDABLE_STATUSES:
        raise InvalidStateTransition(f"an order that is {order.status} cannot be returned",
                                     **{"from": order.status, "to": "returned"})
    window = (await connection.execute(select(STORE.c.return_window_days).where(STORE.c.id == order.store_id))
              ).scalar_one()
    sold = {line.id: line for line in await refunds.sold_lines(connection, order_id)}
    rows = {row.id: row for row in (await connection.execute(select(ORDER_LINE).where(
        ORDER_LINE.c.order_id == order_id))).all()}
    asked = dict((await connection.execute(
        select(RETURN_LINE.c.order_line_id, func.sum(RETURN_LINE.c.quantity))
        .join(RETURN, (RETURN.c.tenant_id == RETURN_LINE.c.tenant_id) & (RETURN.c.id == RETURN_LINE.c.return_id))
        .where(RETURN.c.order_id == order_id, RETURN.c.status.in_(OPEN)).group_by(RETURN_LINE.c.order_line_id)
    )).all())
    delivered = await delivered_at(connection, {row.vendor_order_id for row in rows.values()})
    now = (await connection.execute(select(func.now()))).scalar_one()
    seen: set[uuid.UUID] = set()
    for index, (line_id, quantity) in enumerate(lines):
        line = sold.get(line_id)
        if line is None or line_id in seen:
            raise BadUserInput("no such line in this order (or named twice)", field=f"lines.{index}.lineId")
        seen.add(line_id)
        if rows[line_id].kind == OrderLineKind.FEE:
            raise BadUserInput("a fee (a subscription's setup fee) ships nothing to return: ask the store for a "
                               "refund", field=f"lines.{index}.lineId")
        if not rules.within_return_window(delivered.get(rows[line_id].vendor_order_id), now, window):
            raise BadUserInput(f"this line was not delivered, or its {window}-day return window has closed",
                               field=f"lines.{index}.lineId")
        left = line.quantity - line.refunded_units - int(asked.get(line_id, 0))
        if quantity < 1 or quantity > left:
            raise BadUserInput(f"{left} unit(s) of this line can be returned", field=f"lines.{index}.quantity")
    vendors = {rows[line_id].vendor_id for line_id, _ in lines}
    row = (await connection.execute(insert(RETURN).values(
        tenant_id=order.tenant_id, id=uuid.uuid4(), order_id=order.id, store_id=order.store_id,
        vendor_id=vendors.pop() if len(vendors) == 1 else None, customer_id=order.customer_id, status="requested",
        reason=reason, requested_by=requested_by[:200]).returning(*RETURN.c))).one()
    await connection.execute(insert(RETURN_LINE), [{
        "tenant_id": order.tenant_id, "id": uuid.uuid4(), "return_id": row.id, "order_line_id": line_id,
        "quantity": quantity} for line_id, quantity in lines])
    _announce(events, row)
    return row


async def _locked(connection: AsyncConnection, return_id: uuid.UUID) -> Row[Any]:
    row = (await connection.execute(select(RETURN).where(RETURN.c.id == return_id).with_for_update())).first()
    if row is None:
        raise NotFound("no return with that id")
    return row


async def decide_return(connection: AsyncConnection, return_id: uuid.UUID, approve: bool, note: str | None,
                        events: PendingEvents | None = None) -> Row[Any]:
    if note is not None and len(note) > REASON_LENGTH:
        raise BadUserInput(f"the note is longer than {REASON_LENGTH} characters", field="note")
    row = await _locked(connection, return_id)
    status = rules.next_return_status(row.status, "approved" if approve else "rejected")
    updated = (await connection.execute(update(RETURN).where(RETURN.c.id == return_id).values(
        status=status, decision_note=note, updated_at=func.now()).returning(*RETURN.c))).one()
    _announce(events, updated)
    return updated


async def receive_return(connection: AsyncConnection, return_id: uuid.UUID, restock: Mapping[uuid.UUID, bool],
                         requested_by: str, events: PendingEvents | None = None) -> refunds.Started:
    """The items arrived: restocked or not per line (default: restocked), and the refund of those units started
    (sent once this transaction commits)."""
    row = await _locked(connection, return_id)
    rules.next_return_status(row.status, "received")
    lines = (await connection.execute(select(RETURN_LINE).where(RETURN_LINE.c.return_id == return_id))).all()
    unknown = set(restock) - {line.order_line_id for line in lines}
    if unknown:
        raise BadUserInput("a line that is not part of this return", field="lines")
    for line in lines:
        await connection.execute(update(RETURN_LINE).where(RETURN_LINE.c.id == line.id).values(
            restock=restock.get(line.order_line_id, True), updated_at=func.now()))
    started = await refunds.start_refund(connection, row.order_id, refunds.RefundRequest(
        lines=[rules.LineRequest(line.order_line_id, line.quantity, restock.get(line.order_line_id, True))
               for line in lines], vendor_id=None, return_id=row.id), requested_by)
    updated = (await connection.execute(update(RETURN).where(RETURN.c.id == return_id).values(
        status="received", refund_id=started.refund.id, updated_at=func.now()).returning(*RETURN.c))).one()
    _announce(events, updated)
    return started
