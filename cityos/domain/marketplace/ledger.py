"""The commission ledger: sale entries when an order is paid, reversals when it is canceled or refunded, and the
balances derived from it. Entries are only ever added."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.config import Settings
from cityos.domain.base import table_of
from cityos.domain.catalog.models import ProductCategory
from cityos.domain.marketplace import rules
from cityos.domain.marketplace.models import CommissionRule, CommissionTransaction, Payout, PayoutTransactionLink

RULE = table_of(CommissionRule)
ENTRY = table_of(CommissionTransaction)
PAYOUT = table_of(Payout)
LINK = table_of(PayoutTransactionLink)
PRODUCT_CATEGORY = table_of(ProductCategory)
ACTIVE_PAYOUT = ("pending", "paid")


@dataclass(frozen=True)
class LedgerPolicy:
    default_percentage: Decimal
    hold: timedelta

    @classmethod
    def of(cls, settings: Settings) -> LedgerPolicy:
        return cls(settings.STRIPE_PLATFORM_FEE_PERCENT, timedelta(days=settings.CITYOS_PAYOUT_HOLD_DAYS))


def rule_of(row: Any) -> rules.Rule:
    return rules.Rule(row.id, row.scope, row.scope_id, row.percentage, row.flat_per_line, row.minimum, row.maximum,
                      row.effective_from, row.effective_to)


async def record_sale_entries(connection: AsyncConnection, order: Any, lines: Sequence[Any],
                             policy: LedgerPolicy) -> int:
    """One `sale` entry per vendor order line of a paid order (idempotent: one per line and kind). `order` and
    `lines` are the order's row and its lines that have a vendor (read by the orders context)."""
    if not lines:
        return 0
    all_rules = [rule_of(row) for row in (await connection.execute(select(RULE))).all()]
    categories: dict[uuid.UUID, set[uuid.UUID]] = {}
    for product_id, category_id in (await connection.execute(select(
            PRODUCT_CATEGORY.c.product_id, PRODUCT_CATEGORY.c.category_id).where(
            PRODUCT_CATEGORY.c.product_id.in_({line.product_id for line in lines})))).all():
        categories.setdefault(product_id, set()).add(category_id)
    now = datetime.now(UTC)
    entries = []
    for line in lines:
        taken = rules.commission_for(rules.Line(
            line.total, order.tenant_id, order.store_id, line.vendor_id, line.product_id,
            frozenset(categories.get(line.product_id, set())), order.created_at), all_rules, policy.default_percentage)
        entries.append({"tenant_id": order.tenant_id, "id": uuid.uuid4(), "vendor_id": line.vendor_id,
                        "order_id": order.id, "vendor_order_id": line.vendor_order_id, "order_line_id": line.id,
                        "kind": "sale", "currency_code": order.currency_code, "line_amount": line.total,
                        "commission_amount": taken.commission, "vendor_amount": taken.vendor_share,
                        "rule_id": taken.rule_id, "available_at": now + policy.hold})
    await connection.execute(pg_insert(ENTRY).on_conflict_do_nothing(), entries)
    return len(entries)


async def record_reversals(connection: AsyncConnection, order_id: uuid.UUID) -> int:
    """A `reversal` for every sale of the order not yet reversed; available at once, so a sale already paid out
    is taken back from the vendor's next payout."""
    reversed_lines = select(ENTRY.c.order_line_id).where(ENTRY.c.order_id == order_id, ENTRY.c.kind == "reversal")
    sales = (await connection.execute(select(ENTRY).where(
        ENTRY.c.order_id == order_id, ENTRY.c.kind == "sale", ENTRY.c.order_line_id.not_in(reversed_lines)))).all()
    if sales:
        now = datetime.now(UTC)
        await connection.execute(insert(ENTRY), [{
            "tenant_id": sale.tenant_id, "id": uuid.uuid4(), "vendor_id": sale.vendor_id, "order_id": sale.order_id,
            "vendor_order_id": sale.vendor_order_id, "order_line_id": sale.order_line_id, "kind": "reversal",
            "currency_code": sale.currency_code, "line_amount": -sale.line_amount,
            "commission_amount": -sale.commission_amount, "vendor_amount": -sale.vendor_amount,
            "rule_id": sale.rule_id, "available_at": now} for sale in sales])
    return len(sales)


@dataclass(frozen=True)
class Balance:
    currency_code: str
    pending: int  # held: not yet available
    available: int  # can be paid out now (may be negative after a reversal of paid-out sales)
    paid_out: int  # in a pending or paid payout


def balance_statement(vendor_ids: list[uuid.UUID]) -> Any:
    active = select(LINK.c.transaction_id).join(PAYOUT, and_(PAYOUT.c.tenant_id == LINK.c.tenant_id,
                                                             PAYOUT.c.id == LINK.c.payout_id)).where(
        PAYOUT.c.status.in_(ACTIVE_PAYOUT))
    linked = ENTRY.c.id.in_(active)
    due = ENTRY.c.available_at <= func.now()
    return (select(ENTRY.c.vendor_id, ENTRY.c.currency_code,
                   func.coalesce(func.sum(case((~linked & ~due, ENTRY.c.vendor_amount), else_=0)), 0).label("pending"),
                   func.coalesce(func.sum(case((~linked & due, ENTRY.c.vendor_amount), else_=0)), 0).label(
                       "available"),
                   func.coalesce(func.sum(case((linked, ENTRY.c.vendor_amount), else_=0)), 0).label("paid_out"))
            .where(ENTRY.c.vendor_id.in_(vendor_ids)).group_by(ENTRY.c.vendor_id, ENTRY.c.currency_code)
            .order_by(ENTRY.c.currency_code))
