"""Vendors fulfil their own part of an order: they move it processing → ready → shipped (with the carrier and a
tracking number) → delivered, or hand it to Fleetbase, whose pickup is the vendor's pickup address; the order's
fulfilment is derived from its vendor orders (fulfillment/rules.py) in the same transaction, and a paid order whose
every part shipped becomes fulfilled. Live `order.fulfillment_changed` events go out after commit."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.fulfillment import rules
from cityos.domain.fulfillment.models import Shipment
from cityos.domain.marketplace.models import Vendor
from cityos.domain.orders.models import Order, OrderFulfillment, VendorFulfillment, VendorOrder
from cityos.domain.orders.service import change_order_status
from cityos.domain.platform.outbox import OUTBOX, enqueue
from cityos.errors import BadUserInput, NotFound
from cityos.realtime.events import PendingEvents, event

ORDER = table_of(Order)
VENDOR_ORDER = table_of(VendorOrder)
VENDOR = table_of(Vendor)
SHIPMENT = table_of(Shipment)
CREATE_TOPIC = "fleetbase.create_order"
FLEETBASE = "fleetbase"


async def _locked(connection: AsyncConnection, vendor_order_id: uuid.UUID) -> tuple[Row[Any], Row[Any]]:
    """The order, then the vendor order, locked in that order (every writer of an order's parts takes the order's
    lock first, so two vendors finishing at once derive the order's fulfilment one after the other)."""
    order_id = (await connection.execute(select(VENDOR_ORDER.c.order_id)
                                         .where(VENDOR_ORDER.c.id == vendor_order_id))).scalar()
    if order_id is None:
        raise NotFound("no vendor order with that id")
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id).with_for_update())).one()
    part = (await connection.execute(select(VENDOR_ORDER).where(VENDOR_ORDER.c.id == vendor_order_id)
                                     .with_for_update())).one()
    return order, part


async def _move(connection: AsyncConnection, order: Row[Any], part: Row[Any], target: VendorFulfillment, *,
                tracking_number: str | None, carrier: str | None, events: PendingEvents | None) -> Row[Any]:
    values: dict[str, Any] = {"fulfillment_status": target.value, "updated_at": func.now()}
    if tracking_number:
        values["tracking_number"] = tracking_number
    if carrier:
        values["carrier"] = carrier
    if target is VendorFulfillment.SHIPPED:
        values["shipped_at"] = func.now()
    if target is VendorFulfillment.DELIVERED:
        values["delivered_at"] = func.now()
        values["shipped_at"] = func.coalesce(VENDOR_ORDER.c.shipped_at, func.now())
    moved = (await connection.execute(update(VENDOR_ORDER).where(VENDOR_ORDER.c.id == part.id).values(**values)
                                      .returning(*VENDOR_ORDER.c))).one()
    parts = (await connection.execute(select(VENDOR_ORDER.c.fulfillment_status)
                                      .where(VENDOR_ORDER.c.order_id == order.id))).scalars().all()
    derived = rules.order_fulfillment(parts)
    await connection.execute(update(ORDER).where(ORDER.c.id == order.id)
                             .values(fulfillment_status=derived.value, updated_at=func.now()))
    status = order.status
    if derived in (OrderFulfillment.SHIPPED, OrderFulfillment.PARTIALLY_DELIVERED, OrderFulfillment.DELIVERED) \
            and order.status == "paid":  # every part handed over: the order is fulfilled
        status = (await change_order_status(connection, order.id, "fulfilled", events)).status
    if events is not None:
        events.add(event("order.fulfillment_changed", tenant_id=order.tenant_id, store_id=order.store_id,
                         order_id=order.id, vendor_id=part.vendor_id, vendor_order_id=part.id,
                         customer_id=order.customer_id, status=status, fulfillment_status=target.value,
                         order_fulfillment_status=derived.value, tracking_number=moved.tracking_number))
    return moved


def _tracking(value: str | None, field: str) -> str | None:
    text = value.strip() if value else None
    if text and len(text) > 100:
        raise BadUserInput(f"{field} is longer than 100 characters", field=field)
    return text or None


