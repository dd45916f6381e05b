"""Order reads: the order and vendor order listings. The caller adds the authorization clause and pages them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.orders.models import Order, VendorOrder

ORDER = table_of(Order)
VENDOR_ORDER = table_of(VendorOrder)

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
