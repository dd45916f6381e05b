"""refunds that move money (refund, refund_line, refund_transfer_reversal; ledger reversals per refund), returns
(order_return, return_line, store.return_window_days), and the audit log written by a trigger on every audited
table (before/after of the changed fields, actor, request id), append-only for the app role

Revision ID: 0016
Revises: 0015 (re-chained after b2b's 0015 was merged into main)
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cityos.db import rls

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the domain enums' values as of this revision.
REFUND_STATUSES = ("pending", "succeeded", "failed", "requires_action", "canceled")
REVERSAL_STATUSES = ("pending", "reversed", "debt")
RETURN_STATUSES = ("requested", "approved", "rejected", "received", "refunded")
TABLES = ("refund", "refund_line", "refund_transfer_reversal", "order_return", "return_line")
# Tables an admin or vendor mutation changes: each change is audited by the trigger (tables added later by other
# migrations get it with `rls.audit_table("table")`).
AUDITED = ("store", "store_domain", "publishable_api_key", "sales_channel", "region", "region_state",
           "shipping_option", "category", "product", "variant", "variant_price", "price_tier", "vendor",
           "vendor_user", "commission_rule", "orders", "vendor_order", "payout", "outbox", "webhook_inbox",
           "shipment", "subscription_plan", "subscription_plan_price", "customer_subscription", "refund",
           "refund_transfer_reversal", "order_return", "return_line",
           # B2B (0015): companies, their users, price lists, quotes, approvals, invoices
           "company", "company_user", "price_list", "price_list_entry", "quote", "quote_line", "quote_version",
           "quote_message", "approval_rule", "approval_request", "approval_step", "invoice")


def _in(column: str, values: Sequence[str]) -> str:
    return "{} in ({})".format(column, ", ".join(f"'{value}'" for value in values))


def _owned() -> list[sa.Column[object]]:
    return [sa.Column("tenant_id", sa.UUID(), nullable=False), sa.Column("id", sa.UUID(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)]


def _fk(table: str, columns: list[str], target: str, target_columns: list[str], **kw: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_{'_'.join(columns)}_{target}")
    return sa.ForeignKeyConstraint(columns, [f"{target}.{c}" for c in target_columns], name=name, **kw)


AUDIT_FUNCTION = """
create function cityos_audit() returns trigger language plpgsql as $$
declare
  actor text := nullif(current_setting('cityos.audit_actor', true), '');
  old_row jsonb;
  new_row jsonb;
  before_values jsonb := '{}';
  after_values jsonb := '{}';
  name text;
begin
  if actor is null then
    return null;  -- not a mutation of a signed-in admin, vendor or buyer (a webhook, a job): not audited here
  end if;
  if tg_op <> 'INSERT' then old_row := to_jsonb(old); end if;
  if tg_op <> 'DELETE' then new_row := to_jsonb(new); end if;
  if tg_op = 'UPDATE' then
    for name in select jsonb_object_keys(new_row) loop
      if name <> 'updated_at' and old_row -> name is distinct from new_row -> name then
        before_values := before_values || jsonb_build_object(name, old_row -> name);
        after_values := after_values || jsonb_build_object(name, new_row -> name);
      end if;
    end loop;
    if after_values = '{}' then
      return null;  -- nothing but updated_at changed
    end if;
  elsif tg_op = 'INSERT' then
    after_values := new_row - 'created_at' - 'updated_at';
  else
    before_values := old_row - 'created_at' - 'updated_at';
  end if;
  -- secrets and token hashes never go into the log, nor generated columns (search vectors)
  for name in select jsonb_object_keys(coalesce(new_row, old_row)) loop
    if name like '%hash%' or name like '%secret%' or name like '%token%' or exists (
        select 1 from pg_attribute where attrelid = tg_relid and attname = name and attgenerated <> '') then
      before_values := before_values - name;
      after_values := after_values - name;
    end if;
  end loop;
  if tg_op = 'UPDATE' and after_values = '{}' then
    return null;
  end if;
  insert into audit_log (id, tenant_id, actor, action, target_kind, target_id, details, operation, before, after,
                         request_id)
  values (gen_random_uuid(),
          coalesce((coalesce(new_row, old_row) ->> 'tenant_id')::uuid, cityos_current_tenant()),
          actor,
          coalesce(nullif(current_setting('cityos.audit_action', true), ''), lower(tg_op) || '_' || tg_table_name),
          tg_table_name,
          coalesce(coalesce(new_row, old_row) ->> 'id', ''),
          '{}', lower(tg_op),
          case when tg_op = 'INSERT' then null else before_values end,
          case when tg_op = 'DELETE' then null else after_values end,
          nullif(current_setting('cityos.audit_request_id', true), ''));
  return null;
