"""Customer account tables: one profile per (tenant, Keycloak subject) and the customer's address book."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin


class CustomerProfile(TenantOwnedMixin, Base):
    __tablename__ = "customer_profile"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "customer_id"),
    )

    customer_id: Mapped[str] = mapped_column(String(200), nullable=False)  # the token subject
    email: Mapped[str | None] = mapped_column(String(320))  # the verified token email when last saved
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))


class CustomerAddress(TenantOwnedMixin, Base):
    """A saved address (the keys of a shipping address); at most one default per customer."""

    __tablename__ = "customer_address"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        Index("ix_customer_address_tenant_customer", "tenant_id", "customer_id", "created_at", "id"),
        Index("uq_customer_address_default", "tenant_id", "customer_id", unique=True,
              postgresql_where=text("is_default")),
    )

    customer_id: Mapped[str] = mapped_column(String(200), nullable=False)
    label: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