async def advance(connection: AsyncConnection, vendor_order_id: uuid.UUID, target: str, *,
                  tracking_number: str | None = None, carrier: str | None = None,
                  events: PendingEvents | None = None) -> Row[Any]:
    """A vendor (or the store) moves a vendor order forward (rules.next_vendor_fulfillment)."""
    tracking_number, carrier = _tracking(tracking_number, "trackingNumber"), _tracking(carrier, "carrier")
    order, part = await _locked(connection, vendor_order_id)
    wanted = rules.next_vendor_fulfillment(part.status, part.fulfillment_status, target,
                                           tracking_number or part.tracking_number, carrier or part.carrier)
    return await _move(connection, order, part, wanted, tracking_number=tracking_number, carrier=carrier,
                       events=events)


async def request_pickup(connection: AsyncConnection, vendor_order_id: uuid.UUID,
                         events: PendingEvents | None = None) -> Row[Any]:
    """Hand a vendor order to Fleetbase: it is ready, and its courier order (pickup at the vendor's pickup address)
    is sent by the outbox dispatcher once this commits, unless one was already sent or queued (a store with
    Fleetbase configured queues one for every paid vendor order): one courier order per vendor order."""
    order, part = await _locked(connection, vendor_order_id)
    if part.vendor_id is not None:
        pickup = (await connection.execute(select(VENDOR.c.pickup_address)
                                           .where(VENDOR.c.id == part.vendor_id))).scalar()
        if not pickup:
            raise BadUserInput("set the vendor's pickup address first (setVendorPickupAddress)", field="id")
    if rules.VENDOR_RANK[VendorFulfillment(part.fulfillment_status)] >= rules.VENDOR_RANK[VendorFulfillment.READY]:
        raise BadUserInput(f"this vendor order is already {part.fulfillment_status}", field="id")
    target = rules.next_vendor_fulfillment(part.status, part.fulfillment_status, VendorFulfillment.READY.value,
                                           None, None)
    shipped = (await connection.execute(select(SHIPMENT.c.id).where(SHIPMENT.c.vendor_order_id == part.id))).first()
    queued = (await connection.execute(select(OUTBOX.c.id).where(
        OUTBOX.c.topic == CREATE_TOPIC, OUTBOX.c.payload["vendor_order_id"].astext == str(part.id)))).first()
    if shipped is None and queued is None:
        await enqueue(connection, tenant_id=part.tenant_id, topic=CREATE_TOPIC,
                      payload={"vendor_order_id": str(part.id)})
    return await _move(connection, order, part, target, tracking_number=None, carrier=FLEETBASE, events=events)


async def follow_shipment(connection: AsyncConnection, vendor_order_id: uuid.UUID, shipment_status: str,
                          tracking_number: str | None, events: PendingEvents | None) -> None:
    """A Fleetbase shipment moved: a picked-up or travelling parcel is shipped, a delivered one delivered; the
    vendor order only moves forward (and only while its order is paid)."""
    target = rules.SHIPMENT_FULFILLMENT.get(shipment_status)  # type: ignore[call-overload]
    if target is None:
        return
    order, part = await _locked(connection, vendor_order_id)
    if part.status not in rules.FULFILLABLE_ORDER_STATUSES or \
            rules.VENDOR_RANK[target] <= rules.VENDOR_RANK[VendorFulfillment(part.fulfillment_status)]:
        return
    await _move(connection, order, part, target, tracking_number=None if part.tracking_number else tracking_number,
                carrier=part.carrier or FLEETBASE, events=events)


async def set_pickup_address(connection: AsyncConnection, vendor_id: uuid.UUID, address: dict[str, Any]) -> Row[Any]:
    """The vendor's pickup address, validated (rules.validate_pickup_address); Fleetbase collects there."""
    cleaned = rules.validate_pickup_address(address)
    row = (await connection.execute(update(VENDOR).where(VENDOR.c.id == vendor_id)
                                    .values(pickup_address=cleaned, updated_at=func.now())
                                    .returning(*VENDOR.c))).first()
    if row is None:
        raise NotFound("no vendor with that id")
    return row
