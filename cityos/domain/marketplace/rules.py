"""Pure marketplace rules: which commission rule applies to a line, and what it takes.

Choosing the rule. A rule matches a line when its scope names the line's tenant (scope `tenant`), store, vendor,
one of the product's categories, or the product, and the line's time is inside [effective_from, effective_to).
The most specific scope wins: product > category > vendor > store > tenant. Ties inside one scope (two
categories of the product, overlapping periods) go to the latest effective_from (a rule without one counts as
the oldest), then to the smallest rule id — a total order, so the choice never depends on the rules' order.
Without any matching rule the platform default (STRIPE_PLATFORM_FEE_PERCENT) applies.

Computing it. commission = round_half_up(line × percentage / 100) + flat_per_line, then raised to `minimum`,
lowered to `maximum`, and finally kept within [0, line]. The vendor's share is line − commission, so the two
always add up to the line exactly.

Promotions (`PromotionFunding`): the line the commission is priced on is the line before promotions less the part
its vendor funds; the vendor's share is that less the commission; the platform's part comes off the commission.

A vendor's own shipping (a vendor order priced by the vendor's own shipping option) is the vendor's: commission
rules do not apply to it; the platform keeps round_half_up(shipping × CITYOS_SHIPPING_COMMISSION_PERCENT / 100),
by default 0 %, so by default the vendor gets all of it. Shipping by the store's option (shared by the vendors
without their own) is the platform's and never enters the ledger. A refund gives shipping back whole, so its
reversal is the whole entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from cityos.domain.base import decimal_problem
from cityos.domain.commerce.rules import allocate
from cityos.domain.kernel import round_half_up
from cityos.errors import BadUserInput

SCOPE_SPECIFICITY = {"tenant": 0, "store": 1, "vendor": 2, "category": 3, "product": 4}


@dataclass(frozen=True)
class Rule:
    id: uuid.UUID
    scope: str
    scope_id: uuid.UUID | None
    percentage: Decimal | None = None
    flat_per_line: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    effective_from: datetime | None = None
    effective_to: datetime | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPE_SPECIFICITY:
            raise BadUserInput(f"scope must be one of {', '.join(SCOPE_SPECIFICITY)}", field="scope")
        if (self.scope == "tenant") != (self.scope_id is None):
            raise BadUserInput("a tenant rule has no scopeId; every other scope needs one", field="scopeId")
        if self.percentage is None and self.flat_per_line is None:
            raise BadUserInput("a rule needs a percentage, a flat amount per line, or both", field="percentage")
        if self.percentage is not None and (problem := decimal_problem(self.percentage, places=4,
                                                                       field="percentage")):
            raise BadUserInput(problem, field="percentage")
        if self.percentage is not None and not Decimal(0) <= self.percentage <= Decimal(100):
            raise BadUserInput("percentage must be between 0 and 100", field="percentage")
        for name in ("flat_per_line", "minimum", "maximum"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise BadUserInput(f"{name} must not be negative", field=name)
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise BadUserInput("minimum must not exceed maximum", field="minimum")
        if self.effective_from and self.effective_to and self.effective_from >= self.effective_to:
            raise BadUserInput("effectiveFrom must be before effectiveTo", field="effectiveFrom")

    def take(self, line_amount: int) -> int:
        commission = 0
        if self.percentage is not None:
            commission += round_half_up(Decimal(line_amount) * self.percentage / Decimal(100))
        commission += self.flat_per_line or 0
        if self.minimum is not None:
            commission = max(commission, self.minimum)
        if self.maximum is not None:
            commission = min(commission, self.maximum)
        return max(0, min(commission, line_amount))


@dataclass(frozen=True)
class Line:
    amount: int  # what the customer paid for the line, minor units
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    vendor_id: uuid.UUID
    product_id: uuid.UUID
    category_ids: frozenset[uuid.UUID]
    at: datetime


@dataclass(frozen=True)
class Commission:
    commission: int
    vendor_share: int
    rule_id: uuid.UUID | None


def _matches(rule: Rule, line: Line) -> bool:
    scope_ids: dict[str, set[uuid.UUID | None]] = {
        "tenant": {None}, "store": {line.store_id}, "vendor": {line.vendor_id},
        "category": set(line.category_ids), "product": {line.product_id}}
    if rule.scope_id not in scope_ids[rule.scope]:
        return False
    if rule.effective_from is not None and line.at < rule.effective_from:
        return False
    return not (rule.effective_to is not None and line.at >= rule.effective_to)


def _precedence(rule: Rule) -> tuple[int, float, str]:
    started = rule.effective_from.timestamp() if rule.effective_from else float("-inf")
    return (-SCOPE_SPECIFICITY[rule.scope], -started, str(rule.id))


def choose_rule(line: Line, rules: Iterable[Rule]) -> Rule | None:
    matching = [rule for rule in rules if _matches(rule, line)]
    return min(matching, key=_precedence) if matching else None


def commission_for(line: Line, rules: Sequence[Rule], default_percentage: Decimal) -> Commission:
    if line.amount < 0:
        raise ValueError("a line amount is never negative")
    rule = choose_rule(line, rules)
    if rule is None:
        taken = max(0, min(round_half_up(Decimal(line.amount) * default_percentage / Decimal(100)), line.amount))
        return Commission(taken, line.amount - taken, None)
    taken = rule.take(line.amount)
    return Commission(taken, line.amount - taken, rule.id)


def shipping_commission(amount: int, percentage: Decimal) -> Commission:
    """What the platform keeps of a vendor's own shipping (`amount` ≥ 0) at `percentage`, and the vendor's share."""
    taken = max(0, min(round_half_up(Decimal(amount) * percentage / Decimal(100)), amount))
    return Commission(taken, amount - taken, None)


def units_part(amount: int, quantity: int, first: int, count: int) -> int:
    """The part of `amount` (split over `quantity` units by largest remainder) of units first … first+count−1."""
    if first < 0 or count <= 0 or first + count > quantity:
        raise ValueError("units outside the line")
    return sum(allocate(amount, [1] * quantity)[first:first + count])


@dataclass(frozen=True)
class LedgerShare:
    commission: int
    vendor: int


def reversed_share(line_total: int, commission: int, quantity: int, first: int, count: int) -> LedgerShare:
    """The part of a sale (line total = commission + vendor share) that a refund of units first … first+count−1
    takes back: each split over the units by largest remainder. A platform-funded promotion can leave the
    commission negative (the platform gave more than it earned on the line): then the vendor share (above the line
    total) is the part split over the units, the commission the rest — still exact over every unit."""
    amount = units_part(line_total, quantity, first, count)
    if commission < 0:
        vendor = units_part(line_total - commission, quantity, first, count)
        return LedgerShare(amount - vendor, vendor)
    taken = units_part(commission, quantity, first, count)
    return LedgerShare(taken, amount - taken)


@dataclass(frozen=True)
class PromotionFunding:
    """A sale line's promotion discount and who funds it (the promotions context's funding split), and how the
    ledger prices the line from it:
    - the commission is priced on the line before promotions less what the vendor funds (`commission_base`):
      a platform-funded discount leaves the commission base unchanged, a vendor-funded one shrinks it;
    - the vendor's share is that base less the commission (never negative: a commission never exceeds its base);
    - the platform's commission is the commission less what the platform funds (negative when it funds more).
    commission + vendor share = what the customer paid for the line, exactly."""

    paid: int  # the line's total after promotions
    discount: int
    vendor: int  # funded by the vendor
    platform: int  # funded by the platform

    @classmethod
    def of_line(cls, paid: int, discount: int, vendor_funded: int) -> PromotionFunding:
        if discount < 0 or not 0 <= vendor_funded <= discount:
            raise ValueError("a promotion discount is not negative and the vendor funds at most all of it")
        return cls(paid, discount, vendor_funded, discount - vendor_funded)

    @property
    def gross(self) -> int:
        return self.paid + self.discount

    @property
    def commission_base(self) -> int:
        return self.gross - self.vendor

    def share(self, taken: Commission) -> LedgerShare:
        return LedgerShare(taken.commission - self.platform, self.commission_base - taken.commission)
def available_after_payment(sold_at: datetime, paid_at: datetime, hold: timedelta) -> datetime:
    """When the vendor's share of a sale on account may be paid out: never before the customer paid the invoice,
    and never before the usual hold after the sale ended (the later of the two)."""
    return max(sold_at + hold, paid_at)
