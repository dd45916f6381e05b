"""Pure commerce rules: shipping price, tax, and exact allocation of amounts across vendors.

Rounding rules, written down:
- Tax is computed once per cart on the taxable amount T = discounted subtotal + shipping, at the rate of the
  shipping address's state when the region sets one for it, else the region's rate.
  - Tax-exclusive regions: tax = T × rate, rounded half up to the minor unit (Decimal ROUND_HALF_UP: 0.5 cent and
    above rounds away from zero); the customer pays T + tax.
  - Tax-inclusive regions (prices include the tax): tax = T − round_half_up(T ÷ (1 + rate)), the part of T the rate
    accounts for; the customer pays T, and the tax is never more than T.
- Discounts are the tier savings plus the promotions' parts of each line (promotions/rules.py); a line's total is
  what is left, never negative. Free shipping (a promotion) makes the chosen option's price 0.
- Shipping (`shipping_price`): an option is offered from its `min_subtotal`; it is free from `free_above`; with
  weight bands, the first band whose `up_to_grams` is at least the parcel's weight sets the price (an open last
  band has no limit; a parcel heavier than every band is not offered this option). Subtotals here are discounted.
- Per-vendor shipping (`quote_shipping`): a vendor with its own option of the chosen code has its items priced by
  it, on its own subtotal and weight; the items of every other vendor are priced together by the store's option.
  One checkout charges the sum.
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
from cityos.domain.kernel import allocate as allocate  # the largest-remainder rule (shared with promotions)
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


def tax_amount(taxable: int, rate: Decimal, inclusive: bool = False) -> int:
    """The tax on `taxable` minor units (added to it), or, when `inclusive`, the tax contained in it."""
    if taxable <= 0 or rate <= 0:
        return 0
    if inclusive:
        return taxable - round_half_up(Decimal(taxable) / (1 + rate))
    return round_half_up(Decimal(taxable) * rate)


def validate_tax_rate(rate: Decimal, field: str) -> Decimal:
    """A tax rate is a decimal fraction in [0, 1) with at most 4 decimal places (0.0825 is 8.25 %)."""
    if not rate.is_finite() or rate < 0 or rate >= 1:
        raise BadUserInput("a tax rate is a fraction from 0 up to (not including) 1, e.g. 0.0825", field=field)
    exponent = rate.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise BadUserInput("a tax rate has at most 4 decimal places", field=field)
    return rate


@dataclass(frozen=True)
class WeightBand:
    up_to_grams: int | None  # None: no upper limit (only the last band)
    amount: int


@dataclass(frozen=True)
class ShippingRate:
    """How one shipping option prices a parcel (see the module's rules)."""

    amount: int
    min_subtotal: int | None = None
    free_above: int | None = None
    bands: tuple[WeightBand, ...] = ()


def validate_weight_bands(bands: Sequence[WeightBand]) -> tuple[WeightBand, ...]:
    """Weight bands must rise strictly, cost no negative amount, and only the last may be open."""
    previous = 0
    for index, band in enumerate(bands):
        if band.amount < 0:
            raise BadUserInput("a weight band's amount cannot be negative", field="weightBands")
        if band.up_to_grams is None:
            if index != len(bands) - 1:
                raise BadUserInput("only the last weight band may be open (no upToGrams)", field="weightBands")
            continue
        if band.up_to_grams <= previous:
            raise BadUserInput("weight bands rise strictly: each upToGrams above the one before, above 0",
                               field="weightBands")
        previous = band.up_to_grams
    return tuple(bands)


def shipping_price(rate: ShippingRate, subtotal: int, weight_grams: int) -> int | None:
    """What `rate` charges for a parcel of `subtotal` (discounted) and weight, or None when it is not offered."""
    if not shipping_offered(rate.min_subtotal, subtotal):
        return None
    if rate.free_above is not None and subtotal >= rate.free_above:
        return 0
    if not rate.bands:
        return rate.amount
    for band in rate.bands:
        if band.up_to_grams is None or weight_grams <= band.up_to_grams:
            return band.amount
    return None


@dataclass(frozen=True)
class Parcel:
    """A vendor's items of a cart: discounted subtotal and weight."""

    vendor_id: uuid.UUID | None
    subtotal: int
    weight_grams: int


@dataclass(frozen=True)
class ShippingQuote:
    store: int  # the store's option, on the items of vendors without their own
    vendors: dict[uuid.UUID, int]  # each vendor's own option on its own items

    @property
    def total(self) -> int:
        return self.store + sum(self.vendors.values())


def quote_shipping(parcels: Sequence[Parcel], store_rate: ShippingRate,
                   vendor_rates: dict[uuid.UUID, ShippingRate]) -> ShippingQuote | None:
    """The shipping of a cart for one option code (module rules); None when any part is not offered."""
    own: dict[uuid.UUID, int] = {}
    rest_subtotal = rest_weight = 0
    rest = False
    for parcel in parcels:
        rate = vendor_rates.get(parcel.vendor_id) if parcel.vendor_id is not None else None
        if rate is None or parcel.vendor_id is None:
            rest, rest_subtotal, rest_weight = True, rest_subtotal + parcel.subtotal, rest_weight + parcel.weight_grams
            continue
        price = shipping_price(rate, parcel.subtotal, parcel.weight_grams)
        if price is None:
            return None
        own[parcel.vendor_id] = price
    store = 0
    if rest or not parcels:
        price = shipping_price(store_rate, rest_subtotal, rest_weight)
        if price is None:
            return None
        store = price
    return ShippingQuote(store, own)


@dataclass(frozen=True)
class PricedLine:
    """A cart line with its prices settled: list price and the unit price after volume pricing."""

    variant_id: uuid.UUID
    vendor_id: uuid.UUID | None
    quantity: int
    list_unit_price: int
    unit_price: int
    promotion_discount: int = 0  # the line's part of the promotions' discounts (promotions/rules.py)
    promotion_vendor_funded: int = 0  # the part of it the line's vendor funds

    @property
    def subtotal(self) -> int:
        return self.list_unit_price * self.quantity

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity - self.promotion_discount

    @property
    def discount(self) -> int:
        return self.subtotal - self.total


@dataclass(frozen=True)
class Totals:
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    tax_inclusive: bool = False  # the tax is contained in the subtotal and shipping, not added to them

    @property
    def total(self) -> int:
        return self.subtotal - self.discount_total + self.shipping_total + (0 if self.tax_inclusive
                                                                            else self.tax_total)


def cart_totals(lines: Sequence[PricedLine], shipping: int, tax_rate: Decimal, tax_inclusive: bool = False) -> Totals:
    """Subtotal at list prices, discounts (tier savings and promotions), shipping, and tax on (subtotal − discounts +
    shipping): added to it, or contained in it when the region's prices include tax."""
    subtotal = sum(line.subtotal for line in lines)
    discount = sum(line.discount for line in lines)
    return Totals(subtotal, discount, shipping, tax_amount(subtotal - discount + shipping, tax_rate, tax_inclusive),
                  tax_inclusive)


def split_by_vendor(lines: Sequence[PricedLine], totals: Totals,
                    own_shipping: dict[uuid.UUID, int] | None = None) -> dict[uuid.UUID | None, Totals]:
    """One Totals per vendor (in the order vendors first appear). Subtotals and discounts are the vendor's own
    lines. A vendor with its own shipping (`own_shipping`, from quote_shipping) gets exactly that; the rest of the
    shipping is allocated by largest remainder on the other vendors' discounted subtotals; tax is allocated by
    largest remainder on all vendors' discounted subtotals. Every column of the parts sums exactly to the cart's."""
    own = own_shipping or {}
    vendors: dict[uuid.UUID | None, list[PricedLine]] = {}
    for line in lines:
        vendors.setdefault(line.vendor_id, []).append(line)
    weights = [sum(line.total for line in group) for group in vendors.values()]
    shared = [vendor is None or vendor not in own for vendor in vendors]
    rest = totals.shipping_total - sum(own.get(vendor, 0) for vendor in vendors if vendor is not None)
    if rest < 0 or (rest and not any(shared)):
        raise ValueError("the vendors' own shipping does not fit the cart's shipping total")
    shared_parts = iter(allocate(rest, [weight for weight, is_shared in zip(weights, shared, strict=True)
                                        if is_shared]))
    shipping = [next(shared_parts) if is_shared else own[vendor]  # type: ignore[index]
                for vendor, is_shared in zip(vendors, shared, strict=True)]
    tax = allocate(totals.tax_total, weights)
    return {vendor: Totals(sum(line.subtotal for line in group), sum(line.discount for line in group),
                           shipping[index], tax[index], totals.tax_inclusive)
            for index, (vendor, group) in enumerate(vendors.items())}


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELED, OrderStatus.AWAITING_PAYMENT}),
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset({OrderStatus.COMPLETED, OrderStatus.REFUNDED}),
    OrderStatus.COMPLETED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
    # A company buyer's order waiting for approval: approved → pending (card: the buyer pays) or awaiting_payment
    # (on account); rejected → canceled. Only the approval moves it (AUTOMATIC_ONLY).
    OrderStatus.PENDING_APPROVAL: frozenset({OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT,
                                             OrderStatus.CANCELED}),
    # On account: fulfilled as any order while the invoice is open; paid when the invoice is.
    OrderStatus.AWAITING_PAYMENT: frozenset({OrderStatus.PAID}),
}
# Statuses an order enters and leaves only through its own process (the company's approvals, placing on account,
# the invoice's payment), never by an admin's updateOrderStatus.
AUTOMATIC_ONLY = frozenset({OrderStatus.PENDING_APPROVAL, OrderStatus.AWAITING_PAYMENT})


def check_manual_transition(current: str, target: str) -> OrderStatus:
    """An admin's status change: the state machine, except out of a status only its own process leaves."""
    from cityos.errors import InvalidStateTransition

    if current in AUTOMATIC_ONLY or target in AUTOMATIC_ONLY:
        raise InvalidStateTransition("an order enters and leaves pending_approval and awaiting_payment through its "
                                     "approval and its invoice only", **{"from": current, "to": target})
    return next_order_status(current, target)


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
