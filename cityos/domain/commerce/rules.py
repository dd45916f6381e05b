"""Pure commerce rules: shipping price, tax, and exact allocation of amounts across vendors.

Rounding rules, written down:
- Tax is computed once per cart on (discounted subtotal + shipping) × the region's rate, rounded half up to the
  minor unit (Decimal ROUND_HALF_UP): 0.5 cent and above rounds away from zero.
- Allocations (a cart's shipping and tax split across vendor orders) use the largest-remainder method on the
  vendors' subtotals: each part is floor(total × weight / Σweights); the cents left over go one each to the
  parts with the largest fractional remainders, ties to the earlier part. The parts always sum to the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


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
