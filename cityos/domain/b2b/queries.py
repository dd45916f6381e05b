"""B2B reads: companies, their users, quotes (lines, versions, messages), approval requests (steps), invoices
and spending; each list a statement plus its keyset order (filtered by the caller's Cerbos plan)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.b2b.models import InvoiceStatus
from cityos.domain.b2b.service import (
    APPROVAL_REQUEST,
    APPROVAL_RULE,
    APPROVAL_STEP,
    COMPANY,
    COMPANY_USER,
    INVOICE,
    PRICE_LIST,
    PRICE_LIST_ENTRY,
    QUOTE,
    QUOTE_LINE,
    QUOTE_MESSAGE,
    QUOTE_VERSION,
    spending,
)
from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.orders.models import Order

ORDER = table_of(Order)

__all__ = ["APPROVAL_RULE", "APPROVAL_STEP", "COMPANY_USER", "PRICE_LIST", "PRICE_LIST_ENTRY", "QUOTE_LINE",
           "QUOTE_MESSAGE", "QUOTE_VERSION"]


def _newest(table: Any) -> list[SortKey]:
    return [SortKey(table.c.created_at, True), SortKey(table.c.id, True)]


def companies(*scope: ColumnElement[bool]) -> Listing:
    return Listing(select(COMPANY).where(*scope), _newest(COMPANY))


def quotes(*scope: ColumnElement[bool], company_id: uuid.UUID | None = None, status: str | None = None) -> Listing:
    statement = select(QUOTE).where(*scope)
    if company_id is not None:
        statement = statement.where(QUOTE.c.company_id == company_id)
    if status is not None:
        statement = statement.where(QUOTE.c.status == status)
    return Listing(statement, _newest(QUOTE))


def approval_requests(*scope: ColumnElement[bool], status: str | None = None) -> Listing:
    statement = select(APPROVAL_REQUEST).where(*scope)
    if status is not None:
        statement = statement.where(APPROVAL_REQUEST.c.status == status)
    return Listing(statement, _newest(APPROVAL_REQUEST))


def invoices(*scope: ColumnElement[bool], status: str | None = None) -> Listing:
    statement = select(INVOICE).where(*scope)
    if status is not None:
        statement = statement.where(INVOICE.c.status == status)
    return Listing(statement, _newest(INVOICE))


def company_orders(company_id: uuid.UUID, buyer_id: str | None = None) -> Listing:
    statement = select(ORDER).where(ORDER.c.company_id == company_id)
    if buyer_id is not None:
        statement = statement.where(ORDER.c.customer_id == buyer_id)
    return Listing(statement, _newest(ORDER))


async def overdue_invoices(connection: AsyncConnection, company_id: uuid.UUID) -> int:
    """How many of the company's invoices are overdue (any: the company is on credit hold)."""
    return int((await connection.execute(select(func.count()).select_from(INVOICE).where(
        INVOICE.c.company_id == company_id, INVOICE.c.status == InvoiceStatus.OVERDUE.value))).scalar_one())


async def spending_by_buyer(connection: AsyncConnection, company_id: uuid.UUID, start: datetime,
                            end: datetime) -> list[tuple[str, int]]:
    """Each buyer's committed goods totals in [start, end) (service.spending), largest first."""
    totals = await spending(connection, company_id, start, end)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))
