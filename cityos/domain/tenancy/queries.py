"""Tenancy reads: the store listing. The caller adds the authorization clause and pages it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing
from cityos.domain.tenancy.models import Store

STORE = table_of(Store)


def stores(*scope: ColumnElement[bool]) -> Listing:
    return Listing(select(STORE).where(*scope))
