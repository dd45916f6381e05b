"""The few helpers several domain contexts share, so that no context imports another one for them: uniqueness
conflicts, email validation, money rounding, the largest-remainder allocation, the order status enum and the shape
of a listing (a statement and its keyset order). Contexts import this module; it imports no context."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.errors import BadUserInput, Conflict

T = TypeVar("T")
UNIQUE_VIOLATION = "23505"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class OrderStatus(StrEnum):
    """An order's (and each of its vendor orders') place in the state machine of commerce/rules.py."""

    PENDING = "pending"
    PAID = "paid"
    FULFILLED = "fulfilled"
    COMPLETED = "completed"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PENDING_APPROVAL = "pending_approval"  # a company buyer's order waiting for the company's approvers
    AWAITING_PAYMENT = "awaiting_payment"  # placed on account: its invoice is open (paid once the invoice is)


def _is_unique_violation(error: IntegrityError) -> bool:
    original = error.orig
    return UNIQUE_VIOLATION in {getattr(original, "pgcode", None), getattr(original, "sqlstate", None)}


async def unique_or_conflict(connection: AsyncConnection, work: Callable[[], Awaitable[T]], message: str,
                             field: str) -> T:
    """Run `work` in a savepoint; a unique violation becomes CONFLICT and leaves the transaction usable."""
    try:
        async with connection.begin_nested():
            return await work()
    except IntegrityError as error:
        if _is_unique_violation(error):
            raise Conflict(message, field=field) from None
        raise


def validate_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise BadUserInput("not an email address", field="email")
    return email


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class SortKey:
    """One column of a list's order; the last key of every order must be unique (the id)."""

    column: Any
    descending: bool = False


@dataclass(frozen=True)
class Listing:
    """A list as the domain defines it: the statement selecting its rows (filters, visibility) and the keyset
    order it is paged in (None: created_at, id of the selected table); `counted`, when given, selects the same rows
    in a shape made for reading them all (totalCount), where `statement` is made for stopping after a page."""

    statement: Select[Any]
    order: Sequence[SortKey] | None = None
    counted: Select[Any] | None = None


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` (≥ 0) in proportion to non-negative `weights` by largest remainder (the rule is written down
    in commerce/rules.py); the parts sum exactly to `total`."""
    if total < 0 or any(weight < 0 for weight in weights):
        raise ValueError("allocate needs a non-negative total and weights")
    if not weights:
        if total:
            raise ValueError("cannot allocate a non-zero total to no parts")
        return []
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights, weight_sum = [1] * len(weights), len(weights)
    floors = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in order[:left]:
        floors[index] += 1
    return floors
