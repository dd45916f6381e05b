"""Pure billing rules: plan validation, period arithmetic (month-end clamping without drift) and the status
machine of a customer subscription."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from cityos.domain.billing.models import BillingInterval, CustomerSubscriptionStatus
from cityos.domain.kernel import round_half_up
from cityos.errors import BadUserInput, InvalidStateTransition

MAX_INTERVAL_COUNT = 366
MAX_TRIAL_DAYS = 730

S = CustomerSubscriptionStatus
# Which status may follow which. Renewals, dunning and self-service all move a subscription through this table.
TRANSITIONS: dict[CustomerSubscriptionStatus, frozenset[CustomerSubscriptionStatus]] = {
    S.INCOMPLETE: frozenset({S.TRIALING, S.ACTIVE, S.EXPIRED, S.CANCELED}),
    S.TRIALING: frozenset({S.ACTIVE, S.PAST_DUE, S.PAUSED, S.CANCELED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.PAUSED, S.CANCELED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.PAUSED, S.CANCELED}),
    S.PAUSED: frozenset({S.ACTIVE, S.CANCELED}),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
}
# Subscriptions the renewal job bills when their period has ended.
RENEWABLE = (S.TRIALING, S.ACTIVE)


def check_transition(current: str, target: CustomerSubscriptionStatus) -> None:
    if target not in TRANSITIONS[CustomerSubscriptionStatus(current)]:
        raise InvalidStateTransition(f"a subscription cannot go from {current} to {target.value}",
                                     **{"from": current, "to": target.value})


def validate_plan_terms(interval_count: int, trial_days: int) -> None:
    if not 1 <= interval_count <= MAX_INTERVAL_COUNT:
        raise BadUserInput(f"intervalCount must be 1-{MAX_INTERVAL_COUNT}", field="intervalCount")
    if not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise BadUserInput(f"trialDays must be 0-{MAX_TRIAL_DAYS}", field="trialDays")


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` moved by whole months; a day the target month lacks is clamped to its last day (Jan 31 + 1 month
    = Feb 28/29), keeping the time of day."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def period_start(anchor: datetime, interval: BillingInterval, count: int, index: int) -> datetime:
    """The start of paid period `index` (0 = the first) of a plan billed every `count` `interval`s from `anchor`.
    Always computed from the anchor, never from the previous period, so clamping does not drift: a subscription
    anchored on Jan 31 renews on Feb 28, Mar 31, Apr 30, …"""
    steps = index * count
    if interval is BillingInterval.DAY:
        return anchor + timedelta(days=steps)
    if interval is BillingInterval.WEEK:
        return anchor + timedelta(weeks=steps)
    if interval is BillingInterval.MONTH:
        return add_months(anchor, steps)
    return add_months(anchor, 12 * steps)


def period_bounds(anchor: datetime, interval: BillingInterval, count: int, index: int) -> tuple[datetime, datetime]:
    return (period_start(anchor, interval, count, index), period_start(anchor, interval, count, index + 1))


def first_charge(amount: int, setup_fee: int, trial_days: int) -> int:
    """What subscribing charges at once, before tax: without a trial the first period and the setup fee (one order);
    with a trial nothing — the card is saved, and the setup fee goes with the first paid period, at the trial's
    end."""
    return 0 if trial_days > 0 else amount + setup_fee


def renewal_idempotency_key(cycle_id: str, attempt: int) -> str:
    """The first charge of a cycle uses the cycle's id. Stripe replays a declined (402) answer for a key, so each
    later retry of the same cycle (dunning) needs a key of its own."""
    return cycle_id if attempt <= 1 else f"{cycle_id}:{attempt}"


# --- self-service -------------------------------------------------------------------------------------------------

# The shortest current period a subscription can be left with when it is made due at once (resume after its
# period, change of plan): the period's end must stay after its start.
MIN_PERIOD = timedelta(seconds=1)

# Subscriptions a customer may pause, and skip a period of (a paused one bills nothing; a canceled one is over).
PAUSABLE = (S.TRIALING, S.ACTIVE, S.PAST_DUE)
SKIPPABLE = (S.TRIALING, S.ACTIVE)


def check_self_service(current: str, action: str) -> None:
    """The self-service actions as transitions: cancel (now or at period end), pause, resume, skip, change plan,
    change payment method. Invalid → INVALID_STATE_TRANSITION with from/to."""
    status = CustomerSubscriptionStatus(current)
    allowed = {
        "cancel": tuple(s for s in S if S.CANCELED in TRANSITIONS[s]),
        "pause": PAUSABLE,
        "resume": (S.PAUSED,),
        "skip": SKIPPABLE,
        "change_plan": (S.TRIALING, S.ACTIVE),
        "change_payment_method": (S.TRIALING, S.ACTIVE, S.PAST_DUE, S.PAUSED),
    }[action]
    if status not in allowed:
        raise InvalidStateTransition(f"a {current} subscription cannot {action.replace('_', ' ')}",
                                     **{"from": current, "to": action})


@dataclass(frozen=True)
class Proration:
    """A plan change in the middle of a paid period: the unused part of the old period, credited."""

    used_seconds: int
    period_seconds: int
    credit: int  # minor units, 0 ≤ credit ≤ the old period's amount


def prorate(old_amount: int, period_start: datetime, period_end: datetime, now: datetime) -> Proration:
    """Credit for the unused time of the old plan: old_amount × unused / period, rounded half up in minor units
    (kernel.round_half_up, the platform's one rounding rule). `now` before the period counts as all unused, after
    it as all used. The new plan then starts at `now` and its first period is charged at once, less this credit."""
    if old_amount < 0:
        raise ValueError("amounts are never negative")
    length = int((period_end - period_start).total_seconds())
    if length <= 0:
        raise ValueError("a period ends after it starts")
    used = min(max(int((now - period_start).total_seconds()), 0), length)
    credit = round_half_up(Decimal(old_amount) * Decimal(length - used) / Decimal(length))
    return Proration(used, length, credit)


def apply_credit(unit_price: int, quantity: int, credit: int) -> tuple[int, int]:
    """A renewal's unit price after a credit, and the credit used: the same reduction on every unit (so the order
    line stays unit price × quantity, like any checkout line), never below zero; what does not divide evenly
    over the units stays in the balance for the next renewal."""
    if unit_price < 0 or quantity < 1 or credit < 0:
        raise ValueError("unit price and credit are not negative; quantity is at least 1")
    per_unit = min(unit_price, credit // quantity)
    return unit_price - per_unit, per_unit * quantity


# --- dunning ------------------------------------------------------------------------------------------------------

DEFAULT_RETRY_DAYS = (1, 3, 7)


def validate_retry_days(days: Sequence[int]) -> tuple[int, ...]:
    """Days after the first failure at which a declined renewal is retried: 1-10 of them, increasing, 1-60."""
    if not 1 <= len(days) <= 10:
        raise BadUserInput("give 1-10 retry days", field="retryDays")
    if any(not 1 <= day <= 60 for day in days) or list(days) != sorted(set(days)):
        raise BadUserInput("retry days are increasing whole days between 1 and 60", field="retryDays")
    return tuple(days)


def next_retry_at(failed_at: datetime, retry_days: Sequence[int], retries_done: int) -> datetime | None:
    """When the next dunning retry is due (retry k at failed_at + retry_days[k]), or None when all are spent."""
    if retries_done >= len(retry_days):
        return None
    return failed_at + timedelta(days=retry_days[retries_done])


# --- metrics ------------------------------------------------------------------------------------------------------

DAYS_PER_MONTH = Decimal(365) / Decimal(12)


def monthly_amount(amount: int, interval: BillingInterval, count: int) -> int:
    """A period's amount normalized to a month (MRR), rounded half up: years ÷ 12, weeks × 365/12/7, days ×
    365/12."""
    per_period = Decimal(amount) / Decimal(count)
    factor = {BillingInterval.MONTH: Decimal(1), BillingInterval.YEAR: Decimal(1) / Decimal(12),
              BillingInterval.WEEK: DAYS_PER_MONTH / Decimal(7), BillingInterval.DAY: DAYS_PER_MONTH}[interval]
    return round_half_up(per_period * factor)


def churn_rate(canceled_in_window: int, active_now: int) -> Decimal:
    """Subscriptions canceled in the window over those that were live in it (active now + canceled)."""
    base = canceled_in_window + active_now
    return Decimal(0) if base == 0 else Decimal(canceled_in_window) / Decimal(base)
