from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.catalog.rules import Tier, unit_price, validate_quantity, validate_tiers
from cityos.domain.commerce.rules import allocate, shipping_offered, tax_amount
from cityos.errors import BadUserInput

EXAMPLE = [Tier(10, percent_off=Decimal("9")), Tier(50, unit_amount=700)]


def test_the_example_tiers_apply_exactly_at_their_boundaries() -> None:
    assert unit_price(1000, 1, EXAMPLE) == 1000
    assert unit_price(1000, 9, EXAMPLE) == 1000
    assert unit_price(1000, 10, EXAMPLE) == 910
    assert unit_price(1000, 49, EXAMPLE) == 910
    assert unit_price(1000, 50, EXAMPLE) == 700


def test_percentages_round_half_up() -> None:
    assert unit_price(5, 1, [Tier(1, percent_off=Decimal("10"))]) == 5  # 4.5 → 5
    assert unit_price(15, 1, [Tier(1, percent_off=Decimal("10"))]) == 14  # 13.5 → 14
    assert unit_price(14, 1, [Tier(1, percent_off=Decimal("10"))]) == 13  # 12.6 → 13
    assert unit_price(999, 1, [Tier(1, percent_off=Decimal("100"))]) == 0


percent_tiers = st.builds(Tier, min_quantity=st.integers(1, 200),
                          percent_off=st.decimals(Decimal("0.01"), Decimal(100), places=2))
fixed_tiers = st.builds(Tier, min_quantity=st.integers(1, 200), unit_amount=st.integers(0, 100_000))
tiers = st.lists(st.one_of(percent_tiers, fixed_tiers), max_size=6)


@given(st.integers(0, 100_000), tiers, st.integers(1, 500), st.integers(1, 500))
def test_unit_price_is_monotone_bounded_and_never_negative(list_amount: int, tier_set: list[Tier], a: int,
                                                           b: int) -> None:
    low, high = sorted((a, b))
    assert 0 <= unit_price(list_amount, high, tier_set) <= unit_price(list_amount, low, tier_set) <= list_amount


@given(st.integers(0, 100_000), tiers)
def test_a_tier_applies_from_its_minimum_quantity(list_amount: int, tier_set: list[Tier]) -> None:
    for tier in tier_set:
        assert unit_price(list_amount, tier.min_quantity, tier_set) <= tier.price(list_amount)


def test_bad_tiers_and_quantities() -> None:
    for bad in ({"min_quantity": 0, "unit_amount": 1}, {"min_quantity": 1},
                {"min_quantity": 1, "unit_amount": 1, "percent_off": Decimal(1)},
                {"min_quantity": 1, "percent_off": Decimal(0)}, {"min_quantity": 1, "unit_amount": -1}):
        with pytest.raises(BadUserInput):
            Tier(**bad)
    with pytest.raises(BadUserInput):
        validate_tiers([Tier(5, unit_amount=1), Tier(5, unit_amount=2)])
    for quantity in (0, -1, 10_001):
        with pytest.raises(BadUserInput):
            validate_quantity(quantity)
    with pytest.raises(BadUserInput):
        unit_price(100, 0, [])


def test_free_shipping_is_offered_from_its_threshold() -> None:
    assert not shipping_offered(5000, 4999)
    assert shipping_offered(5000, 5000)
    assert shipping_offered(None, 0)


def test_tax_rounds_half_up() -> None:
    assert tax_amount(1000, Decimal("0.0825")) == 83  # 82.5 → 83
    assert tax_amount(1001, Decimal("0.0825")) == 83  # 82.58 → 83
    assert tax_amount(999, Decimal("0.0825")) == 82  # 82.4175 → 82
    assert tax_amount(0, Decimal("0.1")) == 0


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=12))
def test_allocations_sum_exactly_and_stay_proportional(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)
    weight_sum = sum(weights) or len(weights)
    for part, weight in zip(parts, weights or [1] * len(weights), strict=True):
        share = total * (weight if sum(weights) else 1) / weight_sum
        assert abs(part - share) < 1


def test_allocation_ties_go_to_the_earlier_part() -> None:
    assert allocate(1, [1, 1]) == [1, 0]
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(0, []) == []
