"""Catalog tables. Money is integer minor units with an ISO 4217 code; percentages are NUMERIC."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Computed,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin

PRODUCT_STATUSES = ("draft", "published", "archived")


class Category(TenantOwnedMixin, Base):
    __tablename__ = "category"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "parent_id"], ["category.tenant_id", "category.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "store_id", "handle"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    handle: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class Product(TenantOwnedMixin, Base):
    __tablename__ = "product"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"]),
        UniqueConstraint("tenant_id", "store_id", "handle"),
        CheckConstraint("status in ('draft', 'published', 'archived')", name="status"),
        Index("ix_product_tenant_store_status", "tenant_id", "store_id", "status", "created_at"),
        Index("ix_product_tenant_vendor", "tenant_id", "vendor_id", "created_at", "id"),
        Index("ix_product_tenant_store_created", "tenant_id", "store_id", "created_at", "id"),  # listings (#12)
        Index("ix_product_tenant_store_title", "tenant_id", "store_id", "title", "id"),  # sorted by title (#12)
        Index("ix_product_search", "search", postgresql_using="gin"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    handle: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="draft")
    images: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False, server_default="{}")
    search: Mapped[Any] = mapped_column(TSVECTOR, Computed(
        "to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(description, ''))", persisted=True))


class ProductCategory(Base):
    __tablename__ = "product_category"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "product_id"], ["product.tenant_id", "product.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "category_id"], ["category.tenant_id", "category.id"],
                             ondelete="CASCADE"),
        Index("ix_product_category_category_product", "tenant_id", "category_id", "product_id"),  # counts (#12)
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    category_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)


class ProductSalesChannel(Base):
    __tablename__ = "product_sales_channel"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "product_id"], ["product.tenant_id", "product.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "sales_channel_id"], ["sales_channel.tenant_id", "sales_channel.id"],
                             ondelete="CASCADE"),
        Index("ix_product_sales_channel_channel", "tenant_id", "sales_channel_id", "product_id"),  # counts (#12)
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    sales_channel_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)


class Variant(TenantOwnedMixin, Base):
    __tablename__ = "variant"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "product_id"], ["product.tenant_id", "product.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "sku"),
        CheckConstraint("inventory_quantity >= 0", name="inventory_not_negative"),
        Index("ix_variant_tenant_product", "tenant_id", "product_id"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    sku: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    options: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False, server_default="{}")
    inventory_quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    weight_grams: Mapped[int | None] = mapped_column(Integer)


class VariantPrice(TenantOwnedMixin, Base):
    __tablename__ = "variant_price"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        UniqueConstraint("tenant_id", "variant_id", "currency_code"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # minor units


class PriceTier(TenantOwnedMixin, Base):
    """Volume pricing: from `min_quantity` units on, a percentage off the list price or a fixed unit price.
    A tier belongs to a variant, or to a product (then it applies to every variant without tiers of its own)."""

    __tablename__ = "price_tier"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "product_id"], ["product.tenant_id", "product.id"], ondelete="CASCADE"),
        CheckConstraint("(variant_id is null) <> (product_id is null)", name="one_owner"),
        CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
        CheckConstraint("(percent_off is null) <> (unit_amount is null)", name="one_kind"),
        CheckConstraint("percent_off is null or (percent_off > 0 and percent_off <= 100)", name="percent_range"),
        CheckConstraint("unit_amount is null or unit_amount >= 0", name="unit_amount_not_negative"),
        Index("ix_price_tier_variant", "tenant_id", "variant_id"),
        Index("ix_price_tier_product", "tenant_id", "product_id"),
    )

    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    product_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    min_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    unit_amount: Mapped[int | None] = mapped_column(Integer)


class PriceList(TenantOwnedMixin, Base):
    """A company's own prices in one currency (its entries). The company is b2b's; the foreign key to it is in the
    migration, so the catalog does not depend on the b2b context."""

    __tablename__ = "price_list"
    __table_args__ = (
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        Index("ix_price_list_tenant_company", "tenant_id", "company_id", "created_at", "id"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)


class PriceListEntry(TenantOwnedMixin, Base):
    """From `min_quantity` units on, a fixed unit price or a percentage off list, for a variant, a product or a
    category (exactly one). Entries are tiers of the company's list (catalog/rules.py)."""

    __tablename__ = "price_list_entry"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "price_list_id"], ["price_list.tenant_id", "price_list.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "product_id"], ["product.tenant_id", "product.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "category_id"], ["category.tenant_id", "category.id"], ondelete="CASCADE"),
        CheckConstraint("num_nonnulls(variant_id, product_id, category_id) = 1", name="one_target"),
        CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
        CheckConstraint("(percent_off is null) <> (unit_amount is null)", name="one_kind"),
        CheckConstraint("percent_off is null or (percent_off > 0 and percent_off <= 100)", name="percent_range"),
        CheckConstraint("unit_amount is null or unit_amount > 0", name="unit_amount_positive"),
        Index("ix_price_list_entry_tenant_list", "tenant_id", "price_list_id"),
    )

    price_list_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    product_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    category_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    min_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    unit_amount: Mapped[int | None] = mapped_column(Integer)
