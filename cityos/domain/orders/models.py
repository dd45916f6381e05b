"""Order tables. Amounts are integer minor units of the order's currency; parts sum exactly to their whole."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, one_of
from cityos.domain.kernel import OrderStatus as OrderStatus  # the enum several contexts share


class VendorFulfillment(StrEnum):
    """Where a vendor is with its part of an order (fulfillment/rules.py moves it forward only)."""

    UNFULFILLED = "unfulfilled"
    PROCESSING = "processing"
    READY = "ready"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class OrderFulfillment(StrEnum):
    """An order's fulfilment, derived from its vendor orders' (fulfillment/rules.py)."""

    UNFULFILLED = "unfulfilled"
    PROCESSING = "processing"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    PARTIALLY_DELIVERED = "partially_delivered"
    DELIVERED = "delivered"


TOTAL_ADDS_UP = ("total = subtotal - discount_total + shipping_total + "
                 "case when tax_inclusive then 0 else tax_total end")


class Order(TenantOwnedMixin, Base):
    __tablename__ = "orders"  # "order" is a reserved word
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"]),
        UniqueConstraint("tenant_id", "cart_id"),
        UniqueConstraint("payment_intent_id"),
        one_of(OrderStatus),
        CheckConstraint(TOTAL_ADDS_UP, name="total_adds_up"),
        CheckConstraint("fulfillment_status in ({})".format(", ".join(f"'{s}'" for s in OrderFulfillment)),
                        name="fulfillment_status"),
        Index("ix_orders_tenant_store_created", "tenant_id", "store_id", "created_at"),
        Index("ix_orders_tenant_customer", "tenant_id", "customer_id"),
        Index("ix_orders_tenant_email", "tenant_id", "email"),
        Index("ix_orders_tenant_company", "tenant_id", "company_id", "created_at"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    customer_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=OrderStatus.PENDING.value)
    subtotal: Mapped[int] = mapped_column(Integer, nullable=False)
    discount_total: Mapped[int] = mapped_column(Integer, nullable=False)
    shipping_total: Mapped[int] = mapped_column(Integer, nullable=False)
    tax_total: Mapped[int] = mapped_column(Integer, nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    payment_intent_id: Mapped[str | None] = mapped_column(String(100))  # null: paid on account (b2b invoice)
    company_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # a B2B company's order
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    shipping_option_code: Mapped[str] = mapped_column(String(50), nullable=False)
    # The cart's order access token hash (a guest buyer reads the order with the token; see policies/order.yaml).
    access_token_hash: Mapped[str | None] = mapped_column(String(64))
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    fulfillment_status: Mapped[str] = mapped_column(String(20), nullable=False,
                                                    server_default=OrderFulfillment.UNFULFILLED.value)


class VendorOrder(TenantOwnedMixin, Base):
    """The part of an order one vendor fulfils (vendor_id null: products sold by the store itself)."""

    __tablename__ = "vendor_order"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
        one_of(OrderStatus),
        CheckConstraint(TOTAL_ADDS_UP, name="total_adds_up"),
        CheckConstraint("fulfillment_status in ({})".format(", ".join(f"'{s}'" for s in VendorFulfillment)),
                        name="fulfillment_status"),
        Index("ix_vendor_order_tenant_vendor", "tenant_id", "vendor_id", "created_at"),
        Index("ix_vendor_order_tenant_order", "tenant_id", "order_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=OrderStatus.PENDING.value)
    subtotal: Mapped[int] = mapped_column(Integer, nullable=False)
    discount_total: Mapped[int] = mapped_column(Integer, nullable=False)
    shipping_total: Mapped[int] = mapped_column(Integer, nullable=False)
    tax_total: Mapped[int] = mapped_column(Integer, nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    fulfillment_status: Mapped[str] = mapped_column(String(20), nullable=False,
                                                    server_default=VendorFulfillment.UNFULFILLED.value)
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    carrier: Mapped[str | None] = mapped_column(String(100))  # who carries it: the vendor's carrier or fleetbase
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderLine(TenantOwnedMixin, Base):
    __tablename__ = "order_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "vendor_order_id"], ["vendor_order.tenant_id", "vendor_order.id"],
                             ondelete="CASCADE"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_order_line_tenant_order", "tenant_id", "order_id"),
        Index("ix_order_line_tenant_vendor_order", "tenant_id", "vendor_order_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    sku: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str] = mapped_column(String(600), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    list_unit_price: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[int] = mapped_column(Integer, nullable=False)
    subtotal: Mapped[int] = mapped_column(Integer, nullable=False)  # list_unit_price × quantity
    discount_total: Mapped[int] = mapped_column(Integer, nullable=False)  # tier savings
    total: Mapped[int] = mapped_column(Integer, nullable=False)  # unit_price × quantity
