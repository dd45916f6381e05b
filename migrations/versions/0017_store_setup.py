"""store setup: regions a tenant sets up (countries, tax-inclusive prices, per-state tax rates), shipping options
that are free above an amount, priced by weight bands or a vendor's own; vendor orders a vendor fulfils
(processing → ready → shipped → delivered, tracking numbers) and the order's fulfilment derived from them;
customer profiles and address books

Revision ID: 0017
Revises: 0015
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enums' values as of this revision.
VENDOR_FULFILLMENT = ("unfulfilled", "processing", "ready", "shipped", "delivered")
ORDER_FULFILLMENT = ("unfulfilled", "processing", "partially_shipped", "shipped", "partially_delivered", "delivered")
TABLES = ("customer_profile", "customer_address")
TOTAL = "total = subtotal - discount_total + shipping_total + case when tax_inclusive then 0 else tax_total end"
OLD_TOTAL = "total = subtotal - discount_total + shipping_total + tax_total"


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _owned() -> list[sa.Column[object]]:
    return [sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


def upgrade() -> None:
    # Regions: every country the region sells to (country_code stays its first), prices with or without tax.
    op.add_column("region", sa.Column("country_codes", postgresql.ARRAY(sa.String(2)), nullable=False,
                                      server_default="{}"))
    op.execute("update region set country_codes = array[country_code]")
    op.add_column("region", sa.Column("tax_inclusive", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_check_constraint(op.f("ck_region_tax_rate_range"), "region", "tax_rate >= 0 and tax_rate < 1")
    op.add_column("region_state", sa.Column("tax_rate", sa.Numeric(7, 4), nullable=True))
    op.create_check_constraint(op.f("ck_region_state_tax_rate_range"), "region_state", "tax_rate is null or (tax_rate >= 0 and tax_rate < 1)")

    # Shipping options: free above an amount, weight bands, a vendor's own.
    op.add_column("shipping_option", sa.Column("free_above", sa.Integer(), nullable=True))
    op.add_column("shipping_option", sa.Column("weight_bands", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("shipping_option", sa.Column("vendor_id", sa.UUID(), nullable=True))
    op.create_foreign_key(op.f("fk_shipping_option_tenant_id_vendor_id_vendor"), "shipping_option", "vendor",
                          ["tenant_id", "vendor_id"], ["tenant_id", "id"], ondelete="CASCADE")
    op.drop_constraint(op.f("uq_shipping_option_tenant_id_region_id_code"), "shipping_option", type_="unique")
    op.execute("alter table shipping_option add constraint uq_shipping_option_tenant_id_region_id_vendor_id_code "
               "unique nulls not distinct (tenant_id, region_id, vendor_id, code)")
    op.create_check_constraint(op.f("ck_shipping_option_amounts_not_negative"), "shipping_option",
                               "amount >= 0 and (free_above is null or free_above >= 0) and "
                               "(min_subtotal is null or min_subtotal >= 0)")

    # Orders and vendor orders: tax-inclusive totals; the vendor's fulfilment and the order's derived from it.
    for table in ("orders", "vendor_order"):
        op.add_column(table, sa.Column("tax_inclusive", sa.Boolean(), nullable=False, server_default=sa.false()))
        op.drop_constraint(op.f(f"ck_{table}_total_adds_up"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_total_adds_up"), table, TOTAL)
    op.add_column("vendor_order", sa.Column("fulfillment_status", sa.String(20), nullable=False,
                                            server_default="unfulfilled"))
    op.create_check_constraint(op.f("ck_vendor_order_fulfillment_status"), "vendor_order", _in("fulfillment_status", VENDOR_FULFILLMENT))
    op.add_column("vendor_order", sa.Column("tracking_number", sa.String(100), nullable=True))
    op.add_column("vendor_order", sa.Column("carrier", sa.String(100), nullable=True))
    op.add_column("vendor_order", sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("vendor_order", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("fulfillment_status", sa.String(20), nullable=False,
                                      server_default="unfulfilled"))
    op.create_check_constraint(op.f("ck_orders_fulfillment_status"), "orders", _in("fulfillment_status", ORDER_FULFILLMENT))
    op.create_index("ix_orders_tenant_email", "orders", ["tenant_id", "email"])
    # Existing paid parts follow their Fleetbase shipments; existing orders derive their fulfilment from their
    # parts (the rule of cityos/domain/fulfillment/rules.py, as SQL).
    op.execute("""
        update vendor_order vo set
          fulfillment_status = case when s.status = 'delivered' then 'delivered' else 'shipped' end,
          carrier = 'fleetbase', tracking_number = s.tracking_number
        from shipment s
        where s.tenant_id = vo.tenant_id and s.vendor_order_id = vo.id
          and s.status in ('picked_up', 'in_transit', 'delivered')
          and vo.status in ('paid', 'fulfilled', 'completed')""")
    op.execute("""
        with parts as (
          select tenant_id, order_id,
                 min(case fulfillment_status when 'unfulfilled' then 0 when 'processing' then 1 when 'ready' then 2
                     when 'shipped' then 3 else 4 end) as lo,
                 max(case fulfillment_status when 'unfulfilled' then 0 when 'processing' then 1 when 'ready' then 2
                     when 'shipped' then 3 else 4 end) as hi
          from vendor_order group by tenant_id, order_id)
        update orders o set fulfillment_status = case
            when parts.lo = 4 then 'delivered'
            when parts.lo >= 3 and parts.hi = 4 then 'partially_delivered'
            when parts.lo >= 3 then 'shipped'
            when parts.hi >= 3 then 'partially_shipped'
            else 'processing' end
        from parts where o.tenant_id = parts.tenant_id and o.id = parts.order_id and parts.hi > 0""")

    # Customer accounts: a profile per (tenant, Keycloak subject) and its address book.
    op.create_table(
        "customer_profile", *_owned(),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name="fk_customer_profile_tenant_id_tenant",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_profile"),
        sa.UniqueConstraint("tenant_id", "customer_id", name="uq_customer_profile_tenant_id_customer_id"))
    op.create_table(
        "customer_address", *_owned(),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("label", sa.String(100), nullable=True),
        sa.Column("address", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name="fk_customer_address_tenant_id_tenant",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customer_address"))
    op.create_index("ix_customer_address_tenant_customer", "customer_address",
                    ["tenant_id", "customer_id", "created_at", "id"])
    op.create_index("uq_customer_address_default", "customer_address", ["tenant_id", "customer_id"], unique=True,
                    postgresql_where=sa.text("is_default"))
    for table in TABLES:
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    for table in TABLES:
        rls.disable_tenant_rls(table)
    op.drop_table("customer_address")
    op.drop_table("customer_profile")
    op.drop_index("ix_orders_tenant_email", table_name="orders")
    op.drop_constraint(op.f("ck_orders_fulfillment_status"), "orders", type_="check")
    op.drop_column("orders", "fulfillment_status")
    for column in ("delivered_at", "shipped_at", "carrier", "tracking_number"):
        op.drop_column("vendor_order", column)
    op.drop_constraint(op.f("ck_vendor_order_fulfillment_status"), "vendor_order", type_="check")
    op.drop_column("vendor_order", "fulfillment_status")
    for table in ("orders", "vendor_order"):
        op.drop_constraint(op.f(f"ck_{table}_total_adds_up"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_total_adds_up"), table, OLD_TOTAL)
        op.drop_column(table, "tax_inclusive")
    op.drop_constraint(op.f("ck_shipping_option_amounts_not_negative"), "shipping_option", type_="check")
    op.drop_constraint(op.f("uq_shipping_option_tenant_id_region_id_vendor_id_code"), "shipping_option", type_="unique")
    op.create_unique_constraint(op.f("uq_shipping_option_tenant_id_region_id_code"), "shipping_option",
                                ["tenant_id", "region_id", "code"])
    op.drop_constraint(op.f("fk_shipping_option_tenant_id_vendor_id_vendor"), "shipping_option", type_="foreignkey")
    for column in ("vendor_id", "weight_bands", "free_above"):
        op.drop_column("shipping_option", column)
    op.drop_constraint(op.f("ck_region_state_tax_rate_range"), "region_state", type_="check")
    op.drop_column("region_state", "tax_rate")
    op.drop_constraint(op.f("ck_region_tax_rate_range"), "region", type_="check")
    op.drop_column("region", "tax_inclusive")
    op.drop_column("region", "country_codes")
