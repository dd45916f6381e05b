"""Pure rules of customer accounts: profile fields, saved addresses, reorder quantities."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.customers import rules
from cityos.errors import BadUserInput

HOME = {"first_name": "Ada", "last_name": "Lovelace", "address_1": "1  Main St", "city": "Austin", "province": "tx",
        "postal_code": "73301", "country_code": "US", "phone": None}


def test_profile_phone_numbers_fit_their_column() -> None:
    assert rules.validate_phone("+" + "1" * 39) == "+" + "1" * 39
    assert rules.validate_phone("  ") is None
    for bad in ("+" + "1" * 40, "call me", "12"):
        with pytest.raises(BadUserInput):
            rules.validate_phone(bad)


def test_saved_addresses_are_validated_and_normalized() -> None:
    assert rules.validate_saved_address(HOME) == {**{k: v for k, v in HOME.items() if v}, "address_1": "1 Main St",
                                                  "province": "TX", "country_code": "us"}
    for broken in ({**HOME, "city": " "}, {**HOME, "postal_code": "7330"}, {**HOME, "country_code": "usa"},
                   {**HOME, "address_1": "x" * 201}):
        with pytest.raises(BadUserInput):
            rules.validate_saved_address(broken)


@given(st.integers(min_value=1, max_value=1000), st.one_of(st.none(), st.integers(min_value=-5, max_value=1000)))
def test_a_reorder_takes_what_it_can(wanted: int, available: int | None) -> None:
    quantity = rules.reorder_quantity(rules.ReorderLine(None, "SKU", wanted, available))
    assert 0 <= quantity <= wanted
    assert quantity == (0 if available is None else max(0, min(wanted, available)))
