"""Pure commerce rules: shipping price, tax, and exact allocation of amounts across vendors.

Rounding rules, written down:
- Tax is computed once per cart on (discounted subtotal + shipping) × the region's rate, rounded half up to the
  minor unit (Decimal ROUND_HALF_UP): 0.5 cent and above rounds away from zero.
- Allocations (a cart's shipping and tax split across vendor orders) use the largest-remainder method on the
  vendors' subtotals: each part is floor(total × weight / Σweights); the cents left over go one each to the
  parts with the largest fractional remainders, ties to the earlier part. The parts always sum to the total.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cityos.domain.kernel import OrderStatus, round_half_up
from cityos.errors import BadUserInput

US_ZIP_CODE = re.compile(r"[0-9]{5}(?:-[0-9]{4})?")


def validate_postal_code(country_code: str, value: str) -> str:
    """A shipping address's postal code, trimmed. In the US it must be a ZIP code (12345) or ZIP+4 (12345-6789);
    other countries' formats are not checked here. BAD_USER_INPUT names `address.postalCode`."""
    code = value.strip()
    if not code:
        raise BadUserInput("the address needs a postal code", field="address.postalCode")
    if country_code.lower() == "us" and not US_ZIP_CODE.fullmatch(code):
        raise BadUserInput(f"{code!r} is not a US ZIP code: 5 digits (12345) or ZIP+4 (12345-6789)",
                           field="address.postalCode")
    return code


def shipping_offered(min_subtotal: int | None, subtotal: int) -> bool:
    """A shipping option with a minimum subtotal (e.g. free shipping from $50) is offered from that subtotal on."""
    return min_subtotal is None or subtotal >= min_subtotal


def tax_amount(taxable: int, rate: Decimal) -> int:
    if taxable <= 0 or rate <= 0:
        return 0
    return round_half_up(Decimal(taxable) * rate)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` (≥ 0) in proportion to non-negative `weights`; the parts sum exactly to `total`."""
    if total < 0 or any(weight < 0 for weight in weights):
        raise ValueError("allocate needs a non-negative total and weights")
    if not weights:
        if total:
            raise ValueError("cannot allocate a non-zero total to no parts")
        return []
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights, weight_sum = [1] * len(weights), len(weights)
    floors = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in order[:left]:
        floors[index] += 1
    return floors


@dataclass(frozen=True)
class PricedLine:
    """A cart line with its prices settled: list price and the unit price after volume pricing."""

    variant_id: uuid.UUID
    vendor_id: uuid.UUID | None
    quantity: int
    list_unit_price: int
    unit_price: int

    @property
    def subtotal(self) -> int:
        return self.list_unit_price * self.quantity

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def discount(self) -> int:
        return self.subtotal - self.total


@dataclass(frozen=True)
class Totals:
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int

    @property
    def total(self) -> int:
        return self.subtotal - self.discount_total + self.shipping_total + self.tax_total


def cart_totals(lines: Sequence[PricedLine], shipping: int, tax_rate: Decimal) -> Totals:
    """Subtotal at list prices, tier discounts, shipping, and tax on (subtotal − discounts + shipping)."""
    subtotal = sum(line.subtotal for line in lines)
    discount = sum(line.discount for line in lines)
    return Totals(subtotal, discount, shipping, tax_amount(subtotal - discount + shipping, tax_rate))


def split_by_vendor(lines: Sequence[PricedLine], totals: Totals) -> dict[uuid.UUID | None, Totals]:
    """One Totals per vendor (in the order vendors first appear). Subtotals and discounts are the vendor's own
    lines; shipping and tax are allocated by largest remainder on the vendors' discounted subtotals, so every
    column of the parts sums exactly to the cart's."""
    vendors: dict[uuid.UUID | None, list[PricedLine]] = {}
    for line in lines:
        vendors.setdefault(line.vendor_id, []).append(line)
    weights = [sum(line.total for line in group) for group in vendors.values()]
    shipping = allocate(totals.shipping_total, weights)
    tax = allocate(totals.tax_total, weights)
    return {vendor: Totals(sum(line.subtotal for line in group), sum(line.discount for line in group),
                           shipping[index], tax[index])
            for index, (vendor, group) in enumerate(vendors.items())}


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELED}),
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset({OrderStatus.COMPLETED, OrderStatus.REFUNDED}),
    OrderStatus.COMPLETED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}


def next_order_status(current: str, target: str) -> OrderStatus:
    """The order state machine: pending → paid → fulfilled → completed; cancel before fulfilment; refund after
    payment. Anything else is an InvalidStateTransition."""
    from cityos.errors import InvalidStateTransition

    if target not in ORDER_TRANSITIONS:
        raise InvalidStateTransition(f"unknown order status {target!r}", **{"from": current, "to": target})
    if target not in ORDER_TRANSITIONS.get(current, frozenset()):  # type: ignore[call-overload]
        raise InvalidStateTransition(f"an order cannot go from {current} to {target}",
                                     **{"from": current, "to": target})
    return OrderStatus(target)
