"""Pure shipment rules: Fleetbase events → the plan's shipment statuses, moving only forward.

created → picked_up → in_transit → delivered; failed and canceled end a shipment from any open state.
An event older in this order than the shipment's state (a late or reordered delivery) changes nothing.
"""

from __future__ import annotations

from typing import Any

EVENT_STATUS = {
    "order.created": "created",
    "order.ready": "created",
    "order.driver_assigned": "created",
    "order.dispatched": "picked_up",
    "order.completed": "delivered",
    "order.failed": "failed",
    "order.dispatch_failed": "failed",
    "order.canceled": "canceled",
}
# order.updated carries the Fleetbase order status in data.status
FLEETBASE_STATUS = {"created": "created", "dispatched": "picked_up", "started": "in_transit",
                    "enroute": "in_transit", "in_progress": "in_transit", "driver_enroute": "in_transit",
                    "completed": "delivered", "canceled": "canceled", "failed": "failed"}
RANK = {"created": 0, "picked_up": 1, "in_transit": 2, "delivered": 3, "failed": 3, "canceled": 3}
TERMINAL = frozenset({"delivered", "failed", "canceled"})


def status_of(event_name: str, data: dict[str, Any]) -> str | None:
    if event_name == "order.updated":
        return FLEETBASE_STATUS.get(str(data.get("status", "")).lower())
    return EVENT_STATUS.get(event_name)


def moves_forward(current: str, new: str) -> bool:
    return current not in TERMINAL and RANK[new] > RANK[current]
