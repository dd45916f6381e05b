"""Billing rules: period arithmetic (month-end clamping without drift), first charges, idempotency keys and the
subscription status machine."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.billing import rules
from cityos.domain.billing.models import BillingInterval, CustomerSubscriptionStatus
from cityos.errors import BadUserInput, InvalidStateTransition

S = CustomerSubscriptionStatus
anchors = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)).map(
    lambda moment: moment.replace(tzinfo=UTC))


def test_month_end_is_clamped_and_does_not_drift() -> None:
    anchor = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    starts = [rules.period_start(anchor, BillingInterval.MONTH, 1, k) for k in range(5)]
    assert [(moment.month, moment.day) for moment in starts] == [(1, 31), (2, 28), (3, 31), (4, 30), (5, 31)]
    assert all(moment.time() == anchor.time() for moment in starts)
    leap = datetime(2028, 1, 31, tzinfo=UTC)
    assert rules.period_start(leap, BillingInterval.MONTH, 1, 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert rules.period_start(datetime(2028, 2, 29, tzinfo=UTC), BillingInterval.YEAR, 1, 1) == \
        datetime(2029, 2, 28, tzinfo=UTC)
    assert rules.period_start(datetime(2028, 2, 29, tzinfo=UTC), BillingInterval.YEAR, 1, 4) == \
        datetime(2032, 2, 29, tzinfo=UTC)
    assert rules.period_start(anchor, BillingInterval.MONTH, 3, 1) == datetime(2027, 4, 30, 9, 30, tzinfo=UTC)


def test_days_and_weeks_are_exact() -> None:
    anchor = datetime(2027, 3, 13, tzinfo=UTC)
    assert rules.period_bounds(anchor, BillingInterval.DAY, 10, 2) == (anchor + timedelta(days=20),
                                                                        anchor + timedelta(days=30))
    assert rules.period_bounds(anchor, BillingInterval.WEEK, 2, 1) == (anchor + timedelta(weeks=2),
                                                                        anchor + timedelta(weeks=4))


@given(anchors, st.sampled_from(list(BillingInterval)), st.integers(1, 24), st.integers(0, 60))
def test_periods_are_contiguous_increasing_and_anchored(anchor: datetime, interval: BillingInterval, count: int,
                                                        index: int) -> None:
    start, end = rules.period_bounds(anchor, interval, count, index)
    assert start < end
    assert rules.period_bounds(anchor, interval, count, index + 1)[0] == end  # no gap, no overlap
    if interval in (BillingInterval.MONTH, BillingInterval.YEAR):
        # The day is the anchor's, clamped to the month's length: never drifting with earlier short months.
        assert start.day == min(anchor.day, calendar.monthrange(start.year, start.month)[1])
        months = (start.year - anchor.year) * 12 + start.month - anchor.month
        assert months == index * count * (12 if interval is BillingInterval.YEAR else 1)
        assert start.time() == anchor.time()


def test_first_charge() -> None:
    assert rules.first_charge(1500, 0, 14) == 0  # a trial without a setup fee: a SetupIntent, no charge
    assert rules.first_charge(1500, 500, 14) == 500
    assert rules.first_charge(1500, 500, 0) == 2000
    assert rules.first_charge(1500, 0, 0) == 1500


def test_renewal_keys_are_the_cycle_then_one_per_retry() -> None:
    assert rules.renewal_idempotency_key("c1", 1) == "c1"
    assert rules.renewal_idempotency_key("c1", 2) == "c1:2"
    assert len({rules.renewal_idempotency_key("c1", attempt) for attempt in range(1, 6)}) == 5


def test_plan_terms() -> None:
    rules.validate_plan_terms(1, 0)
    rules.validate_plan_terms(366, 730)
    for count, trial, field in ((0, 0, "intervalCount"), (367, 0, "intervalCount"), (1, -1, "trialDays"),
                                (1, 731, "trialDays")):
        with pytest.raises(BadUserInput) as raised:
            rules.validate_plan_terms(count, trial)
        assert raised.value.extensions["field"] == field


def test_status_machine() -> None:
    rules.check_transition("trialing", S.ACTIVE)
    rules.check_transition("active", S.PAST_DUE)
    rules.check_transition("past_due", S.ACTIVE)
    with pytest.raises(InvalidStateTransition) as raised:
        rules.check_transition("canceled", S.CANCELED)
    assert raised.value.extensions["from"] == "canceled" and raised.value.extensions["to"] == "canceled"
    for final in (S.CANCELED, S.EXPIRED):
        assert rules.TRANSITIONS[final] == frozenset()
    assert set(rules.TRANSITIONS) == set(S)
