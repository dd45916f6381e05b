"""Subscriptions (graphql-transport-ws): live order and shipment events for customers, vendors and store admins.

The subscriber is authorized when it subscribes, and every event is authorized again for that subscriber through
the batching Cerbos loader before it is sent (a vendor never sees another vendor's part of an order). Events come
from the broker (Redis across instances), are published only after commit, and each subscription has a bounded
queue: a subscriber that falls too far behind is disconnected with close code 4413 and must resubscribe. The
subscription ends with UNAUTHENTICATED when the subscriber's token expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from sqlalchemy import select
from strawberry.scalars import JSON

from cityos.auth.authz import ResourceRef
from cityos.db.engines import tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.fulfillment.models import Shipment
from cityos.errors import Forbidden, NotFound, Unauthenticated
from cityos.graphql.commerce.types import ORDER_TABLE, Order
from cityos.graphql.core.context import Info
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.graphql.core.values import OrderFulfillment, OrderStatus, ShipmentStatus, VendorFulfillment
from cityos.graphql.tenancy.types import STORE_TABLE, Store
from cityos.realtime import SubscriberTooSlow

SHIPMENT_TABLE = table_of(Shipment)
T = TypeVar("T")


SUBSCRIBER_TOO_SLOW = 4413  # WebSocket close code: the subscriber fell too far behind (private-use range)


async def _cut_off(info: Info) -> None:
    """Close the subscriber's WebSocket with a clear code; its client reconnects and resubscribes."""
    socket = info.context.response
    if socket is not None and hasattr(socket, "close"):
        await socket.close(code=SUBSCRIBER_TOO_SLOW, reason="subscriber too slow: events were dropped")


@strawberry.type(description="A change to an order, a vendor's part of it, its shipment, a refund or a return.")
class LiveOrderEvent:
    type: str = strawberry.field(description="order.created | order.status_changed | order.fulfillment_changed | "
                                             "shipment.updated | refund.updated | return.updated")
    status: str = strawberry.field(description="The order, vendor order or shipment status after the change, as "
                                               "stored (lower case); orderStatus and shipmentStatus are its typed "
                                               "forms.")
    order_status: OrderStatus | None = strawberry.field(description="The order's or vendor order's status after "
                                                                    "an order event; null for other events.")
    shipment_status: ShipmentStatus | None = strawberry.field(description="The shipment's status after a shipment "
                                                                          "event; null for order events.")
    order_id: strawberry.ID = strawberry.field(description="Global id of the order.")
    vendor_order_id: strawberry.ID | None = strawberry.field(description="Global id of the vendor order, for "
                                                                         "vendor-level events.")
    shipment_id: strawberry.ID | None = strawberry.field(description="Global id of the shipment, for shipment events.")
    fulfillment_status: VendorFulfillment | None = strawberry.field(
        default=None, description="The vendor order's fulfilment after an order.fulfillment_changed event.")
    order_fulfillment_status: OrderFulfillment | None = strawberry.field(
        default=None, description="The order's fulfilment (derived) after an order.fulfillment_changed event.")
    tracking_number: str | None = strawberry.field(description="The shipment's tracking number, when known.")
    location: JSON | None = strawberry.field(description="The courier's location, when the event carries one.")
    refund_id: strawberry.ID | None = strawberry.field(description="Global id of the refund, for refund events "
                                                                   "(status is then the refund's).")
    return_id: strawberry.ID | None = strawberry.field(description="Global id of the return, for return events "
                                                                   "(status is then the return's).")
    at: datetime = strawberry.field(description="When the change happened (ISO 8601, UTC).")

    @classmethod
    def of(cls, payload: dict[str, Any]) -> LiveOrderEvent:
        def gid(type_name: str, key: str) -> strawberry.ID | None:
            return to_global_id(type_name, payload[key]) if payload.get(key) else None

        shipment_event = str(payload["type"]).startswith("shipment.")
        order_event = str(payload["type"]).startswith("order.")
        return cls(type=payload["type"], status=payload["status"],
                   order_status=OrderStatus(payload["status"]) if order_event else None,
                   shipment_status=ShipmentStatus(payload["status"]) if shipment_event else None,
                   order_id=to_global_id("Order", payload["order_id"]),
                   vendor_order_id=gid("VendorOrder", "vendor_order_id"), shipment_id=gid("Shipment", "shipment_id"),
                   tracking_number=payload.get("tracking_number"), location=payload.get("location"),
                   fulfillment_status=VendorFulfillment(payload["fulfillment_status"])
                   if payload.get("fulfillment_status") else None,
                   order_fulfillment_status=OrderFulfillment(payload["order_fulfillment_status"])
                   if payload.get("order_fulfillment_status") else None,
                   refund_id=gid("Refund", "refund_id"), return_id=gid("Return", "return_id"),
                   at=datetime.fromisoformat(payload["at"]))


