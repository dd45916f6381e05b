"""Pure shipment rules: Fleetbase events → the plan's shipment statuses, moving only forward.

created → picked_up → in_transit → delivered; failed and canceled end a shipment from any open state.
An event older in this order than the shipment's state (a late or reordered delivery) changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cityos.domain.commerce.rules import validate_postal_code
from cityos.domain.fulfillment.models import ShipmentStatus
from cityos.domain.orders.models import OrderFulfillment, VendorFulfillment
from cityos.errors import BadUserInput, InvalidStateTransition

COUNTRY = re.compile(r"^[a-z]{2}$")

EVENT_STATUS = {
    "order.created": ShipmentStatus.CREATED,
    "order.ready": ShipmentStatus.CREATED,
    "order.driver_assigned": ShipmentStatus.CREATED,
    "order.dispatched": ShipmentStatus.PICKED_UP,
    "order.completed": ShipmentStatus.DELIVERED,
    "order.failed": ShipmentStatus.FAILED,
    "order.dispatch_failed": ShipmentStatus.FAILED,
    "order.canceled": ShipmentStatus.CANCELED,
}
# order.updated carries the Fleetbase order status in data.status
FLEETBASE_STATUS = {"created": ShipmentStatus.CREATED, "dispatched": ShipmentStatus.PICKED_UP,
                    "started": ShipmentStatus.IN_TRANSIT, "enroute": ShipmentStatus.IN_TRANSIT,
                    "in_progress": ShipmentStatus.IN_TRANSIT, "driver_enroute": ShipmentStatus.IN_TRANSIT,
                    "completed": ShipmentStatus.DELIVERED, "canceled": ShipmentStatus.CANCELED,
                    "failed": ShipmentStatus.FAILED}
RANK = {ShipmentStatus.CREATED: 0, ShipmentStatus.PICKED_UP: 1, ShipmentStatus.IN_TRANSIT: 2,
        ShipmentStatus.DELIVERED: 3, ShipmentStatus.FAILED: 3, ShipmentStatus.CANCELED: 3}
TERMINAL = frozenset({ShipmentStatus.DELIVERED, ShipmentStatus.FAILED, ShipmentStatus.CANCELED})


def status_of(event_name: str, data: dict[str, Any]) -> ShipmentStatus | None:
    if event_name == "order.updated":
        return FLEETBASE_STATUS.get(str(data.get("status", "")).lower())
    return EVENT_STATUS.get(event_name)


def moves_forward(current: str, new: str) -> bool:
    return current not in TERMINAL and RANK[ShipmentStatus(new)] > RANK[ShipmentStatus(current)]


# A vendor's own fulfilment of its part of an order, and the order's fulfilment derived from its parts.
VENDOR_RANK = {VendorFulfillment.UNFULFILLED: 0, VendorFulfillment.PROCESSING: 1, VendorFulfillment.READY: 2,
               VendorFulfillment.SHIPPED: 3, VendorFulfillment.DELIVERED: 4}
FULFILLABLE_ORDER_STATUSES = frozenset({"paid", "fulfilled", "completed", "awaiting_payment"})  # on account too
SHIPMENT_FULFILLMENT = {ShipmentStatus.PICKED_UP: VendorFulfillment.SHIPPED,
                        ShipmentStatus.IN_TRANSIT: VendorFulfillment.SHIPPED,
                        ShipmentStatus.DELIVERED: VendorFulfillment.DELIVERED}


def next_vendor_fulfillment(order_status: str, current: str, target: str, tracking_number: str | None,
                            carrier: str | None) -> VendorFulfillment:
    """A vendor moves its part forward: unfulfilled → processing → ready → shipped → delivered (steps may be
    skipped, never undone). Only a paid part (not canceled or refunded) moves; shipping needs a tracking number
    and the carrier; delivery comes after shipping."""
    wanted = VendorFulfillment(target)
    if order_status not in FULFILLABLE_ORDER_STATUSES:
        raise InvalidStateTransition(f"a {order_status} order is not fulfilled", **{"from": current, "to": target})
    if VENDOR_RANK[wanted] <= VENDOR_RANK[VendorFulfillment(current)]:
        raise InvalidStateTransition(f"a vendor order cannot go from {current} to {target}",
                                     **{"from": current, "to": target})
    if wanted is VendorFulfillment.SHIPPED and not (tracking_number and carrier):
        raise BadUserInput("shipping needs the carrier and its tracking number", field="trackingNumber")
    if wanted is VendorFulfillment.DELIVERED and VENDOR_RANK[VendorFulfillment(current)] < VENDOR_RANK[
            VendorFulfillment.SHIPPED]:
        raise InvalidStateTransition("a vendor order is delivered after it is shipped",
                                     **{"from": current, "to": target})
    return wanted


def order_fulfillment(parts: Sequence[str]) -> OrderFulfillment:
    """The order's fulfilment from its vendor orders': delivered when all are; shipped when all are shipped (or
    delivered) and none delivered, partially delivered when some are delivered; partially shipped when some are
    shipped; processing when any vendor started; else unfulfilled."""
    ranks = [VENDOR_RANK[VendorFulfillment(part)] for part in parts]
    shipped, delivered = VENDOR_RANK[VendorFulfillment.SHIPPED], VENDOR_RANK[VendorFulfillment.DELIVERED]
    if not ranks or max(ranks) == 0:
        return OrderFulfillment.UNFULFILLED
    if min(ranks) == delivered:
        return OrderFulfillment.DELIVERED
    if min(ranks) >= shipped:
        return OrderFulfillment.PARTIALLY_DELIVERED if max(ranks) == delivered else OrderFulfillment.SHIPPED
    if max(ranks) >= shipped:
        return OrderFulfillment.PARTIALLY_SHIPPED
    return OrderFulfillment.PROCESSING


def validate_pickup_address(address: dict[str, Any]) -> dict[str, Any]:
    """A vendor's pickup address (where couriers collect its parcels): street, city, postal code and country are
    required; the country is an ISO 3166-1 alpha-2 code; a US postal code is a ZIP code. Stored with the keys of
    a shipping address (address_1, …), which is what the Fleetbase pickup is built from."""
    cleaned = {key: " ".join(str(value).split()) for key, value in address.items() if value is not None}
    cleaned = {key: value for key, value in cleaned.items() if value}
    for required, field in (("address_1", "address.address1"), ("city", "address.city"),
                            ("postal_code", "address.postalCode"), ("country_code", "address.countryCode")):
        if not cleaned.get(required):
            raise BadUserInput(f"the pickup address needs {field.split('.')[1]}", field=field)
    for key, value in cleaned.items():
        if len(value) > 200:
            raise BadUserInput(f"{key} is longer than 200 characters", field=f"address.{key}")
    cleaned["country_code"] = cleaned["country_code"].lower()
    if not COUNTRY.match(cleaned["country_code"]):
        raise BadUserInput("not an ISO 3166-1 alpha-2 country code", field="address.countryCode")
    cleaned["postal_code"] = validate_postal_code(cleaned["country_code"], cleaned["postal_code"])
    if "province" in cleaned:
        cleaned["province"] = cleaned["province"].upper()
    return cleaned
