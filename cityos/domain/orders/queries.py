"""Order reads: the order, vendor order, refund and return listings. The caller adds the authorization clause
and pages them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.marketplace.ledger import ACTIVE_PAYOUT, ENTRY, LINK, PAYOUT
from cityos.domain.orders.models import Order, OrderReturn, Refund, RefundTransferReversal, ReversalStatus, VendorOrder

ORDER = table_of(Order)
VENDOR_ORDER = table_of(VendorOrder)
REFUND = table_of(Refund)
RETURN = table_of(OrderReturn)
REVERSAL = table_of(RefundTransferReversal)

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


# Vendor debts: a refunded vendor share already paid out that its transfer could not give back (the reversal's
# status `debt`: the vendor's balance did not cover it). Its ledger reversals were released, so the vendor's next
# payout nets them: that payout (pending or paid) is the one linking them. Which reversal entries are the debt's:
# the refund's reversals of the vendor whose sale (or shipping) entry the debt's payout paid.
_SALE, _SALE_LINK = ENTRY.alias("debt_sale"), LINK.alias("debt_sale_link")
_OWED, _NET_LINK, _NET_PAYOUT = ENTRY.alias("debt_entry"), LINK.alias("debt_net_link"), PAYOUT.alias("debt_net")
DEBT_STORE_ID: ColumnElement[Any] = select(REFUND.c.store_id).where(
    REFUND.c.tenant_id == REVERSAL.c.tenant_id, REFUND.c.id == REVERSAL.c.refund_id).scalar_subquery()
DEBT_ORDER_ID: ColumnElement[Any] = select(REFUND.c.order_id).where(
    REFUND.c.tenant_id == REVERSAL.c.tenant_id, REFUND.c.id == REVERSAL.c.refund_id).scalar_subquery()
DEBT_NETTED_BY: ColumnElement[Any] = (
    select(_NET_LINK.c.payout_id)
    .join(_NET_PAYOUT, and_(_NET_PAYOUT.c.tenant_id == _NET_LINK.c.tenant_id,
                            _NET_PAYOUT.c.id == _NET_LINK.c.payout_id))
    .join(_OWED, and_(_OWED.c.tenant_id == _NET_LINK.c.tenant_id, _OWED.c.id == _NET_LINK.c.transaction_id))
    .where(_NET_LINK.c.tenant_id == REVERSAL.c.tenant_id, _NET_PAYOUT.c.status.in_(ACTIVE_PAYOUT),
           _NET_LINK.c.payout_id != REVERSAL.c.payout_id, _OWED.c.kind == "reversal",
           _OWED.c.refund_id == REVERSAL.c.refund_id, _OWED.c.vendor_id == REVERSAL.c.vendor_id,
           exists(select(literal(1)).select_from(_SALE).join(_SALE_LINK, and_(
               _SALE_LINK.c.tenant_id == _SALE.c.tenant_id, _SALE_LINK.c.transaction_id == _SALE.c.id)).where(
               _SALE.c.tenant_id == _OWED.c.tenant_id, _SALE.c.kind.in_(("sale", "shipping")),
               _SALE.c.vendor_order_id == _OWED.c.vendor_order_id,
               _SALE.c.order_line_id.is_not_distinct_from(_OWED.c.order_line_id),
               _SALE_LINK.c.payout_id == REVERSAL.c.payout_id)))
    .order_by(_NET_PAYOUT.c.created_at, _NET_PAYOUT.c.id).limit(1).scalar_subquery())


def vendor_debts(*scope: ColumnElement[bool], vendor_id: uuid.UUID | None, outstanding: bool | None) -> Listing:
    """Debts newest first, with `store_id`, `order_id` and `netted_by_payout_id` (null: still owed);
    `outstanding` True lists only those still owed, False only those netted."""
    netted = DEBT_NETTED_BY.label("netted_by_payout_id")
    inner = select(REVERSAL, DEBT_STORE_ID.label("store_id"), DEBT_ORDER_ID.label("order_id"), netted).where(
        REVERSAL.c.status == ReversalStatus.DEBT.value, *scope)
    if vendor_id is not None:
        inner = inner.where(REVERSAL.c.vendor_id == vendor_id)
    debts = inner.subquery("vendor_debt")
    statement = select(debts)
    if outstanding is not None:
        statement = statement.where(debts.c.netted_by_payout_id.is_(None) if outstanding
                                    else debts.c.netted_by_payout_id.is_not(None))
    return Listing(statement, [SortKey(debts.c.created_at, True), SortKey(debts.c.id, True)])
