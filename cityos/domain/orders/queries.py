"""Order reads: the order, vendor order, refund and return listings. The caller adds the authorization clause
and pages them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.orders.models import Order, OrderReturn, Refund, VendorOrder

ORDER = table_of(Order)
VENDOR_ORDER = table_of(VendorOrder)
REFUND = table_of(Refund)
RETURN = table_of(OrderReturn)

# The hash of the order's access token ("" when it has none), as the policies compare it.
ORDER_ACCESS_TOKEN_HASH: ColumnElement[Any] = func.coalesce(ORDER.c.access_token_hash, "")


def orders(*scope: ColumnElement[bool]) -> Listing:
    return Listing(select(ORDER).where(*scope))


def customer_orders(customer_id: str, *scope: ColumnElement[bool]) -> Listing:
    """One customer's orders, newest first."""
    return Listing(select(ORDER).where(ORDER.c.customer_id == customer_id, *scope),
                   (SortKey(ORDER.c.created_at, descending=True), SortKey(ORDER.c.id, descending=True)))


def vendor_orders(*scope: ColumnElement[bool]) -> Listing:
    return Listing(select(VENDOR_ORDER).where(*scope))


def refunds(*scope: ColumnElement[bool], order_id: uuid.UUID | None) -> Listing:
    statement = select(REFUND).where(*scope)
    if order_id is not None:
        statement = statement.where(REFUND.c.order_id == order_id)
    return Listing(statement, [SortKey(REFUND.c.created_at, True), SortKey(REFUND.c.id, True)])


def returns(*scope: ColumnElement[bool], order_id: uuid.UUID | None, status: str | None) -> Listing:
    statement = select(RETURN).where(*scope)
    if order_id is not None:
        statement = statement.where(RETURN.c.order_id == order_id)
    if status is not None:
        statement = statement.where(RETURN.c.status == status)
    return Listing(statement, [SortKey(RETURN.c.created_at, True), SortKey(RETURN.c.id, True)])
