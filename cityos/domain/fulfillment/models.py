"""Shipment and tracking tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, one_of


class ShipmentStatus(StrEnum):
    """Where a delivery is (fulfillment/rules.py maps Fleetbase events onto these, moving only forward)."""

    CREATED = "created"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELED = "canceled"


class Shipment(TenantOwnedMixin, Base):
    __tablename__ = "shipment"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "vendor_order_id"], ["vendor_order.tenant_id", "vendor_order.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "vendor_order_id"),
        one_of(ShipmentStatus),
        Index("ix_shipment_fleetbase", "fleetbase_order_id", unique=True),
        Index("ix_shipment_tenant_order", "tenant_id", "order_id"),
    )

    vendor_order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    customer_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=ShipmentStatus.CREATED.value)
    fleetbase_order_id: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))


class TrackingEvent(TenantOwnedMixin, Base):
    __tablename__ = "tracking_event"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "shipment_id"], ["shipment.tenant_id", "shipment.id"], ondelete="CASCADE"),
        one_of(ShipmentStatus),
        Index("ix_tracking_event_shipment", "tenant_id", "shipment_id", "occurred_at"),
    )

    shipment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    source_event: Mapped[str] = mapped_column(String(100), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
