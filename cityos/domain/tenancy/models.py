"""Tenancy tables, and the platform-wide currency table every context refers to."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, TimestampMixin, new_id


class Currency(Base):
    __tablename__ = "currency"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)  # ISO 4217, lower case
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    symbol: Mapped[str] = mapped_column(String(8), nullable=False)
    decimal_digits: Mapped[int] = mapped_column(Integer, nullable=False, server_default="2")


class Tenant(TimestampMixin, Base):
    __tablename__ = "tenant"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")


class Store(TenantOwnedMixin, Base):
    __tablename__ = "store"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["default_currency_code"], ["currency.code"]),
        UniqueConstraint("tenant_id", "handle"),
    )

    handle: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    default_currency_code: Mapped[str] = mapped_column(String(3), nullable=False, server_default="usd")
    # Buyers may ask to return delivered items for this many days after delivery (0: no returns).
    return_window_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default="30")


class StoreDomain(TenantOwnedMixin, Base):
    __tablename__ = "store_domain"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        Index("ix_store_domain_tenant_store", "tenant_id", "store_id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # Host names are globally unique: a request's Host names exactly one store.
    domain: Mapped[str] = mapped_column(String(253), nullable=False, unique=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class SalesChannel(TenantOwnedMixin, Base):
    __tablename__ = "sales_channel"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "store_id", "name"),
        Index("uq_sales_channel_default_per_store", "tenant_id", "store_id", unique=True,
              postgresql_where=text("is_default")),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    is_disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class PublishableApiKey(TenantOwnedMixin, Base):
    """Only a SHA-256 of the key is kept; the key itself is shown once, when it is created."""

    __tablename__ = "publishable_api_key"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        Index("ix_publishable_api_key_tenant_store", "tenant_id", "store_id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    redacted: Mapped[str] = mapped_column(String(20), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))



