from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.tenancy import rules
from cityos.errors import BadUserInput


@pytest.mark.parametrize(("raw", "expected"), [
    ("Shop.Example.COM", "shop.example.com"),
    ("shop.example.com.", "shop.example.com"),
    ("shop.example.com:8443", "shop.example.com"),
    ("demo.localhost", "demo.localhost"),
])
def test_domains_are_normalised(raw: str, expected: str) -> None:
    assert rules.normalize_domain(raw) == expected


@pytest.mark.parametrize("raw", ["", "localhost", "http://shop.example.com", "-bad.example.com",
                                 "shop..example.com", "1.2.3.4", "a" * 64 + ".example.com", "sh op.example.com"])
def test_bad_domains_are_refused(raw: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        rules.normalize_domain(raw)
    assert raised.value.extensions == {"code": "BAD_USER_INPUT", "field": "domain"}


def test_host_of_ignores_unusable_hosts() -> None:
    assert rules.host_of("127.0.0.1:8000") is None
    assert rules.host_of("Demo.Localhost:8000") == "demo.localhost"


@pytest.mark.parametrize("handle", ["a", "demo-store", "store-1", "x" * 63])
def test_good_handles(handle: str) -> None:
    assert rules.validate_handle(handle) == handle


@pytest.mark.parametrize("handle", ["", "-a", "a-", "Demo", "a_b", "x" * 64, "ü"])
def test_bad_handles(handle: str) -> None:
    with pytest.raises(BadUserInput):
        rules.validate_handle(handle)


def test_names_are_trimmed_and_bounded() -> None:
    assert rules.validate_name("  Demo   Store ") == "Demo Store"
    with pytest.raises(BadUserInput):
        rules.validate_name("   ")
    with pytest.raises(BadUserInput):
        rules.validate_name("x" * 201)


def test_publishable_keys_are_random_well_formed_and_hashed() -> None:
    first, second = rules.new_publishable_key(), rules.new_publishable_key()
    assert first != second
    assert rules.is_well_formed_publishable_key(first)
    assert len(rules.hash_publishable_key(first)) == 64
    assert rules.hash_publishable_key(first) != rules.hash_publishable_key(second)
    assert first not in rules.redact_publishable_key(first)


@given(st.text(max_size=80))
def test_malformed_keys_are_never_looked_up(text: str) -> None:
    if not text.startswith("pk_"):
        assert not rules.is_well_formed_publishable_key(text)
