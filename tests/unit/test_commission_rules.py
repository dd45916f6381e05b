from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.config import Settings
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.marketplace.rules import (
    Line,
    Rule,
    available_after_payment,
    choose_rule,
    commission_for,
    shipping_commission,
)
from cityos.errors import BadUserInput

T, S, V, P = (uuid.uuid4() for _ in range(4))
C1, C2 = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 11, 26, tzinfo=UTC)
LINE = Line(10_000, T, S, V, P, frozenset({C1, C2}), NOW)


def rule(scope: str, scope_id: uuid.UUID | None, **kwargs) -> Rule:
    return Rule(uuid.uuid4(), scope, scope_id, **kwargs)


def test_the_most_specific_scope_wins() -> None:
    rules = [rule("tenant", None, percentage=Decimal(10)), rule("store", S, percentage=Decimal(9)),
             rule("vendor", V, percentage=Decimal(8)), rule("category", C1, percentage=Decimal(7)),
             rule("product", P, percentage=Decimal(6))]
    for expected in (6, 7, 8, 9, 10):
        chosen = choose_rule(LINE, rules)
        assert chosen is not None and chosen.percentage == expected
        rules.remove(chosen)
    assert choose_rule(LINE, rules) is None


def test_ties_go_to_the_latest_start_then_the_smallest_id() -> None:
    older = rule("category", C1, percentage=Decimal(5), effective_from=NOW - timedelta(days=30))
    newer = rule("category", C2, percentage=Decimal(4), effective_from=NOW - timedelta(days=1))
    assert choose_rule(LINE, [older, newer]) == newer
    a = Rule(uuid.UUID(int=1), "category", C1, percentage=Decimal(3))
    b = Rule(uuid.UUID(int=2), "category", C2, percentage=Decimal(2))
    assert choose_rule(LINE, [b, a]) == a


def test_effective_periods() -> None:
    expired = rule("vendor", V, percentage=Decimal(1), effective_to=NOW)
    future = rule("vendor", V, percentage=Decimal(2), effective_from=NOW + timedelta(seconds=1))
    assert choose_rule(LINE, [expired, future]) is None


def test_kinds_minimum_maximum_and_default() -> None:
    assert commission_for(LINE, [rule("tenant", None, percentage=Decimal("12.5"))], Decimal(0)).commission == 1250
    assert commission_for(LINE, [rule("tenant", None, flat_per_line=75)], Decimal(0)).commission == 75
    both = rule("tenant", None, percentage=Decimal(1), flat_per_line=30)
    assert commission_for(LINE, [both], Decimal(0)).commission == 130
    floor = rule("tenant", None, percentage=Decimal(1), minimum=500)
    assert commission_for(LINE, [floor], Decimal(0)).commission == 500
    cap = rule("tenant", None, percentage=Decimal(50), maximum=2000)
    assert commission_for(LINE, [cap], Decimal(0)).commission == 2000
    default = commission_for(LINE, [], Decimal("2.5"))
    assert (default.commission, default.vendor_share, default.rule_id) == (250, 9750, None)
    half = Line(1, T, S, V, P, frozenset(), NOW)
    assert commission_for(half, [], Decimal(50)).commission == 1  # 0.5 → 1, half up


def test_bad_rules_are_refused() -> None:
    for kwargs in ({"scope": "galaxy", "scope_id": None, "percentage": Decimal(1)},
                   {"scope": "tenant", "scope_id": V, "percentage": Decimal(1)},
                   {"scope": "vendor", "scope_id": None, "percentage": Decimal(1)},
                   {"scope": "tenant", "scope_id": None},
                   {"scope": "tenant", "scope_id": None, "percentage": Decimal(101)},
                   {"scope": "tenant", "scope_id": None, "flat_per_line": -1},
                   {"scope": "tenant", "scope_id": None, "percentage": Decimal(1), "minimum": 5, "maximum": 4}):
        with pytest.raises(BadUserInput):
            Rule(uuid.uuid4(), **kwargs)


SCOPE_IDS = {"tenant": None, "store": S, "vendor": V, "category": C1, "product": P}


def make_rule(rule_id: uuid.UUID, scope: str, percentage: Decimal | None, flat: int, minimum: int | None,
              maximum: int | None) -> Rule:
    return Rule(rule_id, scope, SCOPE_IDS[scope], percentage, flat, minimum, maximum)


rules_strategy = st.lists(st.builds(
    make_rule, st.uuids(), st.sampled_from(list(SCOPE_IDS)),
    st.one_of(st.none(), st.decimals(Decimal(0), Decimal(100), places=2)), st.integers(0, 5000),
    st.one_of(st.none(), st.integers(0, 1000)), st.one_of(st.none(), st.integers(1000, 100_000))), max_size=8)


@given(st.integers(0, 10**8), rules_strategy, st.randoms(use_true_random=False),
       st.decimals(Decimal(0), Decimal(100), places=2))
def test_commission_properties(amount: int, rules: list[Rule], rng, default: Decimal) -> None:
    line = Line(amount, T, S, V, P, frozenset({C1}), NOW)
    result = commission_for(line, rules, default)
    assert 0 <= result.commission <= amount
    assert result.commission + result.vendor_share == amount
    shuffled = list(rules)
    rng.shuffle(shuffled)
    assert commission_for(line, shuffled, default) == result


@given(st.integers(0, 10**8), st.decimals(Decimal(0), Decimal(100), places=4))
def test_a_vendors_own_shipping_splits_exactly(amount: int, percentage: Decimal) -> None:
    """By default (0 %) the vendor gets all of its own shipping; at any rate the two parts add up exactly."""
    assert shipping_commission(amount, Decimal(0)).vendor_share == amount
    split = shipping_commission(amount, percentage)
    assert 0 <= split.commission <= amount and split.commission + split.vendor_share == amount
    assert split.rule_id is None


def test_shipping_commission_rounds_half_up() -> None:
    assert shipping_commission(250, Decimal("1")).commission == 3  # 2.5 → 3
    assert shipping_commission(249, Decimal("1")).commission == 2
    assert shipping_commission(700, Decimal("100")).vendor_share == 0


def test_the_ledger_takes_the_shipping_commission_setting() -> None:
    assert LedgerPolicy.of(Settings()).shipping_percentage == 0  # by default the vendor keeps all of it
    policy = LedgerPolicy.of(Settings(CITYOS_SHIPPING_COMMISSION_PERCENT=Decimal("10")))
    assert shipping_commission(700, policy.shipping_percentage).commission == 70


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
       st.integers(min_value=0, max_value=400 * 24 * 3600), st.integers(min_value=0, max_value=30))
def test_a_sale_on_account_is_payable_after_both_the_payment_and_the_hold(sold_at: datetime, paid_after: int,
                                                                          hold_days: int) -> None:
    paid_at, hold = sold_at + timedelta(seconds=paid_after), timedelta(days=hold_days)
    available = available_after_payment(sold_at, paid_at, hold)
    assert available >= paid_at and available >= sold_at + hold
    assert available in (paid_at, sold_at + hold)  # no later than it must be
