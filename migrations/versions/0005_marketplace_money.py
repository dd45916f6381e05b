"""marketplace money

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

TENANT_OWNED = ("vendor_user", "commission_rule", "commission_transaction", "payout", "payout_transaction_link")

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('commission_rule',
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('scope_id', sa.UUID(), nullable=True),
    sa.Column('percentage', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('flat_per_line', sa.Integer(), nullable=True),
    sa.Column('minimum', sa.Integer(), nullable=True),
    sa.Column('maximum', sa.Integer(), nullable=True),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('effective_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(scope = 'tenant') = (scope_id is null)", name=op.f('ck_commission_rule_scope_id')),
    sa.CheckConstraint("scope in ('tenant', 'store', 'vendor', 'category', 'product')", name=op.f('ck_commission_rule_scope')),
    sa.CheckConstraint('flat_per_line is null or flat_per_line >= 0', name=op.f('ck_commission_rule_flat_not_negative')),
    sa.CheckConstraint('minimum is null or maximum is null or minimum <= maximum', name=op.f('ck_commission_rule_min_le_max')),
    sa.CheckConstraint('percentage is not null or flat_per_line is not null', name=op.f('ck_commission_rule_has_a_kind')),
    sa.CheckConstraint('percentage is null or (percentage >= 0 and percentage <= 100)', name=op.f('ck_commission_rule_percentage_range')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_commission_rule'))
    )
    op.create_index('ix_commission_rule_tenant_scope', 'commission_rule', ['tenant_id', 'scope', 'scope_id'], unique=False)
    op.create_table('commission_transaction',
    sa.Column('vendor_id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('vendor_order_id', sa.UUID(), nullable=False),
    sa.Column('order_line_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('line_amount', sa.Integer(), nullable=False),
    sa.Column('commission_amount', sa.Integer(), nullable=False),
    sa.Column('vendor_amount', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.UUID(), nullable=True),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind in ('sale', 'reversal')", name=op.f('ck_commission_transaction_kind')),
    sa.CheckConstraint('line_amount = commission_amount + vendor_amount', name=op.f('ck_commission_transaction_splits_exactly')),
    sa.ForeignKeyConstraint(['tenant_id', 'vendor_id'], ['vendor.tenant_id', 'vendor.id'], name=op.f('fk_commission_transaction_tenant_id_vendor_id_vendor')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_commission_transaction')),
    sa.UniqueConstraint('tenant_id', 'order_line_id', 'kind', name=op.f('uq_commission_transaction_tenant_id_order_line_id_kind'))
    )
    op.create_index('ix_commission_transaction_vendor', 'commission_transaction', ['tenant_id', 'vendor_id', 'available_at'], unique=False)
    op.create_table('payout',
    sa.Column('vendor_id', sa.UUID(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='pending', nullable=False),
    sa.Column('destination', sa.String(length=100), nullable=False),
    sa.Column('stripe_transfer_id', sa.String(length=100), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('bank_payout_status', sa.String(length=30), nullable=True),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('pending', 'paid', 'failed', 'reversed')", name=op.f('ck_payout_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payout_amount_positive')),
    sa.ForeignKeyConstraint(['tenant_id', 'vendor_id'], ['vendor.tenant_id', 'vendor.id'], name=op.f('fk_payout_tenant_id_vendor_id_vendor')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_payout'))
    )
    op.create_index('ix_payout_tenant_vendor', 'payout', ['tenant_id', 'vendor_id', 'created_at'], unique=False)
    op.create_index('ix_payout_transfer', 'payout', ['stripe_transfer_id'], unique=True)
    op.create_table('vendor_user',
    sa.Column('vendor_id', sa.UUID(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='invited', nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role in ('vendor_admin', 'vendor_user')", name=op.f('ck_vendor_user_role')),
    sa.CheckConstraint('email is not null or subject is not null', name=op.f('ck_vendor_user_identified')),
    sa.ForeignKeyConstraint(['tenant_id', 'vendor_id'], ['vendor.tenant_id', 'vendor.id'], name=op.f('fk_vendor_user_tenant_id_vendor_id_vendor'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_vendor_user')),
    sa.UniqueConstraint('tenant_id', 'vendor_id', 'email', name=op.f('uq_vendor_user_tenant_id_vendor_id_email')),
    sa.UniqueConstraint('tenant_id', 'vendor_id', 'subject', name=op.f('uq_vendor_user_tenant_id_vendor_id_subject'))
    )
    op.create_table('payout_transaction_link',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('payout_id', sa.UUID(), nullable=False),
    sa.Column('transaction_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'payout_id'], ['payout.tenant_id', 'payout.id'], name=op.f('fk_payout_transaction_link_tenant_id_payout_id_payout'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'transaction_id'], ['commission_transaction.tenant_id', 'commission_transaction.id'], name=op.f('fk_payout_transaction_link_tenant_id_transaction_id_commission_transaction')),
    sa.PrimaryKeyConstraint('tenant_id', 'payout_id', 'transaction_id', name=op.f('pk_payout_transaction_link')),
    sa.UniqueConstraint('tenant_id', 'transaction_id', name=op.f('uq_payout_transaction_link_tenant_id_transaction_id'))
    )
    op.add_column('vendor', sa.Column('stripe_account_id', sa.String(length=100), nullable=True))
    op.add_column('vendor', sa.Column('stripe_account_type', sa.String(length=20), nullable=True))
    op.add_column('vendor', sa.Column('charges_enabled', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('vendor', sa.Column('payouts_enabled', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('vendor', sa.Column('details_submitted', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('vendor', sa.Column('requirements', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False))
    op.add_column('vendor', sa.Column('payout_minimum', sa.Integer(), nullable=True))
    op.add_column('vendor', sa.Column('stripe_synced_at', sa.Integer(), nullable=True))
    op.create_unique_constraint(op.f('uq_vendor_stripe_account_id'), 'vendor', ['stripe_account_id'])
    for table in TENANT_OWNED:
        rls.enable_tenant_rls(table)
    # Stripe account events name the connected account, not our tenant: resolve it before the tenant is known.
    op.execute("""
        create function cityos_vendor_by_stripe_account(p_account text)
        returns table (tenant_id uuid, vendor_id uuid)
        language sql stable security definer set search_path = public, pg_temp as
        $$ select v.tenant_id, v.id from vendor v where v.stripe_account_id = p_account $$""")
    op.create_table(
        "connect_state_use",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_connect_state_use")),
    )
    op.execute(f"grant select, insert on table connect_state_use to {rls.APP_ROLE}")
    op.execute("revoke all on function cityos_vendor_by_stripe_account(text) from public")
    op.execute(f"grant execute on function cityos_vendor_by_stripe_account(text) to {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute("drop function if exists cityos_vendor_by_stripe_account(text)")
    op.drop_table("connect_state_use")
    for table in TENANT_OWNED:
        rls.disable_tenant_rls(table)
    op.drop_constraint(op.f('uq_vendor_stripe_account_id'), 'vendor', type_='unique')
    op.drop_column('vendor', 'stripe_synced_at')
    op.drop_column('vendor', 'payout_minimum')
    op.drop_column('vendor', 'requirements')
    op.drop_column('vendor', 'details_submitted')
    op.drop_column('vendor', 'payouts_enabled')
    op.drop_column('vendor', 'charges_enabled')
    op.drop_column('vendor', 'stripe_account_type')
    op.drop_column('vendor', 'stripe_account_id')
    op.drop_table('payout_transaction_link')
    op.drop_table('vendor_user')
    op.drop_index('ix_payout_transfer', table_name='payout')
    op.drop_index('ix_payout_tenant_vendor', table_name='payout')
    op.drop_table('payout')
    op.drop_index('ix_commission_transaction_vendor', table_name='commission_transaction')
    op.drop_table('commission_transaction')
    op.drop_index('ix_commission_rule_tenant_scope', table_name='commission_rule')
    op.drop_table('commission_rule')
