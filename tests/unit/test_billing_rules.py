"""Billing rules: period arithmetic (month-end clamping without drift), first charges, idempotency keys and the
subscription status machine."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
    assert rules.first_charge(1500, 500, 14) == 0  # the fee goes with the first paid period, after the trial
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


# --- proration, credits, dunning, MRR (part two) -------------------------------------------------------------------

periods = st.tuples(anchors, st.integers(min_value=1, max_value=400 * 86400)).map(
    lambda pair: (pair[0], pair[0] + timedelta(seconds=pair[1])))


def test_proration_credits_the_unused_time_rounded_half_up() -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=30)
    assert rules.prorate(3000, start, end, start + timedelta(days=10)).credit == 2000
    assert rules.prorate(3000, start, end, start).credit == 3000  # nothing used
    assert rules.prorate(3000, start, end, end).credit == 0
    assert rules.prorate(3000, start, end, start - timedelta(days=1)).credit == 3000  # before the period
    assert rules.prorate(3000, start, end, end + timedelta(days=1)).credit == 0  # after it
    # Half a minor unit rounds up: 1 × 1/2 = 0.5 → 1; 3 × 1/2 = 1.5 → 2; 1 × 1/4 = 0.25 → 0.
    two_seconds = start + timedelta(seconds=2)
    assert rules.prorate(1, start, two_seconds, start + timedelta(seconds=1)).credit == 1
    assert rules.prorate(3, start, two_seconds, start + timedelta(seconds=1)).credit == 2
    four_seconds = start + timedelta(seconds=4)
    assert rules.prorate(1, start, four_seconds, start + timedelta(seconds=3)).credit == 0
    with pytest.raises(ValueError, match="ends after it starts"):
        rules.prorate(100, end, start, start)


@given(st.integers(min_value=0, max_value=10**9), periods, st.integers(min_value=-10**7, max_value=10**9))
def test_proration_is_bounded_and_never_grows_with_time(amount: int, period: tuple[datetime, datetime],
                                                        offset: int) -> None:
    start, end = period
    now = start + timedelta(seconds=offset)
    credit = rules.prorate(amount, start, end, now).credit
    assert 0 <= credit <= amount
    later = rules.prorate(amount, start, end, now + timedelta(seconds=1)).credit
    assert later <= credit
    # Within half a minor unit of the exact share (the rounding rule is the only difference).
    used = min(max(offset, 0), int((end - start).total_seconds()))
    length = int((end - start).total_seconds())
    assert abs(credit * length - amount * (length - used)) * 2 <= length


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=1000),
       st.integers(min_value=0, max_value=10**9))
def test_a_credit_lowers_every_unit_alike_and_never_below_zero(unit: int, quantity: int, credit: int) -> None:
    price, used = rules.apply_credit(unit, quantity, credit)
    assert 0 <= price <= unit and 0 <= used <= credit
    assert price * quantity + used == unit * quantity  # the line still adds up: what is charged + the credit used
    assert used % quantity == 0
    if price > 0:
        assert credit - used < quantity  # only what does not divide over the units stays in the balance


def test_credit_examples() -> None:
    assert rules.apply_credit(1000, 1, 2000) == (0, 1000)
    assert rules.apply_credit(1000, 3, 100) == (967, 99)  # 1 unit left in the balance
    assert rules.apply_credit(500, 2, 0) == (500, 0)


def test_retry_schedule() -> None:
    failed = datetime(2027, 5, 1, 12, tzinfo=UTC)
    assert [rules.next_retry_at(failed, rules.DEFAULT_RETRY_DAYS, done) for done in range(4)] == [
        failed + timedelta(days=1), failed + timedelta(days=3), failed + timedelta(days=7), None]
    assert rules.validate_retry_days([2, 4]) == (2, 4)
    for bad in ([], [3, 1], [1, 1], [0], [61], list(range(1, 12))):
        with pytest.raises(BadUserInput):
            rules.validate_retry_days(bad)


@given(st.integers(min_value=0, max_value=10**8), st.integers(min_value=1, max_value=366))
def test_mrr_normalizes_every_interval_to_a_month(amount: int, count: int) -> None:
    monthly = rules.monthly_amount(amount, BillingInterval.MONTH, count)
    assert abs(monthly * count - amount) * 2 <= count  # amount / count, rounded half up
    yearly = rules.monthly_amount(amount * 12, BillingInterval.YEAR, count)
    assert abs(yearly - monthly) <= 1
    assert rules.monthly_amount(amount, BillingInterval.DAY, 1) >= rules.monthly_amount(amount, BillingInterval.WEEK, 1)


def test_mrr_examples_and_churn() -> None:
    assert rules.monthly_amount(2500, BillingInterval.MONTH, 1) == 2500
    assert rules.monthly_amount(12000, BillingInterval.YEAR, 1) == 1000
    assert rules.monthly_amount(700, BillingInterval.WEEK, 1) == 3042  # 700 × 365 / 12 / 7 = 3041.67
    assert rules.monthly_amount(6000, BillingInterval.MONTH, 3) == 2000
    assert rules.churn_rate(0, 0) == 0 and rules.churn_rate(1, 3) == Decimal("0.25")


@pytest.mark.parametrize(("status", "action"), [
    (S.CANCELED, "cancel"), (S.EXPIRED, "cancel"), (S.PAUSED, "pause"), (S.CANCELED, "pause"), (S.ACTIVE, "resume"),
    (S.PAUSED, "skip"), (S.PAST_DUE, "skip"), (S.PAST_DUE, "change_plan"), (S.CANCELED, "change_payment_method")])
def test_invalid_self_service_is_an_invalid_state_transition(status: S, action: str) -> None:
    with pytest.raises(InvalidStateTransition):
        rules.check_self_service(status.value, action)


@pytest.mark.parametrize(("status", "action"), [
    (S.ACTIVE, "cancel"), (S.PAST_DUE, "cancel"), (S.PAUSED, "cancel"), (S.TRIALING, "pause"), (S.PAUSED, "resume"),
    (S.ACTIVE, "skip"), (S.TRIALING, "change_plan"), (S.PAST_DUE, "change_payment_method")])
def test_valid_self_service(status: S, action: str) -> None:
    rules.check_self_service(status.value, action)
