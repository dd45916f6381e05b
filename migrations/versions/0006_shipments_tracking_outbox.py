"""shipments tracking outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

TENANT_OWNED = ("shipment", "tracking_event")

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_outbox_tenant', 'outbox', ['tenant_id', 'created_at'], unique=False)
    op.create_table('shipment',
    sa.Column('vendor_order_id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('vendor_id', sa.UUID(), nullable=True),
    sa.Column('customer_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='created', nullable=False),
    sa.Column('fleetbase_order_id', sa.String(length=100), nullable=True),
    sa.Column('tracking_number', sa.String(length=100), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('created', 'picked_up', 'in_transit', 'delivered', 'failed', 'canceled')", name=op.f('ck_shipment_status')),
    sa.ForeignKeyConstraint(['tenant_id', 'vendor_order_id'], ['vendor_order.tenant_id', 'vendor_order.id'], name=op.f('fk_shipment_tenant_id_vendor_order_id_vendor_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_shipment')),
    sa.UniqueConstraint('tenant_id', 'vendor_order_id', name=op.f('uq_shipment_tenant_id_vendor_order_id'))
    )
    op.create_index('ix_shipment_fleetbase', 'shipment', ['fleetbase_order_id'], unique=True)
    op.create_index('ix_shipment_tenant_order', 'shipment', ['tenant_id', 'order_id'], unique=False)
    op.create_table('tracking_event',
    sa.Column('shipment_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('source_event', sa.String(length=100), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('location', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'shipment_id'], ['shipment.tenant_id', 'shipment.id'], name=op.f('fk_tracking_event_tenant_id_shipment_id_shipment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tracking_event'))
    )
    op.create_index('ix_tracking_event_shipment', 'tracking_event', ['tenant_id', 'shipment_id', 'occurred_at'], unique=False)
    op.add_column("vendor", sa.Column("pickup_address", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    for table in TENANT_OWNED:
        rls.enable_tenant_rls(table)
    # The outbox carries the tenant of each call; the dispatcher works across tenants in platform scope.
    rls.enable_tenant_rls("outbox")
    # Fleetbase webhooks name the Fleetbase order, not our tenant.
    op.execute("""
        create function cityos_shipment_by_fleetbase_order(p_order text)
        returns table (tenant_id uuid, shipment_id uuid)
        language sql stable security definer set search_path = public, pg_temp as
        $$ select s.tenant_id, s.id from shipment s where s.fleetbase_order_id = p_order $$""")
    op.execute("revoke all on function cityos_shipment_by_fleetbase_order(text) from public")
    op.execute(f"grant execute on function cityos_shipment_by_fleetbase_order(text) to {rls.APP_ROLE}")


def downgrade() -> None:
    op.drop_column("vendor", "pickup_address")
    op.execute("drop function if exists cityos_shipment_by_fleetbase_order(text)")
    rls.disable_tenant_rls("outbox")
    for table in TENANT_OWNED:
        rls.disable_tenant_rls(table)
    op.drop_index('ix_tracking_event_shipment', table_name='tracking_event')
    op.drop_table('tracking_event')
    op.drop_index('ix_shipment_tenant_order', table_name='shipment')
    op.drop_index('ix_shipment_fleetbase', table_name='shipment')
    op.drop_table('shipment')
    op.drop_index('ix_outbox_tenant', table_name='outbox')
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_table('outbox')
