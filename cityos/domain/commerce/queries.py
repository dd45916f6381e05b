"""Commerce reads: the checkout attempts listing (newest first, by status) and the regions listing (by name). The
caller adds the authorization clause and pages it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from cityos.domain.base import table_of
from cityos.domain.commerce.models import CheckoutAttempt, Region
from cityos.domain.kernel import Listing, SortKey

ATTEMPT = table_of(CheckoutAttempt)
REGION = table_of(Region)

# The attempt's customer ("" for a guest's), as the policies read it.
ATTEMPT_CUSTOMER_ID: ColumnElement[Any] = func.coalesce(ATTEMPT.c.customer_id, "")


def checkout_attempts(*scope: ColumnElement[bool], status: str | None) -> Listing:
    statement = select(ATTEMPT).where(*scope)
    if status is not None:
        statement = statement.where(ATTEMPT.c.status == status)
    return Listing(statement, [SortKey(ATTEMPT.c.created_at, True), SortKey(ATTEMPT.c.id, True)])


def regions(*scope: ColumnElement[bool]) -> Listing:
    return Listing(select(REGION).where(*scope), [SortKey(REGION.c.name), SortKey(REGION.c.id)])
