"""The declarative base shared by every context, and the column shapes every tenant-owned table repeats."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CheckConstraint, DateTime, MetaData, Table, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def decimal_problem(value: Decimal, *, places: int, field: str) -> str | None:
    """Why a Decimal argument cannot be stored in a NUMERIC column with `places` decimal places (NaN, an
    infinity, more precision than the column keeps), or None when it can."""
    if not value.is_finite():
        return f"{field} must be a finite number"
    exponent = value.normalize().as_tuple().exponent  # 5.000 → 5: trailing zeros are no precision
    if isinstance(exponent, int) and exponent < -places:
        return f"{field} has more than {places} decimal places"
    return None


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False)


class TenantOwnedMixin(TimestampMixin):
    """Primary key (tenant_id, id): every index starts with the distribution column (Citus-ready), and row-level
    security keyed on app.tenant_id guards the table (see migrations)."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)


def table_of(model: Any) -> Table:
    """The Core table of a mapped class, typed as a Table (loaders and Core queries use tables)."""
    return cast(Table, model.__table__)


def one_of(values: type[StrEnum], column: str = "status") -> CheckConstraint:
    """`CHECK (<column> in (...))` derived from a status enum: the enum is the one list of allowed values, read by
    the database constraint, the rules and the GraphQL schema alike. Named after the column (`ck_<table>_status`)."""
    return CheckConstraint("{} in ({})".format(column, ", ".join(f"'{value.value}'" for value in values)),
                           name=column)
