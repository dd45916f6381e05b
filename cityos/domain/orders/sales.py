"""A paid order's sales in the marketplace's commission ledger: the orders context reads the order and its vendor
lines, the ledger prices each line's commission and records it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.marketplace.ledger import LedgerPolicy, record_sale_entries, record_shipping_entries
from cityos.domain.orders.models import Order, OrderLine, OrderStatus, VendorOrder

ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)
VENDOR_ORDER = table_of(VendorOrder)


async def record_sales(connection: AsyncConnection, order_id: uuid.UUID, policy: LedgerPolicy) -> int:
    """One `sale` entry per vendor order line of a paid order, and one `shipping` entry per vendor order shipped
    with the vendor's own option (idempotent: one per line or vendor order, and kind); an order on account
    (awaiting_payment) records them unavailable until its invoice is paid."""
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id))).one()
    lines = (await connection.execute(select(ORDER_LINE).where(ORDER_LINE.c.order_id == order_id,
                                                               ORDER_LINE.c.vendor_id.is_not(None)))).all()
    parts = (await connection.execute(select(VENDOR_ORDER).where(VENDOR_ORDER.c.order_id == order_id,
                                                                 VENDOR_ORDER.c.own_shipping))).all()
    awaiting = order.status == OrderStatus.AWAITING_PAYMENT
    return (await record_sale_entries(connection, order, lines, policy, awaiting_payment=awaiting)
            + await record_shipping_entries(connection, order, parts, policy, awaiting_payment=awaiting))
