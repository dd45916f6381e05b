"""Pure catalog rules: volume (tier) pricing and company price lists.

The unit price of a line of `quantity` units is the lowest of the list price, the prices of every product/variant
tier whose `min_quantity` the quantity reaches, and the prices of every entry of the buyer's company price list
(its variant's, product's and categories' entries are tiers too) whose `min_quantity` it reaches. A tier is
either a percentage off the list price or a fixed unit price.
Percentages round half up to the minor unit: round_half_up(list × (100 − percent) / 100). Taking the lowest
reached price makes the rule monotone (more units never cost more per unit), exact at tier boundaries (a tier
applies from its min_quantity on), never above the list price and never below zero, whatever the tier set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cityos.domain.base import decimal_problem
from cityos.errors import BadUserInput

MAX_LINE_QUANTITY = 10_000


@dataclass(frozen=True)
class Tier:
    min_quantity: int
    percent_off: Decimal | None = None
    unit_amount: int | None = None

    def __post_init__(self) -> None:
        if self.min_quantity < 1:
            raise BadUserInput("a tier's minQuantity must be at least 1", field="minQuantity")
        if (self.percent_off is None) == (self.unit_amount is None):
            raise BadUserInput("a tier has either percentOff or unitAmount", field="percentOff")
        if self.percent_off is not None and (problem := decimal_problem(self.percent_off, places=2,
                                                                        field="percentOff")):
            raise BadUserInput(problem, field="percentOff")
        if self.percent_off is not None and not Decimal(0) < self.percent_off <= Decimal(100):
            raise BadUserInput("percentOff must be in (0, 100]", field="percentOff")
        if self.unit_amount is not None and self.unit_amount < 0:
            raise BadUserInput("unitAmount must not be negative", field="unitAmount")

    def price(self, list_amount: int) -> int:
        if self.unit_amount is not None:
            return self.unit_amount
        assert self.percent_off is not None
        exact = Decimal(list_amount) * (Decimal(100) - self.percent_off) / Decimal(100)
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def unit_price(list_amount: int, quantity: int, tiers: Sequence[Tier], company_tiers: Sequence[Tier] = ()) -> int:
    """The one pricing rule: lowest of list, reached volume tiers and reached company price-list entries."""
    if list_amount < 0:
        raise BadUserInput("a list price must not be negative", field="amount")
    if quantity < 1:
        raise BadUserInput("quantity must be at least 1", field="quantity")
    reached = [tier.price(list_amount) for tier in (*tiers, *company_tiers) if tier.min_quantity <= quantity]
    return max(0, min([list_amount, *reached]))


def validate_quantity(quantity: int) -> int:
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise BadUserInput(f"quantity must be between 1 and {MAX_LINE_QUANTITY}", field="quantity")
    return quantity


def validate_tiers(tiers: Sequence[Tier]) -> list[Tier]:
    minimums = [tier.min_quantity for tier in tiers]
    if len(set(minimums)) != len(minimums):
        raise BadUserInput("two tiers start at the same quantity", field="tiers")
    return sorted(tiers, key=lambda tier: tier.min_quantity)