def shipment_resource(payload: dict[str, Any]) -> ResourceRef:
    return ResourceRef.of("shipment", payload.get("shipment_id") or payload["order_id"],
                          tenant_id=payload["tenant_id"], store_id=payload["store_id"],
                          vendor_id=payload.get("vendor_id") or "", customer_id=payload.get("customer_id") or "")


def order_resource(payload: dict[str, Any]) -> ResourceRef:
    if payload.get("vendor_order_id"):  # a vendor's part: vendors may see theirs, customers the whole order
        return shipment_resource(payload)
    return ResourceRef.of("order", payload["order_id"], tenant_id=payload["tenant_id"],
                          store_id=payload["store_id"], customer_id=payload.get("customer_id") or "")


def vendor_order_resource(payload: dict[str, Any]) -> ResourceRef:
    return ResourceRef.of("vendor_order", payload.get("vendor_order_id") or payload["order_id"],
                          tenant_id=payload["tenant_id"], store_id=payload["store_id"],
                          vendor_id=payload.get("vendor_id") or "")


async def _stream(info: Info, channel: str, resource_of: Callable[[dict[str, Any]], ResourceRef],
                  ) -> AsyncGenerator[LiveOrderEvent, None]:
    async for update in live_events(info, channel, resource_of, LiveOrderEvent.of):
        yield update


async def live_events(info: Info, channel: str, resource_of: Callable[[dict[str, Any]], ResourceRef | None],
                      build: Callable[[dict[str, Any]], T]) -> AsyncGenerator[T, None]:
    """The events of a broker channel the subscriber may read, each authorized for it (`resource_of` None: not
    for this subscription), until its token expires or it falls too far behind."""
    context = info.context
    principal = context.principal
    async with await context.services.broker.subscribe(channel) as subscription:
        while True:
            remaining = principal.expires_at - time.time() if principal.expires_at else None
            if remaining is not None and remaining <= 0:
                raise Unauthenticated("the token has expired: reconnect with a fresh one")
            try:
                payload = await asyncio.wait_for(subscription.get(), remaining)
            except TimeoutError:
                raise Unauthenticated("the token has expired: reconnect with a fresh one") from None
            except SubscriberTooSlow:
                await _cut_off(info)
                return
            if payload.get("tenant_id") != str(principal.tenant_id):
                continue
            resource = resource_of(payload)
            if resource is not None and await context.authz.allowed(resource, "read"):
                yield build(payload)


async def _load(info: Info, table: Any, local_id: uuid.UUID) -> Any:
    async with tenant_transaction(info.context.services.app_engine, info.context.principal.tenant_id) as connection:
        return (await connection.execute(select(table).where(table.c.id == local_id))).first()


ShipmentIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the shipment.")]
OrderIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the order.")]
StoreIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the store.")]


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(description="Status and location changes of one shipment.")
    async def shipment_tracking(self, info: Info, shipment_id: ShipmentIdArg) -> AsyncGenerator[LiveOrderEvent, None]:
        _, local_id = from_global_id(shipment_id, "Shipment")
        row = await _load(info, SHIPMENT_TABLE, local_id)
        if row is None:
            raise NotFound("no shipment with that id")
        await info.context.authz.require(shipment_resource({
            "shipment_id": row.id, "order_id": row.order_id, "tenant_id": str(row.tenant_id),
            "store_id": row.store_id, "vendor_id": row.vendor_id, "customer_id": row.customer_id}), "read")
        async for update in _stream(info, f"shipment:{row.id}", shipment_resource):
            yield update

    @strawberry.subscription(description="Everything that happens to one order (the parts the caller may see).")
    async def order_tracking(self, info: Info, order_id: OrderIdArg) -> AsyncGenerator[LiveOrderEvent, None]:
        _, local_id = from_global_id(order_id, "Order")
        row = await _load(info, ORDER_TABLE, local_id)
        if row is None:
            raise NotFound("no order with that id")
        await info.context.authz.require(Order.from_row(row).resource(), "read")
        async for update in _stream(info, f"order:{row.id}", order_resource):
            yield update

    @strawberry.subscription(description="A vendor's new orders, status changes and shipment updates.")
    async def vendor_order_events(self, info: Info) -> AsyncGenerator[LiveOrderEvent, None]:
        vendor_id = info.context.principal.vendor_id
        if not vendor_id:
            raise Forbidden("vendor order events are for vendor admins and users")
        async for update in _stream(info, f"vendor:{vendor_id}", vendor_order_resource):
            yield update

    @strawberry.subscription(description="A store's new orders, status changes and shipment updates (admins).")
    async def store_order_events(self, info: Info, store_id: StoreIdArg) -> AsyncGenerator[LiveOrderEvent, None]:
        store: Store = await _store(info, store_id)
        await info.context.authz.require(store.resource(), "watch_orders")
        async for update in _stream(info, f"store:{store.pk}", order_resource):
            yield update


async def _store(info: Info, store_id: strawberry.ID) -> Store:
    _, local_id = from_global_id(store_id, "Store")
    row = await _load(info, STORE_TABLE, local_id)
    if row is None:
        raise NotFound("no store with that id")
    return Store.from_row(row)

