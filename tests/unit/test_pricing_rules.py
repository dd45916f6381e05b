from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.catalog.rules import Tier, unit_price, validate_quantity, validate_tiers
from cityos.domain.commerce.rules import (
    PricedLine,
    allocate,
    cart_totals,
    next_order_status,
    shipping_offered,
    split_by_vendor,
    tax_amount,
)
from cityos.errors import BadUserInput, InvalidStateTransition

VENDORS = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
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


lines_strategy = st.lists(st.builds(
    PricedLine, variant_id=st.uuids(), vendor_id=st.sampled_from([None, *VENDORS]),
    quantity=st.integers(1, 50), list_unit_price=st.integers(0, 50_000),
    unit_price=st.integers(0, 50_000)).filter(lambda line: line.unit_price <= line.list_unit_price),
    min_size=1, max_size=10)


@given(lines_strategy, st.integers(0, 5000), st.decimals(Decimal(0), Decimal("0.25"), places=4))
def test_vendor_orders_sum_exactly_to_the_order(lines: list[PricedLine], shipping: int, rate: Decimal) -> None:
    totals = cart_totals(lines, shipping, rate)
    parts = split_by_vendor(lines, totals)
    assert set(parts) == {line.vendor_id for line in lines}
    for column in ("subtotal", "discount_total", "shipping_total", "tax_total", "total"):
        assert sum(getattr(part, column) for part in parts.values()) == getattr(totals, column)
    assert all(part.total >= 0 for part in parts.values())


def test_cart_totals_with_tiers_shipping_and_tax() -> None:
    lines = [PricedLine(uuid.uuid4(), VENDORS[0], 10, 1200, 1092), PricedLine(uuid.uuid4(), VENDORS[1], 1, 4500, 4500)]
    totals = cart_totals(lines, 500, Decimal("0.0825"))
    assert (totals.subtotal, totals.discount_total, totals.shipping_total) == (16500, 1080, 500)
    assert totals.tax_total == 1313  # (16500 − 1080 + 500) × 8.25 % = 1313.4 → 1313
    assert totals.total == 16500 - 1080 + 500 + totals.tax_total


def test_order_state_machine() -> None:
    assert next_order_status("pending", "paid") == "paid"
    assert next_order_status("paid", "fulfilled") == "fulfilled"
    assert next_order_status("fulfilled", "completed") == "completed"
    assert next_order_status("paid", "refunded") == "refunded"
    for current, target in (("pending", "fulfilled"), ("completed", "paid"), ("canceled", "paid"),
                            ("fulfilled", "canceled"), ("paid", "shipped")):
        with pytest.raises(InvalidStateTransition) as raised:
            next_order_status(current, target)
        assert raised.value.extensions["code"] == "INVALID_STATE_TRANSITION"


@given(st.integers(0, 100_000), tiers, tiers, st.integers(1, 500), st.integers(1, 500))
def test_company_price_list_is_the_lowest_of_three_and_keeps_the_rule_monotone(
        list_amount: int, tier_set: list[Tier], company: list[Tier], a: int, b: int) -> None:
    """With a company list the price is the lowest of list, volume tiers and the company's entries: never above
    either alone, still monotone in the quantity, never negative."""
    low, high = sorted((a, b))
    both = unit_price(list_amount, low, tier_set, company)
    assert both == min(unit_price(list_amount, low, tier_set), unit_price(list_amount, low, company))
    assert 0 <= unit_price(list_amount, high, tier_set, company) <= both <= list_amount


def test_a_company_entry_beats_a_tier_only_where_it_is_lower_and_reached() -> None:
    company = [Tier(10, percent_off=Decimal("15"))]
    assert unit_price(2400, 9, [Tier(12, percent_off=Decimal("10"))], company) == 2400  # nothing reached
    assert unit_price(2400, 10, [Tier(12, percent_off=Decimal("10"))], company) == 2040  # the company's 15%
    assert unit_price(1900, 30, [Tier(20, unit_amount=1500)], [Tier(30, unit_amount=1450)]) == 1450
    assert unit_price(1900, 30, [Tier(20, unit_amount=1400)], [Tier(30, unit_amount=1450)]) == 1400  # tier lower
