"""The commission ledger: sale entries when an order is paid, reversals when it is canceled or refunded, and the
balances derived from it. Entries are only ever added."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
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
# `available_at` of the sales of an order on account until its invoice is paid: Postgres' 'infinity' (asyncpg
# maps it to datetime.max), so no payout claims them (release_sales sets the real moment).
AWAITING_PAYMENT = datetime.max


@dataclass(frozen=True)
class LedgerPolicy:
    default_percentage: Decimal
    hold: timedelta
    shipping_percentage: Decimal = Decimal(0)  # of a vendor's own shipping (rules.shipping_commission)

    @classmethod
    def of(cls, settings: Settings) -> LedgerPolicy:
        return cls(settings.STRIPE_PLATFORM_FEE_PERCENT, timedelta(days=settings.CITYOS_PAYOUT_HOLD_DAYS),
                   shipping_percentage=settings.CITYOS_SHIPPING_COMMISSION_PERCENT)


def rule_of(row: Any) -> rules.Rule:
    return rules.Rule(row.id, row.scope, row.scope_id, row.percentage, row.flat_per_line, row.minimum, row.maximum,
                      row.effective_from, row.effective_to)


async def record_sale_entries(connection: AsyncConnection, order: Any, lines: Sequence[Any],
                             policy: LedgerPolicy, awaiting_payment: bool = False) -> int:
    """One `sale` entry per vendor order line of a paid order (idempotent: one per line and kind). `order` and
    `lines` are the order's row and its lines that have a vendor (read by the orders context). An order on account
    (`awaiting_payment`) records its sales unavailable until its invoice is paid (release_sales)."""
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
        funding = rules.PromotionFunding.of_line(line.total, line.promotion_discount,
                                                 line.promotion_vendor_funded)
        taken = rules.commission_for(rules.Line(
            funding.commission_base, order.tenant_id, order.store_id, line.vendor_id, line.product_id,
            frozenset(categories.get(line.product_id, set())), order.created_at), all_rules, policy.default_percentage)
        share = funding.share(taken)
        entries.append({"tenant_id": order.tenant_id, "id": uuid.uuid4(), "vendor_id": line.vendor_id,
                        "order_id": order.id, "vendor_order_id": line.vendor_order_id, "order_line_id": line.id,
                        "kind": "sale", "currency_code": order.currency_code, "line_amount": line.total,
                        "commission_amount": share.commission, "vendor_amount": share.vendor,
                        "rule_id": taken.rule_id,
                        "available_at": AWAITING_PAYMENT if awaiting_payment else now + policy.hold,
                        "gross_amount": funding.gross, "discount_amount": funding.discount,
                        "platform_discount": funding.platform, "vendor_discount": funding.vendor})
    await connection.execute(pg_insert(ENTRY).on_conflict_do_nothing(), entries)
    return len(entries)


async def record_shipping_entries(connection: AsyncConnection, order: Any, vendor_orders: Sequence[Any],
                                  policy: LedgerPolicy, awaiting_payment: bool = False) -> int:
    """One `shipping` entry per vendor order shipped with the vendor's own option (`own_shipping`, a vendor, a
    shipping total above 0): the vendor's shipping, less rules.shipping_commission (by default nothing), held and
    paid out like a sale (on account: once the invoice is paid, as the sales). Idempotent: one per vendor order and
    kind."""
    now = datetime.now(UTC)
    entries = []
    for part in vendor_orders:
        if not part.own_shipping or part.vendor_id is None or part.shipping_total <= 0:
            continue
        taken = rules.shipping_commission(part.shipping_total, policy.shipping_percentage)
        entries.append({"tenant_id": order.tenant_id, "id": uuid.uuid4(), "vendor_id": part.vendor_id,
                        "order_id": order.id, "vendor_order_id": part.id, "order_line_id": None,
                        "kind": "shipping", "currency_code": order.currency_code,
                        "line_amount": part.shipping_total, "commission_amount": taken.commission,
                        "vendor_amount": taken.vendor_share, "rule_id": None,
                        "available_at": AWAITING_PAYMENT if awaiting_payment else now + policy.hold})
    if entries:
        await connection.execute(pg_insert(ENTRY).on_conflict_do_nothing(), entries)
    return len(entries)


async def release_sales(connection: AsyncConnection, order_id: uuid.UUID, policy: LedgerPolicy,
                        paid_at: datetime) -> int:
    """The invoice of an order on account was paid: its sales (and the vendors' own shipping) become available at
    the later of the payment and the end of the usual hold after the sale (the payout rule for orders on account,
    README)."""
    waiting = (await connection.execute(select(ENTRY.c.id, ENTRY.c.created_at).where(
        ENTRY.c.order_id == order_id, ENTRY.c.kind.in_(("sale", "shipping")),
        ENTRY.c.available_at == AWAITING_PAYMENT))).all()
    for entry in waiting:
        await connection.execute(update(ENTRY).where(ENTRY.c.id == entry.id).values(
            available_at=rules.available_after_payment(entry.created_at, paid_at, policy.hold)))
    return len(waiting)


@dataclass(frozen=True)
class RefundedUnits:
    """Units of a vendor's order line a refund gave back (first … first + quantity − 1 of `line_quantity`)."""

    order_line_id: uuid.UUID
    line_quantity: int
    first_unit: int
    quantity: int


@dataclass(frozen=True)
class PaidOutShare:
    """A refunded vendor share of sales that a payout already transferred: to reverse from that transfer."""

    vendor_id: uuid.UUID
    payout_id: uuid.UUID
    transfer_id: str
    amount: int
    currency_code: str


async def record_refund_reversals(connection: AsyncConnection, refund_id: uuid.UUID,
                                  units: Sequence[RefundedUnits],
                                  shipping_of: uuid.UUID | None = None) -> list[PaidOutShare]:
    """A `reversal` per refunded vendor line: exactly the refunded units' commission and vendor share (the sale
    split over its units by largest remainder, orders/rules.reversed_share), available at once; with
    `shipping_of` (the order, when the refund gives its shipping back) a `reversal` of each of the order's
    vendor shipping entries, whole (shipping is refunded whole). Once per refund and line or vendor order (unique
    indexes): a replay records nothing twice.

    Where the sale was already paid out (its payout `paid` with a transfer), the reversal is linked to that
    payout — it is taken back from the transfer, not from the next payout — and returned, per payout, for the
    caller to reverse at Stripe; if that reversal fails, `release_reversals` unlinks it and it becomes a debt
    netted from the vendor's next payout. Otherwise (not paid out yet, or in a payout still in flight) the
    reversal stays unlinked: the next payout nets it."""
    by_line = {unit.order_line_id: unit for unit in units}
    reversed_: list[tuple[Any, rules.LedgerShare]] = []
    if by_line:
        for sale in (await connection.execute(select(ENTRY).where(ENTRY.c.order_line_id.in_(list(by_line)),
                                                                  ENTRY.c.kind == "sale"))).all():
            unit = by_line[sale.order_line_id]
            reversed_.append((sale, rules.reversed_share(sale.line_amount, sale.commission_amount,
                                                         unit.line_quantity, unit.first_unit, unit.quantity)))
    if shipping_of is not None:
        for sale in (await connection.execute(select(ENTRY).where(ENTRY.c.order_id == shipping_of,
                                                                  ENTRY.c.kind == "shipping"))).all():
            reversed_.append((sale, rules.LedgerShare(sale.commission_amount, sale.vendor_amount)))
    if not reversed_:
        return []
    paid = {row.transaction_id: row for row in (await connection.execute(
        select(LINK.c.transaction_id, PAYOUT.c.id, PAYOUT.c.stripe_transfer_id)
        .join(PAYOUT, and_(PAYOUT.c.tenant_id == LINK.c.tenant_id, PAYOUT.c.id == LINK.c.payout_id))
        .where(LINK.c.transaction_id.in_([sale.id for sale, _ in reversed_]), PAYOUT.c.status == "paid",
               PAYOUT.c.stripe_transfer_id.is_not(None)))).all()}
    now = datetime.now(UTC)
    shares: dict[uuid.UUID, PaidOutShare] = {}
    for sale, share in reversed_:
        entry_id = uuid.uuid4()
        inserted = (await connection.execute(pg_insert(ENTRY).values(
            tenant_id=sale.tenant_id, id=entry_id, vendor_id=sale.vendor_id, order_id=sale.order_id,
            vendor_order_id=sale.vendor_order_id, order_line_id=sale.order_line_id, kind="reversal",
            refund_id=refund_id, currency_code=sale.currency_code, line_amount=-(share.commission + share.vendor),
            commission_amount=-share.commission, vendor_amount=-share.vendor, rule_id=sale.rule_id,
            available_at=now).on_conflict_do_nothing().returning(ENTRY.c.id))).scalar()
        payout = paid.get(sale.id)
        if inserted is None or payout is None or share.vendor == 0:
            continue
        await connection.execute(insert(LINK).values(tenant_id=sale.tenant_id, payout_id=payout.id,
                                                     transaction_id=entry_id))
        before = shares.get(payout.id)
        shares[payout.id] = PaidOutShare(sale.vendor_id, payout.id, payout.stripe_transfer_id,
                                         (before.amount if before else 0) + share.vendor, sale.currency_code)
    return list(shares.values())


async def release_reversals(connection: AsyncConnection, refund_id: uuid.UUID, payout_id: uuid.UUID) -> None:
    """The refund's reversals taken back from the payout's transfer could not be (the vendor's balance did not
    cover them): unlinked, they are a debt the vendor's next payout nets."""
    entries = select(ENTRY.c.id).where(ENTRY.c.refund_id == refund_id, ENTRY.c.kind == "reversal")
    await connection.execute(delete(LINK).where(LINK.c.payout_id == payout_id, LINK.c.transaction_id.in_(entries)))


async def restore_reversals(connection: AsyncConnection, refund_id: uuid.UUID) -> int:
    """A refund failed at Stripe after its reversals were recorded: a `restored` entry per reversal gives the
    commission and the vendor share back (available at once: paid with the next payout). Once per refund."""
    reversals = (await connection.execute(select(ENTRY).where(ENTRY.c.refund_id == refund_id,
                                                              ENTRY.c.kind == "reversal"))).all()
    if not reversals:
        return 0
    now = datetime.now(UTC)
    await connection.execute(pg_insert(ENTRY).on_conflict_do_nothing(), [{
        "tenant_id": entry.tenant_id, "id": uuid.uuid4(), "vendor_id": entry.vendor_id, "order_id": entry.order_id,
        "vendor_order_id": entry.vendor_order_id, "order_line_id": entry.order_line_id, "kind": "restored",
        "refund_id": refund_id, "currency_code": entry.currency_code, "line_amount": -entry.line_amount,
        "commission_amount": -entry.commission_amount, "vendor_amount": -entry.vendor_amount,
        "rule_id": entry.rule_id, "available_at": now} for entry in reversals])
    return len(reversals)


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
