"""Pure rules of refunds and returns: what a refund of some units (and the shipping) gives back, what it takes
back from the commission ledger, and whether a return is still possible.

Amounts, written down (every split reuses commerce.rules.allocate, the largest-remainder rule):
- The order's tax is split over its lines and its shipping in proportion to their totals: a line's tax share
  and the shipping's tax share sum exactly to the order's tax.
- A line's total and its tax share are each split over its units; a refund of units first … first + n − 1
  gives back those units' parts. Refunds of a line in any number of steps sum exactly to the line's total and tax.
- The shipping is refunded whole (its amount and its tax share), at most once.
- Tax-inclusive orders: a line's total and the shipping already contain their tax shares, so a refund gives back
  the units' part of the line total and the shipping (the tax shares are recorded, not added); refunding
  everything gives back exactly the order's total.
- The commission ledger: a line's sale (commission + vendor share = line total) is split over its units the
  same way, so a refund of units reverses exactly their commission and vendor share (commission ≤ the unit's
  amount for every unit, so no vendor share goes negative), and refunding every unit reverses the whole sale.
- A refund never exceeds what was captured (the order's total) minus the refunds not failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cityos.domain.commerce.rules import allocate
from cityos.domain.marketplace.rules import units_part
from cityos.errors import BadUserInput, InvalidStateTransition

REFUNDABLE_STATUSES = frozenset({"paid", "fulfilled", "completed"})
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")


def tax_shares(line_totals: Sequence[int], shipping_total: int, tax_total: int) -> tuple[list[int], int]:
    """The order's tax split over its lines and its shipping (by their totals): (each line's, the shipping's)."""
    parts = allocate(tax_total, [*line_totals, shipping_total])
    return parts[:-1], parts[-1]


@dataclass(frozen=True)
class SoldLine:
    """An order line as sold, with how many of its units earlier refunds (not failed) gave back already."""

    id: uuid.UUID
    vendor_id: uuid.UUID | None
    quantity: int
    total: int
    refunded_units: int = 0


@dataclass(frozen=True)
class LineRequest:
    line_id: uuid.UUID
    quantity: int
    restock: bool = False


@dataclass(frozen=True)
class PlannedLine:
    line_id: uuid.UUID
    vendor_id: uuid.UUID | None
    first_unit: int
    quantity: int
    amount: int
    tax_amount: int
    restock: bool


@dataclass(frozen=True)
class RefundPlan:
    lines: tuple[PlannedLine, ...]
    shipping_amount: int  # shipping and its tax share (contained in it when the tax is inclusive)
    tax_inclusive: bool = False  # the lines' amounts contain their tax_amount

    @property
    def amount(self) -> int:
        return sum(line.amount + (0 if self.tax_inclusive else line.tax_amount)
                   for line in self.lines) + self.shipping_amount


@dataclass(frozen=True)
class OrderAmounts:
    status: str
    total: int
    shipping_total: int
    tax_total: int
    refunded: int  # the amounts of earlier refunds that did not fail
    shipping_refunded: bool
    tax_inclusive: bool = False


def check_refundable(status: str) -> None:
    if status not in REFUNDABLE_STATUSES:
        raise InvalidStateTransition(f"an order that is {status} cannot be refunded (only a paid order can)",
                                     **{"from": status, "to": "refunded"})


def plan_refund(order: OrderAmounts, lines: Sequence[SoldLine], requests: Sequence[LineRequest],
                refund_shipping: bool) -> RefundPlan:
    """What a refund of the requested units (and the shipping) gives back. BAD_USER_INPUT for an unknown or
    repeated line, more units than are left, an empty refund, or more than is refundable (extensions.refundable
    says how much is)."""
    check_refundable(order.status)
    refundable = order.total - order.refunded
    by_id = {line.id: line for line in lines}
    line_tax, shipping_tax = tax_shares([line.total for line in lines], order.shipping_total, order.tax_total)
    tax_of = {line.id: tax for line, tax in zip(lines, line_tax, strict=True)}
    seen: set[uuid.UUID] = set()
    planned = []
    for index, request in enumerate(requests):
        line = by_id.get(request.line_id)
        if line is None:
            raise BadUserInput("no such line in this order", field=f"lines.{index}.lineId", refundable=refundable)
        if request.line_id in seen:
            raise BadUserInput("a line appears twice", field=f"lines.{index}.lineId", refundable=refundable)
        seen.add(request.line_id)
        left = line.quantity - line.refunded_units
        if request.quantity < 1 or request.quantity > left:
            raise BadUserInput(f"{left} unit(s) of this line can still be refunded", field=f"lines.{index}.quantity",
                               refundableQuantity=left, refundable=refundable)
        first = line.refunded_units
        planned.append(PlannedLine(line.id, line.vendor_id, first, request.quantity,
                                   units_part(line.total, line.quantity, first, request.quantity),
                                   units_part(tax_of[line.id], line.quantity, first, request.quantity),
                                   request.restock))
    if refund_shipping and order.shipping_refunded:
        raise BadUserInput("the shipping was refunded already", field="refundShipping", refundable=refundable)
    shipping = order.shipping_total + (0 if order.tax_inclusive else shipping_tax) if refund_shipping else 0
    plan = RefundPlan(tuple(planned), shipping, order.tax_inclusive)
    if plan.amount <= 0:
        raise BadUserInput("nothing to refund: name lines and quantities, or the shipping", field="lines",
                           refundable=refundable)
    if plan.amount > refundable:
        raise BadUserInput(f"the refund ({plan.amount}) is more than is refundable ({refundable})", field="lines",
                           refundable=refundable, amount=plan.amount)
    return plan


def everything_left(lines: Sequence[SoldLine], shipping_refunded: bool, shipping_total: int,
                    restock: bool) -> tuple[list[LineRequest], bool]:
    """The requests of a full refund of what is left: every unit not refunded yet, and the shipping."""
    return ([LineRequest(line.id, line.quantity - line.refunded_units, restock) for line in lines
             if line.quantity > line.refunded_units], not shipping_refunded and shipping_total > 0)


def within_return_window(delivered_at: datetime | None, now: datetime, window_days: int) -> bool:
    """A return may be asked for until `window_days` after delivery; never before delivery, never with 0 days."""
    return delivered_at is not None and window_days > 0 and now <= delivered_at + timedelta(days=window_days)


RETURN_TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"approved", "rejected"}),
    "approved": frozenset({"received"}),
    "received": frozenset({"refunded"}),
    "rejected": frozenset(),
    "refunded": frozenset(),
}


def next_return_status(current: str, target: str) -> str:
    if target not in RETURN_TRANSITIONS.get(current, frozenset()):
        raise InvalidStateTransition(f"a return cannot go from {current} to {target}",
                                     **{"from": current, "to": target})
    return target
