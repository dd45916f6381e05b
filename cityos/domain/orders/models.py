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
    # shipping_total is the vendor's own shipping (its own option priced it; the ledger pays it to the vendor),
    # not a share of the store's shipping (which stays the platform's)
    own_shipping: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
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


class RefundStatus(StrEnum):
    """A refund's place: `pending` until Stripe took it (and while Stripe processes it), `succeeded`, `failed`
    (Stripe refused it or it failed later: the ledger is untouched or restored), `requires_action`, `canceled`."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"
    CANCELED = "canceled"


class Refund(TenantOwnedMixin, Base):
    """Money given back to the buyer through Stripe `refunds.create` (idempotency key `refund-<id>`): some units of
    some lines (their goods and tax share), and optionally the shipping (with its tax share)."""

    __tablename__ = "refund"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
        one_of(RefundStatus),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("shipping_amount >= 0", name="shipping_not_negative"),
        Index("ix_refund_tenant_order", "tenant_id", "order_id", "created_at"),
        Index("ix_refund_tenant_store", "tenant_id", "store_id", "created_at"),
        Index("ix_refund_stripe", "stripe_refund_id", unique=True),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # The vendor whose lines it refunds, when they are all one vendor's and no shipping is refunded (that vendor
    # sees it); a vendor's own refund (refundVendorOrder) always.
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    return_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    shipping_amount: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    reason: Mapped[str] = mapped_column(String(30), nullable=False)
    note: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=RefundStatus.PENDING.value)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    ledger_recorded: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    requested_by: Mapped[str] = mapped_column(String(200), nullable=False)


class RefundLine(TenantOwnedMixin, Base):
    """Units of one order line a refund gives back: units first_unit … first_unit + quantity − 1 of the line (so
    repeated partial refunds split the line's amounts exactly, by the largest-remainder rule)."""

    __tablename__ = "refund_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "refund_id"], ["refund.tenant_id", "refund.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "order_line_id"], ["order_line.tenant_id", "order_line.id"],
                             ondelete="CASCADE"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unstocked >= 0 and unstock_shortfall >= 0 and unstocked + unstock_shortfall <= quantity",
                        name="unstock_within_restock"),
        UniqueConstraint("tenant_id", "refund_id", "order_line_id"),
        Index("ix_refund_line_tenant_line", "tenant_id", "order_line_id"),
    )

    refund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_line_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    first_unit: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # goods
    tax_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    restock: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # The refund failed after its restock: units taken out of stock again, and units that were sold again
    # meanwhile (not in stock to take back: stock never goes negative; recorded here and logged).
    unstocked: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unstock_shortfall: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class ReversalStatus(StrEnum):
    """A vendor share of a refund already paid out: `pending` until Stripe reversed it from the vendor's transfer
    (`reversed`), or `debt` when the vendor's balance could not cover it (netted from the next payout)."""

    PENDING = "pending"
    REVERSED = "reversed"
    DEBT = "debt"


class RefundTransferReversal(TenantOwnedMixin, Base):
    """The refunded vendor share of sales already paid out in one payout, taken back from that payout's transfer
    (Stripe `transfers.reversals.create`, idempotency key `reversal-<id>`)."""

    __tablename__ = "refund_transfer_reversal"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "refund_id"], ["refund.tenant_id", "refund.id"], ondelete="CASCADE"),
        one_of(ReversalStatus),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("tenant_id", "refund_id", "payout_id"),
        Index("ix_refund_transfer_reversal_tenant_vendor", "tenant_id", "vendor_id", "created_at"),
    )

    refund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    payout_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    stripe_transfer_id: Mapped[str] = mapped_column(String(100), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=ReversalStatus.PENDING.value)
    stripe_reversal_id: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(500))


class ReturnStatus(StrEnum):
    """requested → approved → received → refunded; or rejected; `received` stays when the refund failed."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"
    REFUNDED = "refunded"


class OrderReturn(TenantOwnedMixin, Base):
    """A buyer's return of delivered lines, with a reason; vendor_id set when every line is one vendor's (that
    vendor's admins may then approve, reject and receive it)."""

    __tablename__ = "order_return"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
        one_of(ReturnStatus),
        Index("ix_order_return_tenant_order", "tenant_id", "order_id", "created_at"),
        Index("ix_order_return_tenant_store", "tenant_id", "store_id", "created_at"),
        Index("ix_order_return_tenant_vendor", "tenant_id", "vendor_id", "created_at"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    customer_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=ReturnStatus.REQUESTED.value)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    decision_note: Mapped[str | None] = mapped_column(String(500))
    refund_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    requested_by: Mapped[str] = mapped_column(String(200), nullable=False)


class ReturnLine(TenantOwnedMixin, Base):
    __tablename__ = "return_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "return_id"], ["order_return.tenant_id", "order_return.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "order_line_id"], ["order_line.tenant_id", "order_line.id"],
                             ondelete="CASCADE"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("tenant_id", "return_id", "order_line_id"),
    )

    return_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_line_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    restock: Mapped[bool | None] = mapped_column(Boolean)  # decided when received
