"""catalog vendors shipping

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

TENANT_OWNED = ("vendor", "category", "shipping_option", "product", "product_category", "product_sales_channel",
                "variant", "variant_price", "price_tier")

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('category',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('parent_id', sa.UUID(), nullable=True),
    sa.Column('handle', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('rank', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'parent_id'], ['category.tenant_id', 'category.id'], name=op.f('fk_category_tenant_id_parent_id_category'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_category_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_category')),
    sa.UniqueConstraint('tenant_id', 'store_id', 'handle', name=op.f('uq_category_tenant_id_store_id_handle'))
    )
    op.create_table('shipping_option',
    sa.Column('region_id', sa.UUID(), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('min_subtotal', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'region_id'], ['region.tenant_id', 'region.id'], name=op.f('fk_shipping_option_tenant_id_region_id_region'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_shipping_option')),
    sa.UniqueConstraint('tenant_id', 'region_id', 'code', name=op.f('uq_shipping_option_tenant_id_region_id_code'))
    )
    op.create_table('vendor',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('handle', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='active', nullable=False),
    sa.Column('contact_email', sa.String(length=320), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_vendor_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_vendor')),
    sa.UniqueConstraint('tenant_id', 'store_id', 'handle', name=op.f('uq_vendor_tenant_id_store_id_handle'))
    )
    op.create_table('product',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('vendor_id', sa.UUID(), nullable=True),
    sa.Column('handle', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='draft', nullable=False),
    sa.Column('images', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(description, ''))", persisted=True), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('draft', 'published', 'archived')", name=op.f('ck_product_status')),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_product_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'vendor_id'], ['vendor.tenant_id', 'vendor.id'], name=op.f('fk_product_tenant_id_vendor_id_vendor')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_product')),
    sa.UniqueConstraint('tenant_id', 'store_id', 'handle', name=op.f('uq_product_tenant_id_store_id_handle'))
    )
    op.create_index('ix_product_search', 'product', ['search'], unique=False, postgresql_using='gin')
    op.create_index('ix_product_tenant_store_status', 'product', ['tenant_id', 'store_id', 'status', 'created_at'], unique=False)
    op.create_table('product_category',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('product_id', sa.UUID(), nullable=False),
    sa.Column('category_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'category_id'], ['category.tenant_id', 'category.id'], name=op.f('fk_product_category_tenant_id_category_id_category'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'product_id'], ['product.tenant_id', 'product.id'], name=op.f('fk_product_category_tenant_id_product_id_product'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'product_id', 'category_id', name=op.f('pk_product_category'))
    )
    op.create_index('ix_product_category_category', 'product_category', ['tenant_id', 'category_id'], unique=False)
    op.create_table('product_sales_channel',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('product_id', sa.UUID(), nullable=False),
    sa.Column('sales_channel_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'product_id'], ['product.tenant_id', 'product.id'], name=op.f('fk_product_sales_channel_tenant_id_product_id_product'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'sales_channel_id'], ['sales_channel.tenant_id', 'sales_channel.id'], name=op.f('fk_product_sales_channel_tenant_id_sales_channel_id_sales_channel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'product_id', 'sales_channel_id', name=op.f('pk_product_sales_channel'))
    )
    op.create_table('variant',
    sa.Column('product_id', sa.UUID(), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('inventory_quantity', sa.Integer(), server_default='0', nullable=False),
    sa.Column('weight_grams', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('inventory_quantity >= 0', name=op.f('ck_variant_inventory_not_negative')),
    sa.ForeignKeyConstraint(['tenant_id', 'product_id'], ['product.tenant_id', 'product.id'], name=op.f('fk_variant_tenant_id_product_id_product'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_variant')),
    sa.UniqueConstraint('tenant_id', 'sku', name=op.f('uq_variant_tenant_id_sku'))
    )
    op.create_index('ix_variant_tenant_product', 'variant', ['tenant_id', 'product_id'], unique=False)
    op.create_table('price_tier',
    sa.Column('variant_id', sa.UUID(), nullable=True),
    sa.Column('product_id', sa.UUID(), nullable=True),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('min_quantity', sa.Integer(), nullable=False),
    sa.Column('percent_off', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('unit_amount', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(percent_off is null) <> (unit_amount is null)', name=op.f('ck_price_tier_one_kind')),
    sa.CheckConstraint('(variant_id is null) <> (product_id is null)', name=op.f('ck_price_tier_one_owner')),
    sa.CheckConstraint('min_quantity >= 1', name=op.f('ck_price_tier_min_quantity_positive')),
    sa.CheckConstraint('percent_off is null or (percent_off > 0 and percent_off <= 100)', name=op.f('ck_price_tier_percent_range')),
    sa.CheckConstraint('unit_amount is null or unit_amount >= 0', name=op.f('ck_price_tier_unit_amount_not_negative')),
    sa.ForeignKeyConstraint(['tenant_id', 'product_id'], ['product.tenant_id', 'product.id'], name=op.f('fk_price_tier_tenant_id_product_id_product'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'variant_id'], ['variant.tenant_id', 'variant.id'], name=op.f('fk_price_tier_tenant_id_variant_id_variant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_price_tier'))
    )
    op.create_index('ix_price_tier_product', 'price_tier', ['tenant_id', 'product_id'], unique=False)
    op.create_index('ix_price_tier_variant', 'price_tier', ['tenant_id', 'variant_id'], unique=False)
    op.create_table('variant_price',
    sa.Column('variant_id', sa.UUID(), nullable=False),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_variant_price_amount_not_negative')),
    sa.ForeignKeyConstraint(['currency_code'], ['currency.code'], name=op.f('fk_variant_price_currency_code_currency')),
    sa.ForeignKeyConstraint(['tenant_id', 'variant_id'], ['variant.tenant_id', 'variant.id'], name=op.f('fk_variant_price_tenant_id_variant_id_variant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_variant_price')),
    sa.UniqueConstraint('tenant_id', 'variant_id', 'currency_code', name=op.f('uq_variant_price_tenant_id_variant_id_currency_code'))
    )
    for table in TENANT_OWNED:
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    for table in TENANT_OWNED:
        rls.disable_tenant_rls(table)
    op.drop_table('variant_price')
    op.drop_index('ix_price_tier_variant', table_name='price_tier')
    op.drop_index('ix_price_tier_product', table_name='price_tier')
    op.drop_table('price_tier')
    op.drop_index('ix_variant_tenant_product', table_name='variant')
    op.drop_table('variant')
    op.drop_table('product_sales_channel')
    op.drop_index('ix_product_category_category', table_name='product_category')
    op.drop_table('product_category')
    op.drop_index('ix_product_tenant_store_status', table_name='product')
    op.drop_index('ix_product_search', table_name='product', postgresql_using='gin')
    op.drop_table('product')
    op.drop_table('vendor')
    op.drop_table('shipping_option')
    op.drop_table('category')
