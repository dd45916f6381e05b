"""Marketplace tables: vendors and their users, commission rules, the commission ledger, payouts."""

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
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, one_of


class VendorStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"  # only active vendors are paid out
    SUSPENDED = "suspended"


class PayoutStatus(StrEnum):
    """`pending` until Stripe answers; `failed` releases the payout's ledger entries; `reversed` when Stripe
    reverses the transfer."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    REVERSED = "reversed"


class Vendor(TenantOwnedMixin, Base):
    __tablename__ = "vendor"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "store_id", "handle"),
        one_of(VendorStatus),
        Index("ix_vendor_tenant_store", "tenant_id", "store_id", "created_at", "id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    handle: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=VendorStatus.ACTIVE.value)
    contact_email: Mapped[str | None] = mapped_column(String(320))
    # Stripe Connect
    stripe_account_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    stripe_account_type: Mapped[str | None] = mapped_column(String(20))  # express | standard
    charges_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    details_submitted: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    requirements: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    stripe_synced_at: Mapped[int | None] = mapped_column(Integer)  # `created` of the last account event applied
    # Payout settings: no payout below this amount (minor units); null → the platform default
    payout_minimum: Mapped[int | None] = mapped_column(Integer)
    # Where couriers collect the vendor's parcels (Fleetbase place fields: street1, city, province, …)
    pickup_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class VendorUser(TenantOwnedMixin, Base):
    """A person of a vendor: invited by email (then linked to a Keycloak subject on first sign-in) or by subject."""

    __tablename__ = "vendor_user"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "vendor_id", "email"),
        UniqueConstraint("tenant_id", "vendor_id", "subject"),
        CheckConstraint("role in ('vendor_admin', 'vendor_user')", name="role"),
        CheckConstraint("email is not null or subject is not null", name="identified"),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="invited")


class CommissionRule(TenantOwnedMixin, Base):
    """What the platform keeps of a vendor's sale. Scope: tenant (default), store, vendor, category or product;
    the most specific matching rule wins (see marketplace/rules.py)."""

    __tablename__ = "commission_rule"
    __table_args__ = (
        CheckConstraint("scope in ('tenant', 'store', 'vendor', 'category', 'product')", name="scope"),
        CheckConstraint("(scope = 'tenant') = (scope_id is null)", name="scope_id"),
        CheckConstraint("percentage is not null or flat_per_line is not null", name="has_a_kind"),
        CheckConstraint("percentage is null or (percentage >= 0 and percentage <= 100)", name="percentage_range"),
        CheckConstraint("flat_per_line is null or flat_per_line >= 0", name="flat_not_negative"),
        CheckConstraint("minimum is null or maximum is null or minimum <= maximum", name="min_le_max"),
        Index("ix_commission_rule_tenant_scope", "tenant_id", "scope", "scope_id"),
    )

    scope: Mapped[str] = mapped_column(String(20), nullable=False)
    scope_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    percentage: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    flat_per_line: Mapped[int | None] = mapped_column(Integer)
    minimum: Mapped[int | None] = mapped_column(Integer)
    maximum: Mapped[int | None] = mapped_column(Integer)
    effective_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    effective_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CommissionTransaction(TenantOwnedMixin, Base):
    """The append-only commission ledger: one `sale` entry per vendor order line when its order is paid, one
    `shipping` entry per vendor order a vendor shipped with its own option (no order line: the vendor's own
    shipping, marketplace/rules.shipping_commission), a `reversal` (negated amounts: the refunded share) per line
    or shipping and refund, and a `restored` entry undoing a reversal whose refund failed at Stripe later.
    Balances are sums over it."""

    __tablename__ = "commission_transaction"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"]),
        CheckConstraint("kind in ('sale', 'shipping', 'reversal', 'restored')", name="kind"),
        CheckConstraint("case kind when 'sale' then order_line_id is not null when 'shipping' then order_line_id "
                        "is null else true end", name="line_of_kind"),
        CheckConstraint("line_amount = commission_amount + vendor_amount", name="splits_exactly"),
        # One sale per line; one reversal per line and refund (a refund may reverse part of a line, several
        # refunds the rest); one `reversal` without a refund (the whole line, from before refunds moved money).
        Index("uq_commission_transaction_line_kind", "tenant_id", "order_line_id", "kind", unique=True,
              postgresql_where=text("refund_id is null")),
        Index("uq_commission_transaction_refund_line_kind", "tenant_id", "refund_id", "order_line_id", "kind",
              unique=True, postgresql_where=text("refund_id is not null")),
        # A vendor's own shipping (no order line): one entry per vendor order and kind; one per refund besides.
        Index("uq_commission_transaction_shipping_kind", "tenant_id", "vendor_order_id", "kind", unique=True,
              postgresql_where=text("order_line_id is null and refund_id is null")),
        Index("uq_commission_transaction_refund_shipping_kind", "tenant_id", "refund_id", "vendor_order_id", "kind",
              unique=True, postgresql_where=text("order_line_id is null and refund_id is not null")),
        Index("ix_commission_transaction_vendor", "tenant_id", "vendor_id", "available_at"),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_line_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # null: the vendor's shipping
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    refund_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the refund a reversal is part of
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    line_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    commission_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    vendor_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    rule_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Payout(TenantOwnedMixin, Base):
    """Money moved to a vendor's Stripe account by one transfer. `pending` until Stripe answers; `failed`
    releases its ledger entries for the next run; `reversed` when Stripe reverses the transfer."""

    __tablename__ = "payout"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"]),
        one_of(PayoutStatus),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payout_tenant_vendor", "tenant_id", "vendor_id", "created_at"),
        Index("ix_payout_transfer", "stripe_transfer_id", unique=True),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=PayoutStatus.PENDING.value)
    destination: Mapped[str] = mapped_column(String(100), nullable=False)
    stripe_transfer_id: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    bank_payout_status: Mapped[str | None] = mapped_column(String(30))  # payout.paid / payout.failed of the account


class PayoutTransactionLink(Base):
    """Which ledger entries a payout pays. A failed or reversed payout's links are deleted, releasing them."""

    __tablename__ = "payout_transaction_link"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "payout_id"], ["payout.tenant_id", "payout.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "transaction_id"],
                             ["commission_transaction.tenant_id", "commission_transaction.id"]),
        UniqueConstraint("tenant_id", "transaction_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    payout_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
