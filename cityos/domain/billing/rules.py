"""Pure billing rules: plan validation, period arithmetic (month-end clamping without drift) and the status
machine of a customer subscription."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from cityos.domain.billing.models import BillingInterval, CustomerSubscriptionStatus
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
    """What subscribing charges at once: the setup fee, plus the first period unless there is a trial."""
    return setup_fee + (0 if trial_days > 0 else amount)


def renewal_idempotency_key(cycle_id: str, attempt: int) -> str:
    """The first charge of a cycle uses the cycle's id. Stripe replays a declined (402) answer for a key, so each
    later retry of the same cycle (dunning) needs a key of its own."""
    return cycle_id if attempt <= 1 else f"{cycle_id}:{attempt}"
