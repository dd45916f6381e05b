"""Pure B2B rules: spending periods and limits, the quote state machine and its version diffs, approval levels
(which rule applies, who may decide a level, when a level is complete), payment terms and credit.

Written down:
- A spending period is the calendar month or quarter (Jan/Apr/Jul/Oct) in UTC containing the moment; spending
  resets at its boundary: what was spent before `period_start` never counts.
- A buyer's purchase needs approval when it is above their per-order limit, when it would take their spending in
  the period above their period limit, or when an approval rule's `min_amount` is reached (the rule with the
  highest such `min_amount` applies). Over a limit with no rule reached: one level, any company admin.
- A level in mode `any` is complete on the first approval of an eligible approver; in mode `all` once every named
  user approved and, for every named role, at least one holder of it. One rejection rejects the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cityos.domain.b2b.models import CompanyRole, PaymentTerms, QuoteStatus, SpendingPeriod
from cityos.errors import BadUserInput, InvalidStateTransition

MAX_QUOTE_LINES = 200
MAX_VALIDITY_DAYS = 365
DEFAULT_VALIDITY_DAYS = 30
MAX_APPROVAL_LEVELS = 5
TERM_DAYS = {PaymentTerms.NET_15: 15, PaymentTerms.NET_30: 30, PaymentTerms.NET_60: 60}

# --- spending periods and limits --------------------------------------------------------------------------------


def period_bounds(moment: datetime, period: SpendingPeriod) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month or quarter (UTC) that contains `moment`."""
    moment = moment.astimezone(UTC)
    months = 1 if period is SpendingPeriod.MONTH else 3
    first_month = (moment.month - 1) // months * months  # 0-based
    start = datetime(moment.year, first_month + 1, 1, tzinfo=UTC)
    end_index = moment.year * 12 + first_month + months
    end = datetime(end_index // 12, end_index % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True)
class SpendingLimit:
    order_limit: int | None = None
    period_limit: int | None = None
    period: SpendingPeriod | None = None

    def __post_init__(self) -> None:
        if self.order_limit is not None and self.order_limit <= 0:
            raise BadUserInput("orderLimit must be positive", field="orderLimit")
        if self.period_limit is not None and self.period_limit <= 0:
            raise BadUserInput("periodLimit must be positive", field="periodLimit")
        if (self.period_limit is None) != (self.period is None):
            raise BadUserInput("a period limit needs its period (MONTH or QUARTER), and a period its limit",
                               field="period")


def over_limit(limit: SpendingLimit, amount: int, spent_in_period: int) -> list[str]:
    """Why a purchase of `amount` is above the buyer's limits (empty: within them)."""
    reasons = []
    if limit.order_limit is not None and amount > limit.order_limit:
        reasons.append("order_limit")
    if limit.period_limit is not None and spent_in_period + amount > limit.period_limit:
        reasons.append("period_limit")
    return reasons


# --- quotes -----------------------------------------------------------------------------------------------------

Q = QuoteStatus
OPEN = frozenset({Q.REQUESTED, Q.RESPONDED, Q.COUNTERED})
QUOTE_TRANSITIONS: dict[QuoteStatus, frozenset[QuoteStatus]] = {
    Q.REQUESTED: frozenset({Q.RESPONDED, Q.COUNTERED, Q.EXPIRED}),
    Q.RESPONDED: frozenset({Q.RESPONDED, Q.COUNTERED, Q.PENDING_APPROVAL, Q.APPROVED, Q.EXPIRED}),
    Q.COUNTERED: frozenset({Q.RESPONDED, Q.COUNTERED, Q.EXPIRED}),
    Q.PENDING_APPROVAL: frozenset({Q.APPROVED, Q.REJECTED, Q.EXPIRED}),
    Q.APPROVED: frozenset({Q.ORDERED, Q.EXPIRED}),
    Q.REJECTED: frozenset(),
    Q.ORDERED: frozenset(),
    Q.EXPIRED: frozenset(),
}


def check_quote_transition(current: str, target: QuoteStatus) -> None:
    if target not in QUOTE_TRANSITIONS[QuoteStatus(current)]:
        raise InvalidStateTransition(f"a quote cannot go from {current} to {target.value}",
                                     **{"from": current, "to": target.value})


def is_expired(valid_until: datetime, now: datetime) -> bool:
    return now >= valid_until


def validity(now: datetime, days: int | None) -> datetime:
    days = DEFAULT_VALIDITY_DAYS if days is None else days
    if not 1 <= days <= MAX_VALIDITY_DAYS:
        raise BadUserInput(f"validDays must be 1-{MAX_VALIDITY_DAYS}", field="validDays")
    return now + timedelta(days=days)


def check_acceptable(status: str, version: int, wanted_version: int, valid_until: datetime, now: datetime) -> None:
    """The buyer accepts the current version of an answered, unexpired quote: an old version, an expired or a
    rejected quote is INVALID_STATE_TRANSITION."""
    if is_expired(valid_until, now) or status == Q.EXPIRED:
        raise InvalidStateTransition("the quote has expired", **{"from": Q.EXPIRED.value, "to": "accepted"})
    if status != Q.RESPONDED:
        raise InvalidStateTransition(f"a {status} quote cannot be accepted", **{"from": status, "to": "accepted"})
    if wanted_version != version:
        raise InvalidStateTransition(f"version {wanted_version} is not the current version ({version})",
                                     **{"from": status, "to": "accepted", "currentVersion": version})


@dataclass(frozen=True)
class LineEdit:
    variant_id: uuid.UUID
    quantity: int | None = None
    unit_price: int | None = None

    def __post_init__(self) -> None:
        if self.quantity is not None and self.quantity <= 0:
            raise BadUserInput("a quantity must be positive", field="quantity", value=self.quantity)
        if self.unit_price is not None and self.unit_price <= 0:
            raise BadUserInput("a unit price must be positive", field="unitPrice", value=self.unit_price)


def apply_edits(lines: Sequence[Mapping[str, Any]], edits: Sequence[LineEdit],
                editable: frozenset[uuid.UUID] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lines after `edits`, and what changed ({sku, field, from, to}). `editable`: the variants the author may
    change (a vendor its own products'; None: all). An edit of another line is BAD_USER_INPUT."""
    if not edits:
        raise BadUserInput("a response changes at least one line", field="lines")
    by_variant = {uuid.UUID(str(line["variant_id"])): dict(line) for line in lines}
    changes: list[dict[str, Any]] = []
    seen: set[uuid.UUID] = set()
    for edit in edits:
        if edit.variant_id in seen:
            raise BadUserInput("a line is edited twice in one response", field="lines")
        seen.add(edit.variant_id)
        line = by_variant.get(edit.variant_id)
        if line is None or (editable is not None and edit.variant_id not in editable):
            raise BadUserInput("no such line on this quote", field="lines")
        for field_name, value in (("quantity", edit.quantity), ("unit_price", edit.unit_price)):
            if value is not None and value != line[field_name]:
                changes.append({"sku": line["sku"], "variant_id": str(edit.variant_id), "field": field_name,
                                "from": line[field_name], "to": value})
                line[field_name] = value
    if not changes:
        raise BadUserInput("the response changes nothing", field="lines")
    return [by_variant[uuid.UUID(str(line["variant_id"]))] for line in lines], changes


def lines_total(lines: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(line["quantity"]) * int(line["unit_price"]) for line in lines)


# --- approvals --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Level:
    mode: str  # all | any
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("all", "any"):
            raise BadUserInput("a level's mode is ALL or ANY", field="levels")
        if not self.roles and not self.users:
            raise BadUserInput("a level names approver roles or users", field="levels")
        unknown = [role for role in self.roles if role not in (CompanyRole.COMPANY_ADMIN, CompanyRole.APPROVER)]
        if unknown:
            raise BadUserInput("approver roles are COMPANY_ADMIN or APPROVER", field="levels")

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "roles": list(self.roles), "users": list(self.users)}

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Level:
        return cls(str(data["mode"]), tuple(data.get("roles", ())), tuple(data.get("users", ())))

    def eligible(self, user: str, role: str) -> bool:
        return user in self.users or role in self.roles

    def complete(self, approvals: Sequence[tuple[str, str]]) -> bool:
        """Whether (approver, role) approvals complete this level."""
        eligible = [(user, role) for user, role in approvals if self.eligible(user, role)]
        if self.mode == "any":
            return bool(eligible)
        users = {user for user, _ in eligible}
        roles = {role for _, role in eligible}
        return set(self.users) <= users and set(self.roles) <= roles


def validate_levels(levels: Sequence[Level]) -> list[Level]:
    if not 1 <= len(levels) <= MAX_APPROVAL_LEVELS:
        raise BadUserInput(f"a rule has 1-{MAX_APPROVAL_LEVELS} levels", field="levels")
    return list(levels)


ADMIN_LEVEL = Level("any", roles=(CompanyRole.COMPANY_ADMIN.value,))


def required_levels(amount: int, rules: Sequence[tuple[int, Sequence[Level]]],
                    limit_reasons: Sequence[str]) -> list[Level]:
    """The levels a purchase of `amount` needs: the rule with the highest min_amount ≤ amount, or one level of
    any company admin when only a spending limit is exceeded; none when neither applies."""
    reached = [(minimum, levels) for minimum, levels in rules if minimum <= amount]
    if reached:
        return list(max(reached, key=lambda rule: rule[0])[1])
    return [ADMIN_LEVEL] if limit_reasons else []


# --- payment terms and credit -----------------------------------------------------------------------------------

def due_date(issued: datetime, terms: PaymentTerms) -> datetime:
    if terms is PaymentTerms.PREPAID:
        raise BadUserInput("a prepaid company pays by card", field="paymentMethod")
    return issued + timedelta(days=TERM_DAYS[terms])


def available_credit(limit: int, used: int) -> int:
    return max(0, limit - used)


# --- overdue invoices -------------------------------------------------------------------------------------------

REMINDER_EVERY_DAYS = 7


def is_overdue(due_at: datetime, now: datetime) -> bool:
    """An unpaid invoice is overdue from its due moment on."""
    return now >= due_at


def reminder_due(reminded_at: datetime | None, now: datetime) -> bool:
    """An overdue invoice's company is reminded when it becomes overdue, then every REMINDER_EVERY_DAYS days until
    it is paid."""
    return reminded_at is None or now - reminded_at >= timedelta(days=REMINDER_EVERY_DAYS)


# --- invitations ------------------------------------------------------------------------------------------------

INVITATION_DAYS = 7


def invitation_expiry(now: datetime) -> datetime:
    """An invitation (or its re-invitation) is accepted within INVITATION_DAYS days."""
    return now + timedelta(days=INVITATION_DAYS)


def check_acceptable_invitation(status: str, expires_at: datetime, now: datetime) -> None:
    """Only a pending, unexpired invitation is accepted (else INVALID_STATE_TRANSITION)."""
    if status != "pending":
        raise InvalidStateTransition(f"the invitation is {status}", **{"from": status, "to": "accepted"})
    if now >= expires_at:
        raise InvalidStateTransition("the invitation has expired: ask for a new one",
                                     **{"from": "expired", "to": "accepted"})


# --- stores -----------------------------------------------------------------------------------------------------

MAX_COMPANY_STORES = 100


def buys_in(store_ids: str, store_id: object) -> bool:
    """Whether a company restricted to `store_ids` (comma-separated; empty: every store) buys in `store_id`."""
    return not store_ids or str(store_id) in store_ids.split(",")