end $$"""


def upgrade() -> None:
    op.add_column("store", sa.Column("return_window_days", sa.Integer(), server_default="30", nullable=False))
    op.create_check_constraint(op.f("ck_store_return_window_range"), "store", "return_window_days between 0 and 3650")
    op.create_table(
        "refund", *_owned(),
        sa.Column("order_id", sa.UUID(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=True),
        sa.Column("return_id", sa.UUID(), nullable=True),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("shipping_amount", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("stripe_refund_id", sa.String(100), nullable=True),
        sa.Column("failure_reason", sa.String(500), nullable=True),
        sa.Column("ledger_recorded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_refund")),
        _fk("refund", ["tenant_id", "order_id"], "orders", ["tenant_id", "id"], ondelete="CASCADE"),
        sa.CheckConstraint(_in("status", REFUND_STATUSES), name=op.f("ck_refund_status")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refund_amount_positive")),
        sa.CheckConstraint("shipping_amount >= 0", name=op.f("ck_refund_shipping_not_negative")),
    )
    op.create_index("ix_refund_tenant_order", "refund", ["tenant_id", "order_id", "created_at"])
    op.create_index("ix_refund_tenant_store", "refund", ["tenant_id", "store_id", "created_at"])
    op.create_index("ix_refund_stripe", "refund", ["stripe_refund_id"], unique=True)
    op.create_table(
        "refund_line", *_owned(),
        sa.Column("refund_id", sa.UUID(), nullable=False),
        sa.Column("order_line_id", sa.UUID(), nullable=False),
        sa.Column("first_unit", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("tax_amount", sa.Integer(), nullable=False),
        sa.Column("restock", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_refund_line")),
        _fk("refund_line", ["tenant_id", "refund_id"], "refund", ["tenant_id", "id"], ondelete="CASCADE"),
        _fk("refund_line", ["tenant_id", "order_line_id"], "order_line", ["tenant_id", "id"], ondelete="CASCADE"),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_refund_line_quantity_positive")),
        sa.UniqueConstraint("tenant_id", "refund_id", "order_line_id",
                            name=op.f("uq_refund_line_tenant_id_refund_id_order_line_id")),
    )
    op.create_index("ix_refund_line_tenant_line", "refund_line", ["tenant_id", "order_line_id"])
    op.create_table(
        "refund_transfer_reversal", *_owned(),
        sa.Column("refund_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=False),
        sa.Column("payout_id", sa.UUID(), nullable=False),
        sa.Column("stripe_transfer_id", sa.String(100), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("stripe_reversal_id", sa.String(100), nullable=True),
        sa.Column("failure_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_refund_transfer_reversal")),
        _fk("refund_transfer_reversal", ["tenant_id", "refund_id"], "refund", ["tenant_id", "id"],
            ondelete="CASCADE"),
        sa.CheckConstraint(_in("status", REVERSAL_STATUSES), name=op.f("ck_refund_transfer_reversal_status")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refund_transfer_reversal_amount_positive")),
        sa.UniqueConstraint("tenant_id", "refund_id", "payout_id",
                            name=op.f("uq_refund_transfer_reversal_tenant_id_refund_id_payout_id")),
    )
    op.create_index("ix_refund_transfer_reversal_tenant_vendor", "refund_transfer_reversal",
                    ["tenant_id", "vendor_id", "created_at"])
    op.create_table(
        "order_return", *_owned(),
        sa.Column("order_id", sa.UUID(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("vendor_id", sa.UUID(), nullable=True),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), server_default="requested", nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("decision_note", sa.String(500), nullable=True),
        sa.Column("refund_id", sa.UUID(), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_order_return")),
        _fk("order_return", ["tenant_id", "order_id"], "orders", ["tenant_id", "id"], ondelete="CASCADE"),
        sa.CheckConstraint(_in("status", RETURN_STATUSES), name=op.f("ck_order_return_status")),
    )
    op.create_index("ix_order_return_tenant_order", "order_return", ["tenant_id", "order_id", "created_at"])
    op.create_index("ix_order_return_tenant_store", "order_return", ["tenant_id", "store_id", "created_at"])
    op.create_index("ix_order_return_tenant_vendor", "order_return", ["tenant_id", "vendor_id", "created_at"])
    op.create_table(
        "return_line", *_owned(),
        sa.Column("return_id", sa.UUID(), nullable=False),
        sa.Column("order_line_id", sa.UUID(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("restock", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_return_line")),
        _fk("return_line", ["tenant_id", "return_id"], "order_return", ["tenant_id", "id"], ondelete="CASCADE"),
        _fk("return_line", ["tenant_id", "order_line_id"], "order_line", ["tenant_id", "id"], ondelete="CASCADE"),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_line_quantity_positive")),
        sa.UniqueConstraint("tenant_id", "return_id", "order_line_id",
                            name=op.f("uq_return_line_tenant_id_return_id_order_line_id")),
    )
    for table in TABLES:
        rls.enable_tenant_rls(table)

    # The ledger: a reversal per line and refund (partial refunds), and `restored` when a refund failed later.
    op.add_column("commission_transaction", sa.Column("refund_id", sa.UUID(), nullable=True))
    op.drop_constraint("uq_commission_transaction_tenant_id_order_line_id_kind", "commission_transaction")
    op.create_index("uq_commission_transaction_line_kind", "commission_transaction",
                    ["tenant_id", "order_line_id", "kind"], unique=True,
                    postgresql_where=sa.text("refund_id is null"))
    op.create_index("uq_commission_transaction_refund_line_kind", "commission_transaction",
                    ["tenant_id", "refund_id", "order_line_id", "kind"], unique=True,
                    postgresql_where=sa.text("refund_id is not null"))
    op.drop_constraint("ck_commission_transaction_kind", "commission_transaction")
    op.create_check_constraint(op.f("ck_commission_transaction_kind"), "commission_transaction",
                               "kind in ('sale', 'reversal', 'restored')")

    # The audit log: written by the trigger, append-only for the app role.
    op.add_column("audit_log", sa.Column("operation", sa.String(10), nullable=True))
    op.add_column("audit_log", sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("audit_log", sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("audit_log", sa.Column("request_id", sa.String(128), nullable=True))
    op.create_index("ix_audit_log_tenant_target", "audit_log", ["tenant_id", "target_kind", "target_id", "created_at"])
    op.create_index("ix_audit_log_tenant_actor", "audit_log", ["tenant_id", "actor", "created_at"])
    op.execute(f"revoke update, delete, truncate on table audit_log from {rls.APP_ROLE}")
    op.execute(AUDIT_FUNCTION)
    for table in AUDITED:
        rls.audit_table(table)


def downgrade() -> None:
    for table in AUDITED:
        rls.unaudit_table(table)
    op.execute("drop function if exists cityos_audit()")
    op.drop_index("ix_audit_log_tenant_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant_target", table_name="audit_log")
    for column in ("request_id", "after", "before", "operation"):
        op.drop_column("audit_log", column)
    op.drop_constraint("ck_commission_transaction_kind", "commission_transaction")
    op.execute("delete from commission_transaction where refund_id is not null and kind = 'restored'")
    op.create_check_constraint(op.f("ck_commission_transaction_kind"), "commission_transaction",
                               "kind in ('sale', 'reversal')")
    op.drop_index("uq_commission_transaction_refund_line_kind", table_name="commission_transaction")
    op.drop_index("uq_commission_transaction_line_kind", table_name="commission_transaction")
    op.execute("delete from commission_transaction where refund_id is not null")
    op.create_unique_constraint("uq_commission_transaction_tenant_id_order_line_id_kind", "commission_transaction",
                                ["tenant_id", "order_line_id", "kind"])
    op.drop_column("commission_transaction", "refund_id")
    for table in reversed(TABLES):
        rls.disable_tenant_rls(table)
        op.drop_table(table)
    op.drop_constraint("ck_store_return_window_range", "store")
    op.drop_column("store", "return_window_days")
