"""Promotion tables: a store's promotions (a code or automatic), the per-store setting that vendors' promotions need
approval, the codes applied to carts, each order's redemptions and how each order line's discount was funded.

Each status is a StrEnum: the one list that derives the table's CHECK, drives the rules and the GraphQL enum."""

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


class PromotionStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"  # a vendor's promotion in a store that approves them first
    ACTIVE = "active"
    ARCHIVED = "archived"


class PromotionAction(StrEnum):
    """What a promotion takes off (rules.py applies each)."""

    ORDER_PERCENT = "order_percent"
    ORDER_FIXED = "order_fixed"
    LINES_PERCENT = "lines_percent"
    LINES_FIXED = "lines_fixed"
    FREE_SHIPPING = "free_shipping"
    BUY_X_GET_Y = "buy_x_get_y"
    TIERED = "tiered"


class PromotionStacking(StrEnum):
    EXCLUSIVE = "exclusive"
    COMBINABLE = "combinable"


class PromotionFunding(StrEnum):
    PLATFORM = "platform"
    VENDOR = "vendor"
    SPLIT = "split"


class RedemptionStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"  # its order was canceled: the use counts no more


class Promotion(TenantOwnedMixin, Base):
    __tablename__ = "promotion"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        one_of(PromotionStatus),
        one_of(PromotionAction, "action"),
        one_of(PromotionStacking, "stacking"),
        one_of(PromotionFunding, "funding"),
        CheckConstraint("percent is null or (percent >= 0 and percent <= 100)", name="percent_range"),
        CheckConstraint("vendor_share_percent >= 0 and vendor_share_percent <= 100", name="vendor_share_range"),
        CheckConstraint("amount is null or amount >= 0", name="amount_not_negative"),
        CheckConstraint("times_used >= 0 and (usage_limit is null or times_used <= usage_limit)",
                        name="uses_within_limit"),
        CheckConstraint("starts_at is null or ends_at is null or starts_at < ends_at", name="dates_in_order"),
        Index("uq_promotion_tenant_store_code", "tenant_id", "store_id", text("lower(code)"), unique=True,
              postgresql_where=text("code is not null")),
        Index("ix_promotion_tenant_store", "tenant_id", "store_id", "created_at", "id"),
        Index("ix_promotion_tenant_vendor", "tenant_id", "vendor_id", "created_at", "id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # a vendor's own promotion
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    code: Mapped[str | None] = mapped_column(String(64))  # null: automatic (applies when its conditions hold)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    times_used: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    stacking: Mapped[str] = mapped_column(String(20), nullable=False, server_default="combinable")
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    amount: Mapped[int | None] = mapped_column(Integer)
    currency_code: Mapped[str | None] = mapped_column(String(3))  # fixed and tiered amounts are in one currency
    buy_quantity: Mapped[int | None] = mapped_column(Integer)
    get_quantity: Mapped[int | None] = mapped_column(Integer)
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)  # [{threshold, amount}] rising
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    funding: Mapped[str] = mapped_column(String(20), nullable=False, server_default="platform")
    vendor_share_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), nullable=False, server_default="0")
    max_cycles: Mapped[int | None] = mapped_column(Integer)  # subscription renewals it discounts (null: every one)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PromotionSettings(TenantOwnedMixin, Base):
    """A store's promotion settings (one row per store; none: the defaults)."""

    __tablename__ = "promotion_settings"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "store_id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_approval_required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class CartPromotion(TenantOwnedMixin, Base):
    """A code applied to a cart (automatic promotions are not stored: they are evaluated on every read)."""

    __tablename__ = "cart_promotion"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "promotion_id"], ["promotion.tenant_id", "promotion.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "cart_id", "promotion_id"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    promotion_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)


class PromotionRedemption(TenantOwnedMixin, Base):
    """One use of a promotion: counted when its order is created, released when the order is canceled."""

    __tablename__ = "promotion_redemption"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "promotion_id"], ["promotion.tenant_id", "promotion.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
        one_of(RedemptionStatus),
        UniqueConstraint("tenant_id", "promotion_id", "order_id"),
        CheckConstraint("amount >= 0 and shipping_amount >= 0", name="amounts_not_negative"),
        Index("ix_promotion_redemption_tenant_customer", "tenant_id", "promotion_id", "customer_key"),
        Index("ix_promotion_redemption_tenant_order", "tenant_id", "order_id"),
    )

    promotion_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    customer_key: Mapped[str | None] = mapped_column(String(320))  # the customer's id, else the cart's email
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # taken off the lines
    shipping_amount: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")  # free shipping
    order_total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")  # the order's revenue


class OrderLinePromotion(TenantOwnedMixin, Base):
    """The part of one promotion's discount an order line got, and who funds it (platform + vendor = amount)."""

    __tablename__ = "order_line_promotion"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_line_id"], ["order_line.tenant_id", "order_line.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "promotion_id"], ["promotion.tenant_id", "promotion.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "order_line_id", "promotion_id"),
        CheckConstraint("amount = platform_amount + vendor_amount and platform_amount >= 0 and vendor_amount >= 0",
                        name="funding_adds_up"),
        Index("ix_order_line_promotion_tenant_promotion", "tenant_id", "promotion_id"),
        Index("ix_order_line_promotion_tenant_order", "tenant_id", "order_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    order_line_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    promotion_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    platform_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    vendor_amount: Mapped[int] = mapped_column(Integer, nullable=False)


class SubscriptionPromotion(TenantOwnedMixin, Base):
    """A promotion a customer subscription carries into its renewals, for `cycles` renewals (null: every one)."""

    __tablename__ = "subscription_promotion"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "subscription_id"],
                             ["customer_subscription.tenant_id", "customer_subscription.id"], ondelete="CASCADE",
                             name="fk_subscription_promotion_subscription"),
        ForeignKeyConstraint(["tenant_id", "promotion_id"], ["promotion.tenant_id", "promotion.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "subscription_id"),
        CheckConstraint("cycles_used >= 0 and (cycles is null or cycles_used <= cycles)", name="cycles_in_range"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    promotion_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    cycles: Mapped[int | None] = mapped_column(Integer)
    cycles_used: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
