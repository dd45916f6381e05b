"""Cart and order queries: thin, through loaders, SQL-filtered by Cerbos plans, RLS underneath."""

from __future__ import annotations

import dataclasses

import strawberry

from cityos.domain.commerce import service as carts
from cityos.domain.orders import queries as order_queries
from cityos.errors import BadUserInput
from cityos.graphql.commerce.arguments import AccessToken, CartIdArg, OrderIdArg
from cityos.graphql.commerce.types import (
    ORDER,
    ORDER_TABLE,
    VENDOR_ORDER,
    VENDOR_ORDER_TABLE,
    Cart,
    Order,
    VendorOrder,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    page_query,
    wants_total,
)

ORDER_PLAN_ATTRIBUTES = ORDER.plan_attributes
VENDOR_ORDER_PLAN_ATTRIBUTES = VENDOR_ORDER.plan_attributes


async def cart_for(info: Info, cart_id: strawberry.ID, action: str = "update") -> Cart:
    cart: Cart = await node_by_global_id(info, cart_id, "Cart", action)
    return cart



def present_access_token(info: Info, token: str | None) -> None:
    """The caller proves it holds an order access token: its hash joins the principal's attributes for the rest
    of this operation, and Cerbos compares it with the order's (policies/order.yaml). Nothing else changes."""
    if not token:
        return
    if len(token) > 200:
        raise BadUserInput("not an order access token", field="accessToken")
    context = info.context
    context.principal = dataclasses.replace(context.principal, access_token_hash=carts.access_token_hash(token),
                                            _cerbos=[])
    context.authz = context.authz.for_principal(context.principal)



@strawberry.type
class CommerceQuery:
    @strawberry.field(description="A cart by id (the id is the storefront's handle on an anonymous cart).")
    async def cart(self, info: Info, id: CartIdArg) -> Cart:
        return await cart_for(info, id, "read")

    @strawberry.field(description="An order by id. A guest buyer sends the cart's order access token (from "
                                  "startCheckout) as accessToken; customers and staff need none.")
    async def order(self, info: Info, id: OrderIdArg,
                    access_token: AccessToken = None) -> Order:
        present_access_token(info, access_token)
        order: Order = await node_by_global_id(info, id, "Order")
        return order

    @strawberry.field(description="Orders the caller may read: a customer's own, a store admin's store's.")
    async def orders(self, info: Info, first: First = None, after: After = None, last: Last = None,
                     before: Before = None) -> Connection[Order]:
        allowed = await info.context.authz.sql_filter("order", "read", ORDER_TABLE, ORDER_PLAN_ATTRIBUTES)
        listing = order_queries.orders(allowed, *in_tenant(info.context.db, ORDER_TABLE))
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                Order.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Vendor orders the caller may read: a vendor's own, a store admin's store's.")
    async def vendor_orders(self, info: Info, first: First = None, after: After = None,
                            last: Last = None, before: Before = None) -> Connection[VendorOrder]:
        allowed = await info.context.authz.sql_filter("vendor_order", "read", VENDOR_ORDER_TABLE,
                                                      VENDOR_ORDER_PLAN_ATTRIBUTES)
        listing = order_queries.vendor_orders(allowed, *in_tenant(info.context.db, VENDOR_ORDER_TABLE))
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                VendorOrder.from_row, listing.order, count=wants_total(info))


