"""Vendors: the sellers of a store's marketplace."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin


class Vendor(TenantOwnedMixin, Base):
    __tablename__ = "vendor"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "store_id", "handle"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    handle: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")
    contact_email: Mapped[str | None] = mapped_column(String(320))
