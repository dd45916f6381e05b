"""A paid order's sales in the marketplace's commission ledger: the orders context reads the order and its vendor
lines, the ledger prices each line's commission and records it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.marketplace.ledger import LedgerPolicy, record_sale_entries
from cityos.domain.orders.models import Order, OrderLine, OrderStatus

ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)


async def record_sales(connection: AsyncConnection, order_id: uuid.UUID, policy: LedgerPolicy) -> int:
    """One `sale` entry per vendor order line of a paid order (idempotent: one per line and kind); an order on
    account (awaiting_payment) records them unavailable until its invoice is paid."""
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id))).one()
    lines = (await connection.execute(select(ORDER_LINE).where(ORDER_LINE.c.order_id == order_id,
                                                               ORDER_LINE.c.vendor_id.is_not(None)))).all()
    return await record_sale_entries(connection, order, lines, policy,
                                     awaiting_payment=order.status == OrderStatus.AWAITING_PAYMENT)
