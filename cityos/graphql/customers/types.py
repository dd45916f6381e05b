"""GraphQL types of a customer's account. The account is the Cerbos resource `customer_account` (tenant_id,
customer_id): only the customer (and the tenant's admins, read-only) reach it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy.engine import Row

from cityos.auth.authz import ResourceRef
from cityos.domain.orders import queries as order_queries
from cityos.graphql.commerce.queries import ORDER_PLAN_ATTRIBUTES
from cityos.graphql.commerce.types import ORDER_TABLE, Cart, Order
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    page_query,
    to_global_id,
    wants_total,
)
from cityos.graphql.core.values import Address


def account_resource(tenant_id: uuid.UUID | None, customer_id: str) -> ResourceRef:
    return ResourceRef.of("customer_account", customer_id, tenant_id=str(tenant_id or ""), customer_id=customer_id)


@strawberry.type(description="An address in a customer's address book.")
class SavedAddress:
    id: strawberry.ID = strawberry.field(description="Global id of the saved address.")
    label: str | None = strawberry.field(description="The customer's name for it (Home, Office, …).")
    is_default: bool = strawberry.field(description="Whether it is the default address.")
    address: Address = strawberry.field(description="The address.")
    created_at: datetime = strawberry.field(description="When it was saved (ISO 8601, UTC).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> SavedAddress:
        return cls(id=to_global_id("CustomerAddress", row.id), label=row.label, is_default=row.is_default,
                   address=Address.from_json(row.address), created_at=row.created_at)


@strawberry.type(description="The signed-in customer's account in this tenant: profile, address book, orders.")
class CustomerAccount:
    customer_id: str = strawberry.field(description="The customer's Keycloak subject.")
    email: str | None = strawberry.field(description="The customer's verified email (from the sign-in token, else "
                                                     "as last saved).")
    first_name: str | None = strawberry.field(description="First name.")
    last_name: str | None = strawberry.field(description="Last name.")
    phone: str | None = strawberry.field(description="Phone number.")
    address_rows: strawberry.Private[list[Any]]

    @strawberry.field(description="The address book, oldest first.")
    def addresses(self) -> list[SavedAddress]:
        return [SavedAddress.from_row(row) for row in self.address_rows]

    @strawberry.field(description="The customer's orders in this store's tenant, newest first, each with its vendor "
                                  "orders' fulfilment and shipments.")
    async def orders(self, info: Info, first: First = None, after: After = None, last: Last = None,
                     before: Before = None) -> Connection[Order]:
        allowed = await info.context.authz.sql_filter("order", "read", ORDER_TABLE, ORDER_PLAN_ATTRIBUTES)
        listing = order_queries.customer_orders(self.customer_id, allowed, *in_tenant(info.context.db, ORDER_TABLE))
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                Order.from_row, listing.order, count=wants_total(info))


@strawberry.type(description="A past order put into a new cart.")
class Reorder:
    cart: Cart = strawberry.field(description="The new cart (the order's lines at today's prices).")
    skipped_skus: list[str] = strawberry.field(description="SKUs left out: no longer sold, unpriced or out of "
                                                           "stock.")


@strawberry.type(description="Guest orders that became the customer's.")
class ClaimedOrders:
    count: int = strawberry.field(description="How many orders were claimed.")
    orders: list[Order] = strawberry.field(description="The claimed orders, oldest first.")
