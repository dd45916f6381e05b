"""Shipments: created through the carrier (Fleetbase) for a paid vendor order, moved forward by the carrier's
events with a tracking event each; live `shipment.updated` events published after commit.

The carrier is a port (`Carrier`): the integration implements it and the caller (the outbox dispatcher) passes it
in, so the domain knows no HTTP client.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.db.engines import set_tenant
from cityos.domain.base import table_of
from cityos.domain.fulfillment import rules, vendor_orders
from cityos.domain.fulfillment.models import Shipment, ShipmentStatus, TrackingEvent
from cityos.domain.marketplace.models import Vendor
from cityos.domain.orders.models import Order, OrderLine, VendorOrder
from cityos.domain.orders.service import change_order_status
from cityos.domain.platform.outbox import enqueue
from cityos.domain.tenancy.models import Store
from cityos.errors import BadUserInput
from cityos.realtime.events import PendingEvents, event

SHIPMENT = table_of(Shipment)
TRACKING = table_of(TrackingEvent)
VENDOR_ORDER = table_of(VendorOrder)
ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)
VENDOR = table_of(Vendor)
STORE = table_of(Store)
TRACKING_NUMBER_LENGTH = 100
CREATE_TOPIC = "fleetbase.create_order"
CANCEL_TOPIC = "fleetbase.cancel_order"


class CarrierOrder(Protocol):
    """The carrier's answer to a new order: its id there and the tracking number, when it gave one yet."""

    @property
    def id(self) -> str: ...

    @property
    def tracking_number(self) -> str | None: ...


class Carrier(Protocol):
    """The delivery service (implemented by integrations/fleetbase/client.py). Its errors are the caller's to
    retry: a failed call leaves no shipment."""

    async def create_order(self, order: dict[str, Any]) -> CarrierOrder: ...

    async def cancel_order(self, order_id: str) -> None: ...


def _place(address: dict[str, Any], name: str) -> dict[str, Any]:
    return {"name": name, "street1": address.get("address_1"), "street2": address.get("address_2"),
            "city": address.get("city"), "province": address.get("province"),
            "postal_code": address.get("postal_code"), "country": str(address.get("country_code", "")).upper(),
            "phone": address.get("phone")}


async def fleetbase_order_for(connection: AsyncConnection, vendor_order_id: uuid.UUID) -> dict[str, Any]:
    """The Fleetbase order of a vendor order: pickup at the vendor (or the store), dropoff at the customer."""
    part = (await connection.execute(select(VENDOR_ORDER).where(VENDOR_ORDER.c.id == vendor_order_id))).one()
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == part.order_id))).one()
    store = (await connection.execute(select(STORE).where(STORE.c.id == part.store_id))).one()
    vendor = None
    if part.vendor_id is not None:
        vendor = (await connection.execute(select(VENDOR).where(VENDOR.c.id == part.vendor_id))).one()
    lines = (await connection.execute(select(ORDER_LINE).where(ORDER_LINE.c.vendor_order_id == part.id))).all()
    pickup: dict[str, Any] | str
    if vendor is not None and vendor.pickup_address:
        pickup = _place(vendor.pickup_address, vendor.name)
    else:
        pickup = {"name": vendor.name if vendor is not None else store.name}
    address = order.shipping_address
    return {
        "type": "transport", "dispatch": True, "internal_id": str(part.id),
        "payload": {
            "pickup": pickup,
            "dropoff": _place(address, f"{address.get('first_name', '')} {address.get('last_name', '')}".strip()),
            "entities": [{"name": line.title, "sku": line.sku, "internal_id": str(line.id),
                          "price": line.total, "currency": order.currency_code.upper(),
                          "meta": {"quantity": line.quantity}} for line in lines],
        },
        "customer": {"name": f"{address.get('first_name', '')} {address.get('last_name', '')}".strip(),
                     "email": order.email, "phone": address.get("phone")},
        "meta": {"tenant_id": str(part.tenant_id), "order_id": str(order.id), "vendor_order_id": str(part.id)},
    }


