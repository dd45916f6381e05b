"""The orders ERPNext mirrors: an order's documents' inputs, and the orders changed since a sync's cursor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.b2b.models import Company, Invoice
from cityos.domain.base import table_of
from cityos.domain.orders.models import Order, OrderLine, Refund, RefundLine
from cityos.domain.orders.service import ACCOUNTING_TOPIC
from cityos.domain.platform.outbox import OUTBOX, enqueue
from cityos.domain.platform.sync import Position, changed_since
from cityos.domain.tenancy.models import Currency

ORDER = table_of(Order)
LINE = table_of(OrderLine)
CURRENCY = table_of(Currency)
COMPANY = table_of(Company)
INVOICE = table_of(Invoice)
REFUND = table_of(Refund)
REFUND_LINE = table_of(RefundLine)
TOPICS = (ACCOUNTING_TOPIC,)
STREAM = "erpnext.orders"
# Orders that were paid: an invoice (and payment), and a credit note per succeeded refund.
ACCOUNTED = ("paid", "fulfilled", "completed", "refunded", "awaiting_payment")  # on account: its invoice


@dataclass(frozen=True)
class OrderForAccounting:
    order: Any
    lines: list[Any]
    decimals: int
    company: Any = None  # a B2B company's order: the company is the ERPNext customer
    invoice: Any = None  # … and, paid on account, its invoice
    refunds: list[tuple[Any, list[Any]]] = field(default_factory=list)  # succeeded refunds with their lines
    withdrawn: list[uuid.UUID] = field(default_factory=list)  # refunds Stripe took, then failed: notes to cancel


async def withdrawn_refunds(connection: AsyncConnection, order_id: uuid.UUID) -> list[uuid.UUID]:
    """Refunds that were accepted (maybe succeeded, so maybe credited) and failed or were canceled later."""
    return list((await connection.execute(select(REFUND.c.id).where(
        REFUND.c.order_id == order_id, REFUND.c.status.in_(("failed", "canceled")),
        REFUND.c.ledger_recorded.is_(True)).order_by(REFUND.c.created_at, REFUND.c.id))).scalars())


async def succeeded_refunds(connection: AsyncConnection, order_id: uuid.UUID) -> list[tuple[Any, list[Any]]]:
    """The order's succeeded refunds, oldest first, each with its lines (the order line's SKU and title)."""
    refunds = (await connection.execute(select(REFUND).where(
        REFUND.c.order_id == order_id, REFUND.c.status == "succeeded").order_by(REFUND.c.created_at,
                                                                                 REFUND.c.id))).all()
    if not refunds:
        return []
    lines = (await connection.execute(
        select(REFUND_LINE.c.refund_id, REFUND_LINE.c.quantity, REFUND_LINE.c.amount, REFUND_LINE.c.tax_amount,
               LINE.c.sku, LINE.c.title)
        .join(LINE, (LINE.c.tenant_id == REFUND_LINE.c.tenant_id) & (LINE.c.id == REFUND_LINE.c.order_line_id))
        .where(REFUND_LINE.c.refund_id.in_([refund.id for refund in refunds]))
        .order_by(LINE.c.created_at, LINE.c.sku, REFUND_LINE.c.id))).all()
    return [(refund, [line for line in lines if line.refund_id == refund.id]) for refund in refunds]


async def order_for_accounting(connection: AsyncConnection, order_id: uuid.UUID) -> OrderForAccounting | None:
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id))).first()
    if order is None or order.status not in ACCOUNTED:
        return None
    lines = list((await connection.execute(select(LINE).where(LINE.c.order_id == order_id)
                                           .order_by(LINE.c.created_at, LINE.c.sku))).all())
    decimals = (await connection.execute(select(CURRENCY.c.decimal_digits).where(
        CURRENCY.c.code == order.currency_code))).scalar()
    company = invoice = None
    if order.company_id is not None:
        company = (await connection.execute(select(COMPANY).where(COMPANY.c.id == order.company_id))).first()
        invoice = (await connection.execute(select(INVOICE).where(INVOICE.c.order_id == order.id))).first()
    return OrderForAccounting(order, lines, 2 if decimals is None else decimals, company, invoice,
                              await succeeded_refunds(connection, order_id),
                              await withdrawn_refunds(connection, order_id))


async def changed_orders(connection: AsyncConnection, after: Position, limit: int, settle: float) -> Sequence[Any]:
    statement = select(ORDER.c.id, ORDER.c.tenant_id, ORDER.c.updated_at).where(
        ORDER.c.status.in_(ACCOUNTED), *changed_since(ORDER.c.updated_at, ORDER.c.id, after, settle))
    return (await connection.execute(statement.order_by(ORDER.c.updated_at, ORDER.c.id).limit(limit))).all()


async def request_sync(connection: AsyncConnection, tenant_id: uuid.UUID, order_id: uuid.UUID) -> bool:
    """Write the order's sync to the outbox unless one is already waiting (False then)."""
    waiting = (await connection.execute(select(func.count()).select_from(OUTBOX).where(
        OUTBOX.c.topic == ACCOUNTING_TOPIC, OUTBOX.c.status == "pending",
        OUTBOX.c.payload["order_id"].astext == str(order_id)))).scalar()
    if waiting:
        return False
    await enqueue(connection, tenant_id=tenant_id, topic=ACCOUNTING_TOPIC, payload={"order_id": str(order_id)})
    return True
