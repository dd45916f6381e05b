"""The status enums drive the rules and the schema; US postal codes are ZIP or ZIP+4."""

from __future__ import annotations

from enum import StrEnum

import pytest

from cityos.domain.commerce.rules import ORDER_TRANSITIONS, next_order_status, validate_postal_code
from cityos.domain.fulfillment.models import ShipmentStatus
from cityos.domain.fulfillment.rules import RANK, moves_forward, status_of
from cityos.domain.orders.models import OrderStatus
from cityos.errors import BadUserInput, InvalidStateTransition
from cityos.graphql.core.values import described_enum


@pytest.mark.parametrize("code", ["94105", "94105-1234", " 02134 ", "00501-0001"])
def test_us_zip_and_zip_plus_4_are_accepted(code: str) -> None:
    assert validate_postal_code("us", code) == code.strip()
    assert validate_postal_code("US", code) == code.strip()


@pytest.mark.parametrize("code", ["9410", "941050", "94105-123", "94105-12345", "94105 1234", "9410S", "ABCDE",
                                  "94105-", "-1234", "", "   ", "９４１０５"])
def test_other_us_postal_codes_are_refused_naming_the_field(code: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        validate_postal_code("us", code)
    assert refused.value.extensions["field"] == "address.postalCode"


def test_other_countries_postal_codes_are_only_trimmed() -> None:
    assert validate_postal_code("ca", " K1A 0B1 ") == "K1A 0B1"
    assert validate_postal_code("gb", "SW1A 1AA") == "SW1A 1AA"


def test_the_order_state_machine_covers_every_status_and_returns_the_enum() -> None:
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert all(targets <= set(OrderStatus) for targets in ORDER_TRANSITIONS.values())
    moved = next_order_status("pending", "paid")
    assert moved is OrderStatus.PAID and moved == "paid"
    assert next_order_status(OrderStatus.PAID, OrderStatus.REFUNDED) is OrderStatus.REFUNDED
    for target in ("pending", "shipped"):
        with pytest.raises(InvalidStateTransition):
            next_order_status("paid", target)


def test_the_shipment_rules_cover_every_status() -> None:
    assert set(RANK) == set(ShipmentStatus)
    assert status_of("order.dispatched", {}) is ShipmentStatus.PICKED_UP
    assert status_of("order.updated", {"status": "ENROUTE"}) is ShipmentStatus.IN_TRANSIT
    assert moves_forward("created", ShipmentStatus.IN_TRANSIT) and not moves_forward("delivered", "canceled")


def test_a_status_without_a_description_cannot_reach_the_schema() -> None:
    class Mood(StrEnum):
        CALM = "calm"
        NEW = "new"

    with pytest.raises(ValueError, match="Mood: describe NEW"):
        described_enum(Mood, "A mood.", {Mood.CALM: "Calm."})
    assert not hasattr(Mood, "__strawberry_definition__")
    described_enum(Mood, "A mood.", {Mood.CALM: "Calm.", Mood.NEW: "New."})
    definition = Mood.__strawberry_definition__  # type: ignore[attr-defined]
    assert [(value.name, value.value, value.description) for value in definition.values] == [
        ("CALM", "calm", "Calm."), ("NEW", "new", "New.")]
