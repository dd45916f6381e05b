"""Commerce reference tables. Currency and payment provider are platform-wide; regions belong to a tenant."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKeyConstraint, Integer, Numeric, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin


class Currency(Base):
    __tablename__ = "currency"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)  # ISO 4217, lower case
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    symbol: Mapped[str] = mapped_column(String(8), nullable=False)
    decimal_digits: Mapped[int] = mapped_column(Integer, nullable=False, server_default="2")


class PaymentProvider(Base):
    __tablename__ = "payment_provider"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)  # e.g. "stripe"
    is_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


class Region(TenantOwnedMixin, Base):
    __tablename__ = "region"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        UniqueConstraint("tenant_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    country_code: Mapped[str] = mapped_column(String(2), nullable=False)  # ISO 3166-1 alpha-2, lower case
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4), nullable=False, server_default="0")
    payment_provider_id: Mapped[str] = mapped_column(String(50), nullable=False, server_default="stripe")


class RegionState(TenantOwnedMixin, Base):
    """A subdivision (ISO 3166-2) of a region's country: US states, their districts and territories."""

    __tablename__ = "region_state"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "region_id"], ["region.tenant_id", "region.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "region_id", "code"),
    )

    region_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    code: Mapped[str] = mapped_column(String(6), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)


class ShippingOption(TenantOwnedMixin, Base):
    """A way to ship in a region at a flat amount, offered when the cart's subtotal reaches `min_subtotal`."""

    __tablename__ = "shipping_option"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "region_id"], ["region.tenant_id", "region.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "region_id", "code"),
    )

    region_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    code: Mapped[str] = mapped_column(String(50), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # minor units of the region's currency
    min_subtotal: Mapped[int | None] = mapped_column(Integer)  # offered only when subtotal ≥ this (minor units)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
