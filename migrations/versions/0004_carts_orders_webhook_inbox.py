"""carts orders webhook inbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

TENANT_OWNED = ("cart", "cart_line", "inventory_reservation", "orders", "vendor_order", "order_line")

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_inbox',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('provider', sa.String(length=30), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_inbox')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_webhook_inbox_provider_event_id'))
    )
    op.create_table('orders',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('cart_id', sa.UUID(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='pending', nullable=False),
    sa.Column('subtotal', sa.Integer(), nullable=False),
    sa.Column('discount_total', sa.Integer(), nullable=False),
    sa.Column('shipping_total', sa.Integer(), nullable=False),
    sa.Column('tax_total', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=100), nullable=False),
    sa.Column('shipping_address', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('shipping_option_code', sa.String(length=50), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('pending', 'paid', 'fulfilled', 'completed', 'canceled', 'refunded')", name=op.f('ck_orders_status')),
    sa.CheckConstraint('total = subtotal - discount_total + shipping_total + tax_total', name=op.f('ck_orders_total_adds_up')),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_orders_tenant_id_store_id_store')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_orders')),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_orders_payment_intent_id')),
    sa.UniqueConstraint('tenant_id', 'cart_id', name=op.f('uq_orders_tenant_id_cart_id'))
    )
    op.create_index('ix_orders_tenant_customer', 'orders', ['tenant_id', 'customer_id'], unique=False)
    op.create_index('ix_orders_tenant_store_created', 'orders', ['tenant_id', 'store_id', 'created_at'], unique=False)
    op.create_table('cart',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('region_id', sa.UUID(), nullable=False),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('shipping_address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('shipping_option_id', sa.UUID(), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='open', nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=True),
    sa.Column('payment_intent_id', sa.String(length=100), nullable=True),
    sa.Column('payment_error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('open', 'completed')", name=op.f('ck_cart_status')),
    sa.ForeignKeyConstraint(['tenant_id', 'region_id'], ['region.tenant_id', 'region.id'], name=op.f('fk_cart_tenant_id_region_id_region')),
    sa.ForeignKeyConstraint(['tenant_id', 'shipping_option_id'], ['shipping_option.tenant_id', 'shipping_option.id'], name=op.f('fk_cart_tenant_id_shipping_option_id_shipping_option')),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_cart_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_cart'))
    )
    op.create_index('ix_cart_payment_intent', 'cart', ['payment_intent_id'], unique=True)
    op.create_table('vendor_order',
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('vendor_id', sa.UUID(), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='pending', nullable=False),
    sa.Column('subtotal', sa.Integer(), nullable=False),
    sa.Column('discount_total', sa.Integer(), nullable=False),
    sa.Column('shipping_total', sa.Integer(), nullable=False),
    sa.Column('tax_total', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('pending', 'paid', 'fulfilled', 'completed', 'canceled', 'refunded')", name=op.f('ck_vendor_order_status')),
    sa.CheckConstraint('total = subtotal - discount_total + shipping_total + tax_total', name=op.f('ck_vendor_order_total_adds_up')),
    sa.ForeignKeyConstraint(['tenant_id', 'order_id'], ['orders.tenant_id', 'orders.id'], name=op.f('fk_vendor_order_tenant_id_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_vendor_order'))
    )
    op.create_index('ix_vendor_order_tenant_order', 'vendor_order', ['tenant_id', 'order_id'], unique=False)
    op.create_index('ix_vendor_order_tenant_vendor', 'vendor_order', ['tenant_id', 'vendor_id', 'created_at'], unique=False)
    op.create_table('order_line',
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('vendor_order_id', sa.UUID(), nullable=False),
    sa.Column('variant_id', sa.UUID(), nullable=False),
    sa.Column('product_id', sa.UUID(), nullable=False),
    sa.Column('vendor_id', sa.UUID(), nullable=True),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=600), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('list_unit_price', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Integer(), nullable=False),
    sa.Column('subtotal', sa.Integer(), nullable=False),
    sa.Column('discount_total', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_line_quantity_positive')),
    sa.ForeignKeyConstraint(['tenant_id', 'order_id'], ['orders.tenant_id', 'orders.id'], name=op.f('fk_order_line_tenant_id_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'vendor_order_id'], ['vendor_order.tenant_id', 'vendor_order.id'], name=op.f('fk_order_line_tenant_id_vendor_order_id_vendor_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_order_line'))
    )
    op.create_index('ix_order_line_tenant_order', 'order_line', ['tenant_id', 'order_id'], unique=False)
    op.create_index('ix_order_line_tenant_vendor_order', 'order_line', ['tenant_id', 'vendor_order_id'], unique=False)
    op.create_table('cart_line',
    sa.Column('cart_id', sa.UUID(), nullable=False),
    sa.Column('variant_id', sa.UUID(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_cart_line_quantity_positive')),
    sa.ForeignKeyConstraint(['tenant_id', 'cart_id'], ['cart.tenant_id', 'cart.id'], name=op.f('fk_cart_line_tenant_id_cart_id_cart'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'variant_id'], ['variant.tenant_id', 'variant.id'], name=op.f('fk_cart_line_tenant_id_variant_id_variant')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_cart_line')),
    sa.UniqueConstraint('tenant_id', 'cart_id', 'variant_id', name=op.f('uq_cart_line_tenant_id_cart_id_variant_id'))
    )
    op.create_table('inventory_reservation',
    sa.Column('cart_id', sa.UUID(), nullable=False),
    sa.Column('variant_id', sa.UUID(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'cart_id'], ['cart.tenant_id', 'cart.id'], name=op.f('fk_inventory_reservation_tenant_id_cart_id_cart'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'variant_id'], ['variant.tenant_id', 'variant.id'], name=op.f('fk_inventory_reservation_tenant_id_variant_id_variant')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_inventory_reservation')),
    sa.UniqueConstraint('tenant_id', 'cart_id', 'variant_id', name=op.f('uq_inventory_reservation_tenant_id_cart_id_variant_id'))
    )
    for table in TENANT_OWNED:
        rls.enable_tenant_rls(table)
    # Webhook events arrive before anyone knows their tenant: a platform table the app may add to and mark.
    op.execute(f"grant select, insert, update on table webhook_inbox to {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"revoke all on table webhook_inbox from {rls.APP_ROLE}")
    for table in TENANT_OWNED:
        rls.disable_tenant_rls(table)
    op.drop_table('inventory_reservation')
    op.drop_table('cart_line')
    op.drop_index('ix_order_line_tenant_vendor_order', table_name='order_line')
    op.drop_index('ix_order_line_tenant_order', table_name='order_line')
    op.drop_table('order_line')
    op.drop_index('ix_vendor_order_tenant_vendor', table_name='vendor_order')
    op.drop_index('ix_vendor_order_tenant_order', table_name='vendor_order')
    op.drop_table('vendor_order')
    op.drop_index('ix_cart_payment_intent', table_name='cart')
    op.drop_table('cart')
    op.drop_index('ix_orders_tenant_store_created', table_name='orders')
    op.drop_index('ix_orders_tenant_customer', table_name='orders')
    op.drop_table('orders')
    op.drop_table('webhook_inbox')
