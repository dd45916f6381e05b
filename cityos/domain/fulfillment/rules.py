"""Pure shipment rules: Fleetbase events → the plan's shipment statuses, moving only forward.

created → picked_up → in_transit → delivered; failed and canceled end a shipment from any open state.
An event older in this order than the shipment's state (a late or reordered delivery) changes nothing.
"""

from __future__ import annotations

from typing import Any

from cityos.domain.fulfillment.models import ShipmentStatus

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
