"""Pure B2B rules: spending periods reset on their boundary, limits, quote edits and states, approval levels,
payment terms."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.b2b import rules
from cityos.domain.b2b.models import PaymentTerms, QuoteStatus, SpendingPeriod
from cityos.errors import BadUserInput, InvalidStateTransition

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC))
periods = st.sampled_from(list(SpendingPeriod))


@given(moments, periods)
def test_a_period_contains_its_moment_and_starts_on_a_calendar_boundary(moment: datetime,
                                                                         period: SpendingPeriod) -> None:
    start, end = rules.period_bounds(moment, period)
    assert start <= moment < end
    assert start.day == 1 and start.hour == start.minute == start.second == start.microsecond == 0
    assert end.day == 1 and end.hour == 0
    months = 1 if period is SpendingPeriod.MONTH else 3
    assert (start.month - 1) % months == 0
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months


@given(moments, periods)
def test_spending_resets_on_the_boundary(moment: datetime, period: SpendingPeriod) -> None:
    """The instant a period ends the next one begins: the periods tile time, so what was spent before the
    boundary never counts after it."""
    start, end = rules.period_bounds(moment, period)
    assert rules.period_bounds(end, period)[0] == end
    assert rules.period_bounds(end - timedelta(microseconds=1), period) == (start, end)


def test_quarters_are_calendar_quarters() -> None:
    assert rules.period_bounds(datetime(2026, 11, 27, 9, 30, tzinfo=UTC), SpendingPeriod.QUARTER) == (
        datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert rules.period_bounds(datetime(2026, 3, 31, 23, 59, tzinfo=UTC), SpendingPeriod.MONTH) == (
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


@given(st.integers(1, 10**7), st.integers(0, 10**7), st.integers(1, 10**7), st.integers(1, 10**7))
def test_limits_are_exceeded_strictly_above_them(order_limit: int, spent: int, period_limit: int,
                                                 amount: int) -> None:
    limit = rules.SpendingLimit(order_limit, period_limit, SpendingPeriod.MONTH)
    reasons = rules.over_limit(limit, amount, spent)
    assert ("order_limit" in reasons) == (amount > order_limit)
    assert ("period_limit" in reasons) == (spent + amount > period_limit)
    assert rules.over_limit(rules.SpendingLimit(), amount, spent) == []


def test_a_period_limit_needs_its_period_and_limits_are_positive() -> None:
    for bad in ({"period_limit": 100}, {"period": SpendingPeriod.MONTH}, {"order_limit": 0},
                {"period_limit": -1, "period": SpendingPeriod.QUARTER}):
        with pytest.raises(BadUserInput):
            rules.SpendingLimit(**bad)  # type: ignore[arg-type]


def _lines() -> list[dict[str, object]]:
    return [{"variant_id": str(uuid.UUID(int=1)), "vendor_id": "v1", "sku": "A", "quantity": 10, "unit_price": 500},
            {"variant_id": str(uuid.UUID(int=2)), "vendor_id": "v2", "sku": "B", "quantity": 3, "unit_price": 900}]


def test_edits_record_what_changed_and_a_vendor_edits_only_its_lines() -> None:
    lines, changes = rules.apply_edits(_lines(), [rules.LineEdit(uuid.UUID(int=1), quantity=12, unit_price=450)],
                                       None)
    assert rules.lines_total(lines) == 12 * 450 + 3 * 900
    assert changes == [{"sku": "A", "variant_id": str(uuid.UUID(int=1)), "field": "quantity", "from": 10, "to": 12},
                       {"sku": "A", "variant_id": str(uuid.UUID(int=1)), "field": "unit_price", "from": 500,
                        "to": 450}]
    with pytest.raises(BadUserInput):
        rules.apply_edits(_lines(), [rules.LineEdit(uuid.UUID(int=2), unit_price=1)], frozenset({uuid.UUID(int=1)}))
    with pytest.raises(BadUserInput):  # nothing changes
        rules.apply_edits(_lines(), [rules.LineEdit(uuid.UUID(int=1), quantity=10)], None)
    for bad in ({"quantity": 0}, {"quantity": -1}, {"unit_price": 0}, {"unit_price": -5}):
        with pytest.raises(BadUserInput):
            rules.LineEdit(uuid.UUID(int=1), **bad)  # type: ignore[arg-type]


def test_only_the_current_answered_unexpired_version_is_acceptable() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    later = now + timedelta(days=1)
    rules.check_acceptable(QuoteStatus.RESPONDED, 3, 3, later, now)
    for status, version, valid_until in ((QuoteStatus.RESPONDED, 2, later), (QuoteStatus.RESPONDED, 3, now),
                                         (QuoteStatus.REJECTED, 3, later), (QuoteStatus.EXPIRED, 3, later),
                                         (QuoteStatus.REQUESTED, 3, later), (QuoteStatus.ORDERED, 3, later)):
        with pytest.raises(InvalidStateTransition):
            rules.check_acceptable(status, 3, version, valid_until, now)
    with pytest.raises(InvalidStateTransition):
        rules.check_quote_transition(QuoteStatus.ORDERED, QuoteStatus.ORDERED)


def test_levels_complete_by_mode() -> None:
    any_level = rules.Level("any", roles=("approver",))
    assert not any_level.complete([("u1", "company_buyer")])
    assert any_level.complete([("u1", "approver")])
    all_level = rules.Level("all", roles=("company_admin",), users=("cfo", "ceo"))
    assert not all_level.complete([("cfo", "approver"), ("ceo", "approver")])  # no admin yet
    assert not all_level.complete([("cfo", "approver"), ("a1", "company_admin")])  # ceo missing
    assert all_level.complete([("cfo", "approver"), ("ceo", "approver"), ("a1", "company_admin")])
    with pytest.raises(BadUserInput):
        rules.Level("some", roles=("approver",))
    with pytest.raises(BadUserInput):
        rules.Level("any")
    with pytest.raises(BadUserInput):
        rules.validate_levels([any_level] * 6)


@given(st.integers(0, 10**7), st.lists(st.integers(0, 10**7), max_size=5, unique=True))
def test_the_highest_reached_threshold_applies(amount: int, minimums: list[int]) -> None:
    rule_set = [(minimum, [rules.Level("any", users=(f"u{minimum}",))]) for minimum in minimums]
    levels = rules.required_levels(amount, rule_set, [])
    reached = [minimum for minimum in minimums if minimum <= amount]
    if reached:
        assert levels == [rules.Level("any", users=(f"u{max(reached)}",))]
    else:
        assert levels == []
        assert rules.required_levels(amount, rule_set, ["order_limit"]) == [rules.ADMIN_LEVEL]


@given(moments, st.sampled_from([PaymentTerms.NET_15, PaymentTerms.NET_30, PaymentTerms.NET_60]))
def test_invoices_fall_due_by_the_payment_terms(issued: datetime, terms: PaymentTerms) -> None:
    assert rules.due_date(issued, terms) - issued == timedelta(days=int(terms.value[3:]))


def test_prepaid_companies_have_no_credit_terms() -> None:
    with pytest.raises(BadUserInput):
        rules.due_date(datetime(2026, 1, 1, tzinfo=UTC), PaymentTerms.PREPAID)
    assert rules.available_credit(1000, 400) == 600 and rules.available_credit(1000, 1000) == 0


# --- overdue invoices, invitations, store lists, order statuses ---------------------------------------------------

@given(moments, st.integers(min_value=-10**7, max_value=10**7))
def test_an_invoice_is_overdue_from_its_due_moment_on(due: datetime, seconds: int) -> None:
    now = due + timedelta(seconds=seconds)
    assert rules.is_overdue(due, now) is (seconds >= 0)


@given(moments, st.lists(st.integers(min_value=0, max_value=60 * 24 * 120), min_size=1, max_size=40))
def test_reminders_go_out_once_overdue_then_at_most_weekly(start: datetime, minutes: list[int]) -> None:
    """Whatever moments the job runs at, the first run reminds, and two reminders are never less than
    REMINDER_EVERY_DAYS apart; a run a full week after the last reminder always reminds."""
    runs = sorted(start + timedelta(minutes=offset) for offset in minutes)
    reminded: list[datetime] = []
    for run in runs:
        if rules.reminder_due(reminded[-1] if reminded else None, run):
            reminded.append(run)
    assert reminded[0] == runs[0]
    week = timedelta(days=rules.REMINDER_EVERY_DAYS)
    assert all(later - earlier >= week for earlier, later in pairwise(reminded))
    for run in runs:
        last = max((moment for moment in reminded if moment <= run), default=None)
        assert last is not None and (run - last < week or run in reminded)


@given(moments, st.integers(min_value=0, max_value=10 * 24 * 3600))
def test_an_invitation_is_accepted_only_pending_and_before_it_expires(now: datetime, age: int) -> None:
    invited = now - timedelta(seconds=age)
    expires = rules.invitation_expiry(invited)
    if age < rules.INVITATION_DAYS * 24 * 3600:
        rules.check_acceptable_invitation("pending", expires, now)
    else:
        with pytest.raises(InvalidStateTransition):
            rules.check_acceptable_invitation("pending", expires, now)
    for status in ("accepted", "revoked"):
        with pytest.raises(InvalidStateTransition):
            rules.check_acceptable_invitation(status, expires, now)


@given(st.lists(st.uuids(), max_size=6, unique=True), st.uuids())
def test_a_company_buys_in_its_listed_stores_or_everywhere_when_none(listed: list[uuid.UUID],
                                                                    store: uuid.UUID) -> None:
    joined = ",".join(sorted(map(str, listed)))
    assert rules.buys_in(joined, store) is (not listed or store in listed)
    for each in listed:
        assert rules.buys_in(joined, each)


def test_approval_and_account_statuses_move_only_by_their_own_process() -> None:
    from cityos.domain.commerce.rules import check_manual_transition, next_order_status
    from cityos.domain.kernel import OrderStatus

    assert next_order_status("pending_approval", "pending") is OrderStatus.PENDING
    assert next_order_status("pending_approval", "awaiting_payment") is OrderStatus.AWAITING_PAYMENT
    assert next_order_status("pending_approval", "canceled") is OrderStatus.CANCELED
    assert next_order_status("awaiting_payment", "paid") is OrderStatus.PAID
    with pytest.raises(InvalidStateTransition):
        next_order_status("pending_approval", "paid")  # never paid without its approval and payment
    with pytest.raises(InvalidStateTransition):
        next_order_status("awaiting_payment", "canceled")
    for current, target in (("pending_approval", "canceled"), ("awaiting_payment", "paid"),
                            ("pending", "awaiting_payment")):
        with pytest.raises(InvalidStateTransition):
            check_manual_transition(current, target)
    assert check_manual_transition("paid", "fulfilled") is OrderStatus.FULFILLED
