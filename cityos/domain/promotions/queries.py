"""Promotion reads: a store's promotions, newest first, filtered by the caller's Cerbos plan."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.promotions.models import Promotion

PROMOTION = table_of(Promotion)


def promotions(*scope: ColumnElement[bool], store_id: uuid.UUID | None = None, status: str | None = None,
               vendor_id: uuid.UUID | None = None) -> Listing:
    statement = select(PROMOTION).where(*scope)
    if store_id is not None:
        statement = statement.where(PROMOTION.c.store_id == store_id)
    if status is not None:
        statement = statement.where(PROMOTION.c.status == status)
    if vendor_id is not None:
        statement = statement.where(PROMOTION.c.vendor_id == vendor_id)
    return Listing(statement, [SortKey(PROMOTION.c.created_at, True), SortKey(PROMOTION.c.id, True)])
