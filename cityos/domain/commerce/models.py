"""Commerce reference tables. The payment provider is platform-wide (the currency table is in tenancy); regions
belong to a tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, one_of


class CartStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"  # an order was made from it
    AWAITING_APPROVAL = "awaiting_approval"  # its order waits for the company's approvers, then for payment


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
    # Every country the region sells to (lower case); country_code is the first of them.
    country_codes: Mapped[list[str]] = mapped_column(ARRAY(String(2)), nullable=False, server_default="{}")
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(7, 4), nullable=False, server_default="0")
    # Prices (and shipping) include the tax: the tax is the part of the total the rate accounts for.
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
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
    tax_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))  # null: the region's rate


class ShippingOption(TenantOwnedMixin, Base):
    """A way to ship in a region: a flat amount, free from `free_above`, or priced by weight bands; offered when
    the cart's subtotal reaches `min_subtotal`. With `vendor_id`, the vendor's own price for its items (commerce
    rules: each such vendor's shipping is charged on its own in one checkout)."""

    __tablename__ = "shipping_option"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "region_id"], ["region.tenant_id", "region.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "region_id", "vendor_id", "code", postgresql_nulls_not_distinct=True),
    )

    region_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    code: Mapped[str] = mapped_column(String(50), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # minor units of the region's currency
    min_subtotal: Mapped[int | None] = mapped_column(Integer)  # offered only when subtotal ≥ this (minor units)
    free_above: Mapped[int | None] = mapped_column(Integer)  # free when the subtotal is at least this
    # [{"up_to_grams": int | null, "amount": int}, …] ascending; the last may be open (null); replaces `amount`
    weight_bands: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB(none_as_null=True))
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))


class Cart(TenantOwnedMixin, Base):
    """A shopping cart of a store. `order_id` is chosen when checkout starts, so the Stripe PaymentIntent's
    transfer_group and the order created later share it (exactly one order per cart)."""

    __tablename__ = "cart"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "region_id"], ["region.tenant_id", "region.id"]),
        ForeignKeyConstraint(["tenant_id", "shipping_option_id"], ["shipping_option.tenant_id", "shipping_option.id"]),
        one_of(CartStatus),
        Index("ix_cart_payment_intent", "payment_intent_id", unique=True),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    region_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    customer_id: Mapped[str | None] = mapped_column(String(200))  # the token subject of a signed-in customer
    email: Mapped[str | None] = mapped_column(String(320))
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    shipping_option_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=CartStatus.OPEN.value)
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payment_intent_id: Mapped[str | None] = mapped_column(String(100))
    payment_error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # SHA-256 (hex) of the order access token startCheckout hands the buyer; the token itself is never stored.
    access_token_hash: Mapped[str | None] = mapped_column(String(64))
    # The B2B company of a signed-in company user: its price list prices the cart (catalog/rules.unit_price).
    company_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class CartLine(TenantOwnedMixin, Base):
    __tablename__ = "cart_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"]),
        UniqueConstraint("tenant_id", "cart_id", "variant_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)


class InventoryReservation(TenantOwnedMixin, Base):
    """Units taken off a variant's stock for a cart in checkout; released if the checkout expires or fails for
    good, consumed when the order is created."""

    __tablename__ = "inventory_reservation"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"]),
        UniqueConstraint("tenant_id", "cart_id", "variant_id"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


CHECKOUT_ATTEMPT_STATUSES = ("pending", "superseded", "canceled", "ordered", "refund_pending", "refunded")


class CheckoutAttempt(TenantOwnedMixin, Base):
    """One PaymentIntent of a cart and the snapshot (lines, prices, totals, shipping, address) it charges for.

    pending → ordered (its payment succeeded and the order was built from the snapshot) or superseded (the cart
    changed; the PaymentIntent is being canceled) → canceled. A payment that succeeds but cannot become an order
    (a superseded attempt, an amount mismatch, stock sold out after the reservation expired) goes to
    refund_pending with its `reason`, then refunded once Stripe refunded it: a succeeded payment always ends as
    an order or a refund, both recorded here."""

    __tablename__ = "checkout_attempt"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "payment_intent_id"),
        CheckConstraint("status in ({})".format(", ".join(f"'{s}'" for s in CHECKOUT_ATTEMPT_STATUSES)),
                        name="status"),
        Index("ix_checkout_attempt_tenant_cart", "tenant_id", "cart_id", "created_at"),
        Index("ix_checkout_attempt_tenant_status", "tenant_id", "status", "created_at"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    customer_id: Mapped[str | None] = mapped_column(String(200))  # the cart's customer (policies)
    payment_intent_id: Mapped[str] = mapped_column(String(100), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    reason: Mapped[str | None] = mapped_column(String(500))
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    refund_id: Mapped[str | None] = mapped_column(String(100))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
