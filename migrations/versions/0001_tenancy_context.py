"""tenancy context

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cityos.db import rls

TENANT_OWNED = ("store", "store_domain", "sales_channel", "publishable_api_key", "region", "region_state")
GLOBAL_READ_ONLY = ("currency", "payment_provider")

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    rls.create_app_role()
    rls.create_tenant_functions()
    op.create_table('currency',
    sa.Column('code', sa.String(length=3), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('symbol', sa.String(length=8), nullable=False),
    sa.Column('decimal_digits', sa.Integer(), server_default='2', nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_currency'))
    )
    op.create_table('payment_provider',
    sa.Column('id', sa.String(length=50), nullable=False),
    sa.Column('is_enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_provider'))
    )
    op.create_table('tenant',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='active', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenant_slug'))
    )
    op.create_table('region',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=7, scale=4), server_default='0', nullable=False),
    sa.Column('payment_provider_id', sa.String(length=50), server_default='stripe', nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['currency_code'], ['currency.code'], name=op.f('fk_region_currency_code_currency')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_region_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_region')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_region_tenant_id_name'))
    )
    op.create_table('store',
    sa.Column('handle', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('default_currency_code', sa.String(length=3), server_default='usd', nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['default_currency_code'], ['currency.code'], name=op.f('fk_store_default_currency_code_currency')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_store_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_store')),
    sa.UniqueConstraint('tenant_id', 'handle', name=op.f('uq_store_tenant_id_handle'))
    )
    op.create_table('publishable_api_key',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('redacted', sa.String(length=20), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_publishable_api_key_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_publishable_api_key')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_publishable_api_key_token_hash'))
    )
    op.create_index('ix_publishable_api_key_tenant_store', 'publishable_api_key', ['tenant_id', 'store_id'], unique=False)
    op.create_table('region_state',
    sa.Column('region_id', sa.UUID(), nullable=False),
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'region_id'], ['region.tenant_id', 'region.id'], name=op.f('fk_region_state_tenant_id_region_id_region'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_region_state')),
    sa.UniqueConstraint('tenant_id', 'region_id', 'code', name=op.f('uq_region_state_tenant_id_region_id_code'))
    )
    op.create_table('sales_channel',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_default', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_disabled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_sales_channel_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_sales_channel')),
    sa.UniqueConstraint('tenant_id', 'store_id', 'name', name=op.f('uq_sales_channel_tenant_id_store_id_name'))
    )
    op.create_index('uq_sales_channel_default_per_store', 'sales_channel', ['tenant_id', 'store_id'], unique=True, postgresql_where=sa.text('is_default'))
    op.create_table('store_domain',
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('is_primary', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'store_id'], ['store.tenant_id', 'store.id'], name=op.f('fk_store_domain_tenant_id_store_id_store'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_store_domain')),
    sa.UniqueConstraint('domain', name=op.f('uq_store_domain_domain'))
    )
    op.create_index('ix_store_domain_tenant_store', 'store_domain', ['tenant_id', 'store_id'], unique=False)

    for table in TENANT_OWNED:
        rls.enable_tenant_rls(table)
    rls.enable_tenant_rls("tenant", column="id")
    for table in GLOBAL_READ_ONLY:
        rls.grant_app(table, writable=False)
    # Cross-tenant lookups a storefront request needs before it knows its tenant: they run as the owner
    # (SECURITY DEFINER) and return only the (tenant, store) pair of one active key or one host name.
    op.execute("""
        create function cityos_store_by_publishable_key(p_token_hash text)
        returns table (tenant_id uuid, store_id uuid)
        language sql stable security definer set search_path = public, pg_temp as
        $$ select k.tenant_id, k.store_id from publishable_api_key k
           where k.token_hash = p_token_hash and k.revoked_at is null $$""")
    op.execute("""
        create function cityos_store_by_domain(p_domain text)
        returns table (tenant_id uuid, store_id uuid)
        language sql stable security definer set search_path = public, pg_temp as
        $$ select d.tenant_id, d.store_id from store_domain d where d.domain = lower(p_domain) $$""")
    for function in ("cityos_store_by_publishable_key(text)", "cityos_store_by_domain(text)"):
        op.execute(f"revoke all on function {function} from public")
        op.execute(f"grant execute on function {function} to {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute("drop function if exists cityos_store_by_domain(text)")
    op.execute("drop function if exists cityos_store_by_publishable_key(text)")
    for table in (*TENANT_OWNED, "tenant"):
        rls.disable_tenant_rls(table)
    for table in GLOBAL_READ_ONLY:
        op.execute(f"revoke all on table {table} from {rls.APP_ROLE}")
    op.drop_index('ix_store_domain_tenant_store', table_name='store_domain')
    op.drop_table('store_domain')
    op.drop_index('uq_sales_channel_default_per_store', table_name='sales_channel', postgresql_where=sa.text('is_default'))
    op.drop_table('sales_channel')
    op.drop_table('region_state')
    op.drop_index('ix_publishable_api_key_tenant_store', table_name='publishable_api_key')
    op.drop_table('publishable_api_key')
    op.drop_table('store')
    op.drop_table('region')
    op.drop_table('tenant')
    op.drop_table('payment_provider')
    op.drop_table('currency')
    rls.drop_tenant_functions()
    rls.drop_app_role()
