"""Refund and return listings, filtered in SQL by the Cerbos query plan of `read`."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cityos.domain.orders import queries as order_queries
from cityos.domain.orders.models import ReturnStatus
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import After, Connection, First, PageRequest, from_global_id, page_query
from cityos.graphql.orders.types import (
    REFUND,
    REFUND_TABLE,
    RETURN,
    RETURN_TABLE,
    REVERSAL_TABLE,
    Refund,
    Return,
    VendorDebt,
)

OrderFilter = Annotated[strawberry.ID | None, strawberry.argument(description="Only this order's (global id).")]
VendorFilter = Annotated[strawberry.ID | None, strawberry.argument(description="Only this vendor's (global id).")]
OutstandingFilter = Annotated[bool | None, strawberry.argument(
    description="true: only debts still owed; false: only those a payout netted; null: all.")]
# The Cerbos attributes of a vendor debt (kind `vendor_debt`): its tenant, the refund's store, the vendor.
DEBT_ATTRIBUTES = {"tenant_id": REVERSAL_TABLE.c.tenant_id, "store_id": order_queries.DEBT_STORE_ID,
                   "vendor_id": REVERSAL_TABLE.c.vendor_id}
ReturnStatusFilter = Annotated[ReturnStatus | None, strawberry.argument(description="Only returns in this status.")]


@strawberry.type
class OrdersQuery:
    @strawberry.field(description="Refunds the caller may see (store admins: their stores'; vendors: their own "
                                  "refunds), newest first; filter by order.")
    async def refunds(self, info: Info, order_id: OrderFilter = None, first: First = None,
                      after: After = None) -> Connection[Refund]:
        allowed = await info.context.authz.sql_filter("refund", "read", REFUND_TABLE, REFUND.plan_attributes)
        order = from_global_id(order_id, "Order")[1] if order_id else None
        listing = order_queries.refunds(allowed, *in_tenant(info.context.db, REFUND_TABLE), order_id=order)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                Refund.from_row, listing.order)

    @strawberry.field(description="Returns the caller may see (buyers: theirs; store admins: their stores'; vendors: "
                                  "those of their lines), newest first; filter by order and status.")
    async def returns(self, info: Info, order_id: OrderFilter = None, status: ReturnStatusFilter = None,
                      first: First = None, after: After = None) -> Connection[Return]:
        allowed = await info.context.authz.sql_filter("order_return", "read", RETURN_TABLE, RETURN.plan_attributes)
        order = from_global_id(order_id, "Order")[1] if order_id else None
        listing = order_queries.returns(allowed, *in_tenant(info.context.db, RETURN_TABLE), order_id=order,
                                        status=status.value if status else None)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                Return.from_row, listing.order)

    @strawberry.field(description="What vendors owe back (store and tenant admins: every vendor of their stores; a "
                                  "vendor's admins: its own): refunded vendor shares already paid out that the "
                                  "transfer could not give back, newest first, each with the refund it comes from, "
                                  "the payout that nets it and what is still outstanding.")
    async def vendor_debts(self, info: Info, vendor_id: VendorFilter = None, outstanding: OutstandingFilter = None,
                           first: First = None, after: After = None) -> Connection[VendorDebt]:
        allowed = await info.context.authz.sql_filter("vendor_debt", "read", REVERSAL_TABLE, DEBT_ATTRIBUTES)
        vendor = from_global_id(vendor_id, "Vendor")[1] if vendor_id else None
        listing = order_queries.vendor_debts(allowed, *in_tenant(info.context.db, REVERSAL_TABLE), vendor_id=vendor,
                                             outstanding=outstanding)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                VendorDebt.from_row, listing.order)
