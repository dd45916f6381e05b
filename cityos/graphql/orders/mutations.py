"""Vendors fulfil their own vendor orders: thin resolvers over domain/fulfillment/vendor_orders.py. A vendor order
another vendor owns is NOT_FOUND (the caller cannot tell it exists)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.fulfillment import vendor_orders
from cityos.domain.platform.service import audit
from cityos.errors import BadUserInput, NotFound
from cityos.graphql.commerce.types import VendorOrder
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import load_node
from cityos.graphql.core.values import VendorFulfillment

VendorOrderIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the vendor order.")]
NewFulfillment = Annotated[VendorFulfillment, strawberry.argument(description="The step to move to (forward "
                                                                               "only).")]
TrackingNumber = Annotated[str | None, strawberry.argument(description="The carrier's tracking number (needed to "
                                                                       "ship).")]
Carrier = Annotated[str | None, strawberry.argument(description="The carrier (e.g. ups; needed to ship).")]


async def fulfillable(info: Info, global_id: strawberry.ID) -> VendorOrder:
    """The vendor order, if the caller may fulfil it; one it may not even read is NOT_FOUND."""
    tenant_of(info)
    part: VendorOrder = await load_node(info, global_id, "VendorOrder")
    if not await info.context.authz.allowed(part.resource(), "read"):
        raise NotFound("no VendorOrder with that id")
    await info.context.authz.require(part.resource(), "fulfill")
    return part


async def _audited(info: Info, connection: AsyncConnection, action: str, row: Any) -> Any:
    await audit(connection, tenant_id=info.context.principal.tenant_id, actor=info.context.principal.id,
                action=action, target_kind="vendor_order", target_id=row.id,
                fulfillment_status=row.fulfillment_status)
    return row


@strawberry.type
class FulfillmentMutation:
    @strawberry.mutation(description="Move a vendor order forward: PROCESSING → READY → SHIPPED (with carrier and "
                                     "trackingNumber) → DELIVERED. The order's fulfilment follows from its vendor "
                                     "orders; every part shipped makes a paid order FULFILLED. The vendor's admins "
                                     "and users, and the store's admins.")
    async def update_vendor_order_fulfillment(self, info: Info, id: VendorOrderIdArg, status: NewFulfillment,
                                              tracking_number: TrackingNumber = None,
                                              carrier: Carrier = None) -> VendorOrder:
        part = await fulfillable(info, id)

        async def work(connection: AsyncConnection) -> Any:
            row = await vendor_orders.advance(connection, part.row.id, status.value, tracking_number=tracking_number,
                                              carrier=carrier, events=info.context.events)
            return await _audited(info, connection, "update_vendor_order_fulfillment", row)

        return VendorOrder.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Hand a vendor order to Fleetbase: it becomes READY and a courier order (pickup "
                                     "at the vendor's pickup address, dropoff at the customer) is sent; its "
                                     "shipment's events then move it to SHIPPED and DELIVERED.")
    async def request_vendor_order_pickup(self, info: Info, id: VendorOrderIdArg) -> VendorOrder:
        part = await fulfillable(info, id)
        if not info.context.settings.FLEETBASE_URL:
            raise BadUserInput("delivery through Fleetbase is not configured (FLEETBASE_URL)", field="id")

        async def work(connection: AsyncConnection) -> Any:
            row = await vendor_orders.request_pickup(connection, part.row.id, info.context.events)
            return await _audited(info, connection, "request_vendor_order_pickup", row)

        return VendorOrder.from_row(await info.context.db.mutate(work))