async def create_shipment(connection: AsyncConnection, carrier: Carrier, vendor_order_id: uuid.UUID,
                          events: PendingEvents) -> None:
    """The shipment of a vendor order, ordered from the carrier; one per vendor order (a repeated request after
    a crash that followed the call finds it and does nothing)."""
    existing = (await connection.execute(select(SHIPMENT.c.id).where(
        SHIPMENT.c.vendor_order_id == vendor_order_id))).first()
    if existing is not None:
        return  # sent before (a crash after the call): one shipment per vendor order
    created = await carrier.create_order(await fleetbase_order_for(connection, vendor_order_id))
    part = (await connection.execute(select(VENDOR_ORDER).where(VENDOR_ORDER.c.id == vendor_order_id))).one()
    order = (await connection.execute(select(ORDER.c.customer_id).where(ORDER.c.id == part.order_id))).one()
    shipment_id = uuid.uuid4()
    await connection.execute(insert(SHIPMENT).values(
        tenant_id=part.tenant_id, id=shipment_id, vendor_order_id=part.id, order_id=part.order_id,
        store_id=part.store_id, vendor_id=part.vendor_id, customer_id=order.customer_id, status="created",
        fleetbase_order_id=created.id, tracking_number=created.tracking_number))
    await connection.execute(update(VENDOR_ORDER).where(VENDOR_ORDER.c.id == part.id).values(
        carrier=func.coalesce(VENDOR_ORDER.c.carrier, vendor_orders.FLEETBASE),
        tracking_number=func.coalesce(VENDOR_ORDER.c.tracking_number, created.tracking_number)))
    events.add(event("shipment.updated", tenant_id=part.tenant_id, store_id=part.store_id, order_id=part.order_id,
                     vendor_id=part.vendor_id, vendor_order_id=part.id, shipment_id=shipment_id,
                     customer_id=order.customer_id, status="created", tracking_number=created.tracking_number))


async def cancel_shipment(carrier: Carrier, fleetbase_order_id: str) -> None:
    await carrier.cancel_order(fleetbase_order_id)


async def update_order_status(connection: AsyncConnection, order_id: uuid.UUID, target: str,
                              events: PendingEvents | None = None) -> Row[Any]:
    """An order's status change (orders.service.change_order_status); a canceled order's couriers are stopped too
    (a Fleetbase cancellation per shipment, sent by the outbox dispatcher once this commits)."""
    order = await change_order_status(connection, order_id, target, events)
    if order.status == "canceled":
        for shipment in (await connection.execute(select(SHIPMENT.c.fleetbase_order_id).where(
                SHIPMENT.c.order_id == order_id, SHIPMENT.c.fleetbase_order_id.is_not(None)))).all():
            await enqueue(connection, tenant_id=order.tenant_id, topic=CANCEL_TOPIC,
                          payload={"fleetbase_order_id": shipment.fleetbase_order_id})
    return order


async def shipment_of_fleetbase_order(connection: AsyncConnection, fleetbase_order_id: str) -> Row[Any] | None:
    """(tenant_id, shipment_id) of a Fleetbase order of ours, whatever the tenant of the transaction."""
    return (await connection.execute(text("select tenant_id, shipment_id from cityos_shipment_by_fleetbase_order(:o)"),
                                     {"o": fleetbase_order_id})).first()


async def tenant_of_fleetbase_order(connection: AsyncConnection, fleetbase_order_id: str) -> uuid.UUID | None:
    found = await shipment_of_fleetbase_order(connection, fleetbase_order_id)
    return None if found is None else uuid.UUID(str(found.tenant_id))


def _tracking_number(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and len(value) <= TRACKING_NUMBER_LENGTH):
        return value
    raise BadUserInput(f"the tracking number is not a text of at most {TRACKING_NUMBER_LENGTH} characters",
                       field="tracking_number")


async def track_shipment(connection: AsyncConnection, *, fleetbase_order_id: str, status: ShipmentStatus | None,
                         source_event: str, occurred_at: datetime, location: dict[str, Any] | None,
                         tracking_number: Any, events: PendingEvents) -> str:
    """A carrier event about one of our shipments: the shipment moves forward to `status` (never backwards: a late
    or reordered event changes nothing), takes the tracking number when it had none (refused, BAD_USER_INPUT, when
    that number is not storable), and gains a tracking event; names the shipment's tenant in the transaction."""
    if status is None:
        return "ignored: not a shipment status"
    found = await shipment_of_fleetbase_order(connection, fleetbase_order_id)
    if found is None:
        return "ignored: unknown Fleetbase order"
    await set_tenant(connection, found.tenant_id)
    shipment = (await connection.execute(select(SHIPMENT).where(SHIPMENT.c.id == found.shipment_id)
                                         .with_for_update())).one()
    if not rules.moves_forward(shipment.status, status):
        return f"ignored: shipment already {shipment.status}"
    tracking_number = shipment.tracking_number or _tracking_number(tracking_number)
    await connection.execute(update(SHIPMENT).where(SHIPMENT.c.id == shipment.id).values(
        status=status, tracking_number=tracking_number, updated_at=func.now()))
    await connection.execute(insert(TRACKING).values(
        tenant_id=shipment.tenant_id, id=uuid.uuid4(), shipment_id=shipment.id, status=status,
        source_event=source_event, occurred_at=occurred_at, location=location))
    await vendor_orders.follow_shipment(connection, shipment.vendor_order_id, status, tracking_number, events)
    events.add(event("shipment.updated", tenant_id=shipment.tenant_id, store_id=shipment.store_id,
                     order_id=shipment.order_id, vendor_id=shipment.vendor_id,
                     vendor_order_id=shipment.vendor_order_id, shipment_id=shipment.id,
                     customer_id=shipment.customer_id, status=status, tracking_number=tracking_number,
                     location=location))
    return f"shipment {status}"
