"""Marketplace reads: vendors, commission rules, a vendor's ledger entries and payouts (newest first), the store
a vendor sells in. Listing functions return the statement and keyset order; the caller adds the authorization
clause and pages it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.marketplace.models import CommissionRule, CommissionTransaction, Payout, Vendor

VENDOR = table_of(Vendor)
RULE = table_of(CommissionRule)
ENTRY = table_of(CommissionTransaction)
PAYOUT = table_of(Payout)

# The vendor a commission rule is about ("" unless the rule is scoped to a vendor), as the policies read it.
RULE_VENDOR_ID: ColumnElement[Any] = case((RULE.c.scope == "vendor", cast(RULE.c.scope_id, Text)), else_="")


async def vendor_store_id(connection: AsyncConnection, vendor_id: uuid.UUID) -> uuid.UUID | None:
    """The store a vendor sells in; None when there is no such vendor (in this tenant)."""
    store_id: uuid.UUID | None = (await connection.execute(
        select(VENDOR.c.store_id).where(VENDOR.c.id == vendor_id))).scalar()
    return store_id


def vendors(*scope: ColumnElement[bool], store_id: uuid.UUID | None) -> Listing:
    statement = select(VENDOR).where(*scope)
    if store_id is not None:
        statement = statement.where(VENDOR.c.store_id == store_id)
    return Listing(statement)


def commission_rules(*scope: ColumnElement[bool]) -> Listing:
    return Listing(select(RULE).where(*scope))


def ledger_entries(vendor_id: uuid.UUID) -> Listing:
    """A vendor's commission ledger, newest first."""
    return Listing(select(ENTRY).where(ENTRY.c.vendor_id == vendor_id),
                   [SortKey(ENTRY.c.created_at, True), SortKey(ENTRY.c.id, True)])


def payouts(vendor_id: uuid.UUID) -> Listing:
    """A vendor's payouts, newest first."""
    return Listing(select(PAYOUT).where(PAYOUT.c.vendor_id == vendor_id),
                   [SortKey(PAYOUT.c.created_at, True), SortKey(PAYOUT.c.id, True)])
