"""Pure fulfilment rules: a vendor order moves forward only, and the order's fulfilment derived from its parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.fulfillment import rules
from cityos.domain.orders.models import OrderFulfillment, VendorFulfillment
from cityos.errors import BadUserInput, InvalidStateTransition

STEPS = list(VendorFulfillment)


def test_order_fulfillment_from_its_parts() -> None:
    derive = rules.order_fulfillment
    assert derive([]) == OrderFulfillment.UNFULFILLED
    assert derive(["unfulfilled", "unfulfilled"]) == OrderFulfillment.UNFULFILLED
    assert derive(["processing", "unfulfilled"]) == OrderFulfillment.PROCESSING
    assert derive(["ready", "ready"]) == OrderFulfillment.PROCESSING
    assert derive(["shipped", "ready"]) == OrderFulfillment.PARTIALLY_SHIPPED
    assert derive(["delivered", "unfulfilled"]) == OrderFulfillment.PARTIALLY_SHIPPED
    assert derive(["shipped", "shipped"]) == OrderFulfillment.SHIPPED
    assert derive(["shipped", "delivered"]) == OrderFulfillment.PARTIALLY_DELIVERED
    assert derive(["delivered", "delivered"]) == OrderFulfillment.DELIVERED


ORDER_RANK = {status: index for index, status in enumerate(OrderFulfillment)}


@given(st.lists(st.sampled_from(STEPS), min_size=1, max_size=6), st.data())
def test_a_part_moving_forward_never_moves_the_order_back(parts: list[VendorFulfillment], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(parts) - 1))
    later = data.draw(st.sampled_from([step for step in STEPS if rules.VENDOR_RANK[step] >= rules.VENDOR_RANK[
        parts[index]]]))
    before = rules.order_fulfillment([step.value for step in parts])
    after = rules.order_fulfillment([step.value for step in [*parts[:index], later, *parts[index + 1:]]])
    assert ORDER_RANK[after] >= ORDER_RANK[before]


def test_vendor_steps_move_forward_only() -> None:
    step = rules.next_vendor_fulfillment
    assert step("paid", "unfulfilled", "processing", None, None) is VendorFulfillment.PROCESSING
    assert step("paid", "unfulfilled", "ready", None, None) is VendorFulfillment.READY  # a step may be skipped
    assert step("fulfilled", "ready", "shipped", "1Z", "ups") is VendorFulfillment.SHIPPED
    assert step("fulfilled", "shipped", "delivered", "1Z", "ups") is VendorFulfillment.DELIVERED
    with pytest.raises(InvalidStateTransition):
        step("paid", "ready", "processing", None, None)
    with pytest.raises(InvalidStateTransition):
        step("paid", "ready", "ready", None, None)
    with pytest.raises(InvalidStateTransition):
        step("paid", "ready", "delivered", "1Z", "ups")
    for status in ("pending", "canceled", "refunded"):
        with pytest.raises(InvalidStateTransition):
            step(status, "unfulfilled", "processing", None, None)
    with pytest.raises(BadUserInput):
        step("paid", "ready", "shipped", None, "ups")
    with pytest.raises(BadUserInput):
        step("paid", "ready", "shipped", "1Z", None)


def test_pickup_addresses_are_validated() -> None:
    cleaned = rules.validate_pickup_address({"address_1": " 1  Main St ", "city": "Austin", "province": "tx",
                                             "postal_code": "73301", "country_code": "US", "phone": None})
    assert cleaned == {"address_1": "1 Main St", "city": "Austin", "province": "TX", "postal_code": "73301",
                       "country_code": "us"}
    for broken in ({"city": "Austin", "postal_code": "73301", "country_code": "us"},
                   {"address_1": "1 Main St", "city": "Austin", "postal_code": "7330", "country_code": "us"},
                   {"address_1": "1 Main St", "city": "Austin", "postal_code": "73301", "country_code": "usa"},
                   {"address_1": "x" * 201, "city": "Austin", "postal_code": "73301", "country_code": "us"}):
        with pytest.raises(BadUserInput):
            rules.validate_pickup_address(broken)

