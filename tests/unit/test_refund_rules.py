"""Refund and return rules: exact splits over units and tax, the refundable ceiling, the return window."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.marketplace.rules import reversed_share, units_part
from cityos.domain.orders.rules import (
    LineRequest,
    OrderAmounts,
    SoldLine,
    everything_left,
    next_return_status,
    plan_refund,
    tax_shares,
    within_return_window,
)
from cityos.errors import BadUserInput, InvalidStateTransition

A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def order(total: int, shipping: int, tax: int, refunded: int = 0, shipped_back: bool = False,
          status: str = "paid") -> OrderAmounts:
    return OrderAmounts(status, total, shipping, tax, refunded, shipped_back)


@given(st.integers(0, 10**7), st.integers(1, 60), st.data())
def test_refunds_of_a_line_in_any_steps_sum_to_the_line(total: int, quantity: int, data: st.DataObject) -> None:
    cuts = sorted(set(data.draw(st.lists(st.integers(1, quantity - 1), max_size=5)) if quantity > 1 else []))
    bounds = [0, *cuts, quantity]
    parts = [units_part(total, quantity, start, end - start) for start, end in itertools.pairwise(bounds)]
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 40), st.data())
def test_a_reversed_share_never_makes_a_vendor_share_negative(total: int, commission: int, quantity: int,
                                                               data: st.DataObject) -> None:
    commission = min(commission, total)
    first = data.draw(st.integers(0, quantity - 1))
    count = data.draw(st.integers(1, quantity - first))
    share = reversed_share(total, commission, quantity, first, count)
    assert share.commission >= 0 and share.vendor >= 0
    assert share.commission + share.vendor == units_part(total, quantity, first, count)
    whole = reversed_share(total, commission, quantity, 0, quantity)
    assert (whole.commission, whole.vendor) == (commission, total - commission)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=8), st.integers(0, 10**5), st.integers(0, 10**5))
def test_tax_shares_sum_to_the_tax(lines: list[int], shipping: int, tax: int) -> None:
    line_tax, shipping_tax = tax_shares(lines, shipping, tax)
    assert sum(line_tax) + shipping_tax == tax


@given(st.lists(st.tuples(st.integers(1, 10**5), st.integers(1, 9)), min_size=1, max_size=5),
       st.integers(0, 2000), st.integers(0, 5000), st.data())
def test_partial_refunds_then_the_rest_give_back_exactly_the_order_total(
        specs: list[tuple[int, int]], shipping: int, tax: int, data: st.DataObject) -> None:
    lines = [SoldLine(uuid.UUID(int=index + 1), None, quantity, unit * quantity)
             for index, (unit, quantity) in enumerate(specs)]
    total = sum(line.total for line in lines) + shipping + tax
    first_requests = [LineRequest(line.id, data.draw(st.integers(1, line.quantity))) for line in lines[:1]]
    first = plan_refund(order(total, shipping, tax), lines, first_requests, refund_shipping=False)
    refunded = {planned.line_id: planned.quantity for planned in first.lines}
    after = [SoldLine(line.id, None, line.quantity, line.total, refunded.get(line.id, 0)) for line in lines]
    requests, with_shipping = everything_left(after, False, shipping, restock=False)
    if not requests and not with_shipping:
        assert first.amount == total
        return
    rest = plan_refund(order(total, shipping, tax, refunded=first.amount), after, requests, with_shipping)
    assert first.amount + rest.amount == total


@given(st.lists(st.tuples(st.integers(1, 10**5), st.integers(1, 9)), min_size=1, max_size=5),
       st.integers(0, 2000), st.data())
def test_a_tax_inclusive_order_refunded_in_steps_gives_back_exactly_its_total(
        specs: list[tuple[int, int]], shipping: int, data: st.DataObject) -> None:
    """Inclusive prices contain the tax: refunds give back the line totals and the shipping, the tax shares
    recorded inside them, never on top (the order's total is its subtotal plus shipping)."""
    lines = [SoldLine(uuid.UUID(int=index + 1), None, quantity, unit * quantity)
             for index, (unit, quantity) in enumerate(specs)]
    total = sum(line.total for line in lines) + shipping
    tax = data.draw(st.integers(0, total))
    amounts = OrderAmounts("paid", total, shipping, tax, 0, False, tax_inclusive=True)
    first = plan_refund(amounts, lines, [LineRequest(lines[0].id, 1)], refund_shipping=False)
    assert first.amount == first.lines[0].amount == units_part(lines[0].total, lines[0].quantity, 0, 1)
    after = [SoldLine(line.id, None, line.quantity, line.total, 1 if line.id == lines[0].id else 0)
             for line in lines]
    requests, with_shipping = everything_left(after, False, shipping, restock=False)
    if not requests and not with_shipping:
        assert first.amount == total
        return
    rest = plan_refund(OrderAmounts("paid", total, shipping, tax, first.amount, False, tax_inclusive=True),
                       after, requests, with_shipping)
    assert first.amount + rest.amount == total
    assert sum(line.tax_amount for line in (*first.lines, *rest.lines)) <= tax


def test_a_refund_above_what_is_refundable_names_the_refundable_amount() -> None:
    lines = [SoldLine(A, None, 2, 1000)]
    with pytest.raises(BadUserInput) as refused:
        plan_refund(order(1100, 100, 0, refunded=600), lines, [LineRequest(A, 2)], refund_shipping=False)
    assert refused.value.extensions["refundable"] == 500
    with pytest.raises(BadUserInput) as too_many:
        plan_refund(order(1100, 100, 0), [SoldLine(A, None, 2, 1000, refunded_units=1)], [LineRequest(A, 2)], False)
    assert too_many.value.extensions["refundableQuantity"] == 1
    with pytest.raises(BadUserInput):
        plan_refund(order(1100, 100, 0), lines, [LineRequest(B, 1)], False)
    with pytest.raises(BadUserInput):
        plan_refund(order(1100, 100, 0), lines, [LineRequest(A, 1), LineRequest(A, 1)], False)
    with pytest.raises(BadUserInput):
        plan_refund(order(1100, 100, 0, shipped_back=True), lines, [], True)
    with pytest.raises(BadUserInput):
        plan_refund(order(1100, 100, 0), lines, [], False)


def test_only_a_paid_order_is_refunded() -> None:
    for status in ("pending", "canceled", "refunded"):
        with pytest.raises(InvalidStateTransition):
            plan_refund(order(1000, 0, 0, status=status), [SoldLine(A, None, 1, 1000)], [LineRequest(A, 1)], False)


def test_the_half_cent_units_go_to_the_first_units() -> None:
    assert [units_part(1000, 3, unit, 1) for unit in range(3)] == [334, 333, 333]
    assert units_part(1000, 3, 1, 2) == 666


def test_the_return_window_and_the_return_states() -> None:
    delivered = datetime(2026, 11, 1, tzinfo=UTC)
    assert within_return_window(delivered, delivered + timedelta(days=30), 30)
    assert not within_return_window(delivered, delivered + timedelta(days=30, seconds=1), 30)
    assert not within_return_window(None, delivered, 30)
    assert not within_return_window(delivered, delivered, 0)
    assert next_return_status("requested", "approved") == "approved"
    with pytest.raises(InvalidStateTransition):
        next_return_status("rejected", "received")
