"""The content table: Payload's content of one of our objects (product, category, vendor, store)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, one_of


class ContentKind(StrEnum):
    """Our objects that have a Payload document (its collection: `rules.COLLECTIONS`)."""

    PRODUCT = "product"
    CATEGORY = "category"
    VENDOR = "vendor"
    STORE = "store"


class Content(Base):
    """One object's content as Payload last sent it. `payload_updated_at` is the document's `updatedAt`: an
    older version arriving late (a slow webhook after a pull) is ignored."""

    __tablename__ = "content"
    __table_args__ = (
        one_of(ContentKind, "kind"),
        Index("ix_content_tenant_payload", "tenant_id", "kind", "payload_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    object_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    payload_id: Mapped[str | None] = mapped_column(String(100))
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    payload_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
