"""b2b: companies and their users, company price lists, quotes (lines, immutable versions, messages), approval
rules and requests with their audit trail, on-account invoices; carts and orders learn their company, and an order
paid on account has no PaymentIntent

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from cityos.db import rls

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("company", "company_user", "price_list", "price_list_entry", "quote", "quote_line", "quote_version",
          "quote_message", "approval_rule", "approval_request", "approval_step", "invoice")

# Frozen DDL of this revision's tables (status CHECKs list the enum values of this revision).
DDL = """
CREATE TABLE company (
    store_id UUID,
    legal_name VARCHAR(255) NOT NULL,
    tax_id VARCHAR(64),
    billing_address JSONB,
    shipping_address JSONB,
    currency_code VARCHAR(3) NOT NULL,
    credit_limit INTEGER DEFAULT '0' NOT NULL,
    credit_used INTEGER DEFAULT '0' NOT NULL,
    payment_terms VARCHAR(10) DEFAULT 'prepaid' NOT NULL,
    status VARCHAR(20) DEFAULT 'active' NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_company PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_company_tenant_id_store_id_store FOREIGN KEY(tenant_id, store_id) REFERENCES store (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_company_currency_code_currency FOREIGN KEY(currency_code) REFERENCES currency (code),
    CONSTRAINT ck_company_status CHECK (status in ('active', 'suspended')),
    CONSTRAINT ck_company_payment_terms CHECK (payment_terms in ('prepaid', 'net15', 'net30', 'net60')),
    CONSTRAINT ck_company_credit_limit_not_negative CHECK (credit_limit >= 0),
    CONSTRAINT ck_company_credit_within_limit CHECK (credit_used >= 0 and credit_used <= credit_limit)
);
CREATE INDEX ix_company_tenant_created ON company (tenant_id, created_at, id);
CREATE TABLE company_user (
    company_id UUID NOT NULL,
    customer_id VARCHAR(200) NOT NULL,
    email VARCHAR(320) NOT NULL,
    role VARCHAR(20) NOT NULL,
    status VARCHAR(20) DEFAULT 'active' NOT NULL,
    order_limit INTEGER,
    period_limit INTEGER,
    limit_period VARCHAR(10),
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_company_user PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_company_user_company FOREIGN KEY(tenant_id, company_id) REFERENCES company (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_company_user_tenant_id_company_id_customer_id UNIQUE (tenant_id, company_id, customer_id),
    CONSTRAINT ck_company_user_role CHECK (role in ('company_admin', 'company_buyer', 'approver')),
    CONSTRAINT ck_company_user_status CHECK (status in ('active', 'removed')),
    CONSTRAINT ck_company_user_limit_period CHECK (limit_period in ('month', 'quarter')),
    CONSTRAINT ck_company_user_order_limit_positive CHECK (order_limit is null or order_limit > 0),
    CONSTRAINT ck_company_user_period_limit_positive CHECK (period_limit is null or period_limit > 0),
    CONSTRAINT ck_company_user_period_limit_has_period CHECK ((period_limit is null) = (limit_period is null))
);
CREATE INDEX ix_company_user_tenant_customer ON company_user (tenant_id, customer_id);
CREATE TABLE price_list (
    company_id UUID NOT NULL,
    name VARCHAR(255) NOT NULL,
    currency_code VARCHAR(3) NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_price_list PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_price_list_currency_code_currency FOREIGN KEY(currency_code) REFERENCES currency (code)
);
CREATE INDEX ix_price_list_tenant_company ON price_list (tenant_id, company_id, created_at, id);
CREATE TABLE price_list_entry (
    price_list_id UUID NOT NULL,
    variant_id UUID,
    product_id UUID,
    category_id UUID,
    min_quantity INTEGER NOT NULL,
    percent_off NUMERIC(5, 2),
    unit_amount INTEGER,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_price_list_entry PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_price_list_entry_tenant_id_price_list_id_price_list FOREIGN KEY(tenant_id, price_list_id) REFERENCES price_list (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_price_list_entry_tenant_id_variant_id_variant FOREIGN KEY(tenant_id, variant_id) REFERENCES variant (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_price_list_entry_tenant_id_product_id_product FOREIGN KEY(tenant_id, product_id) REFERENCES product (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_price_list_entry_tenant_id_category_id_category FOREIGN KEY(tenant_id, category_id) REFERENCES category (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_price_list_entry_one_target CHECK (num_nonnulls(variant_id, product_id, category_id) = 1),
    CONSTRAINT ck_price_list_entry_min_quantity_positive CHECK (min_quantity >= 1),
    CONSTRAINT ck_price_list_entry_one_kind CHECK ((percent_off is null) <> (unit_amount is null)),
    CONSTRAINT ck_price_list_entry_percent_range CHECK (percent_off is null or (percent_off > 0 and percent_off <= 100)),
    CONSTRAINT ck_price_list_entry_unit_amount_positive CHECK (unit_amount is null or unit_amount > 0)
);
CREATE INDEX ix_price_list_entry_tenant_list ON price_list_entry (tenant_id, price_list_id);
CREATE TABLE quote (
    company_id UUID NOT NULL,
    store_id UUID NOT NULL,
    cart_id UUID NOT NULL,
    buyer_id VARCHAR(200) NOT NULL,
    vendor_ids VARCHAR(4000) DEFAULT '' NOT NULL,
    currency_code VARCHAR(3) NOT NULL,
    status VARCHAR(20) DEFAULT 'requested' NOT NULL,
    version INTEGER DEFAULT '1' NOT NULL,
    accepted_version INTEGER,
    accepted_total INTEGER,
    accepted_at TIMESTAMP WITH TIME ZONE,
    valid_until TIMESTAMP WITH TIME ZONE NOT NULL,
    order_id UUID,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_quote PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_quote_company FOREIGN KEY(tenant_id, company_id) REFERENCES company (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_quote_tenant_id_store_id_store FOREIGN KEY(tenant_id, store_id) REFERENCES store (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_quote_tenant_id_cart_id_cart FOREIGN KEY(tenant_id, cart_id) REFERENCES cart (tenant_id, id),
    CONSTRAINT ck_quote_status CHECK (status in ('requested', 'responded', 'countered', 'pending_approval', 'approved', 'rejected', 'ordered', 'expired')),
    CONSTRAINT uq_quote_tenant_id_order_id UNIQUE (tenant_id, order_id),
    CONSTRAINT uq_quote_tenant_id_cart_id UNIQUE (tenant_id, cart_id)
);
CREATE INDEX ix_quote_tenant_company ON quote (tenant_id, company_id, created_at, id);
CREATE INDEX ix_quote_tenant_valid ON quote (tenant_id, status, valid_until);
CREATE TABLE quote_line (
    quote_id UUID NOT NULL,
    variant_id UUID NOT NULL,
    product_id UUID NOT NULL,
    vendor_id UUID,
    sku VARCHAR(100) NOT NULL,
    title VARCHAR(600) NOT NULL,
    quantity INTEGER NOT NULL,
    list_unit_price INTEGER NOT NULL,
    unit_price INTEGER NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_quote_line PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_quote_line_tenant_id_quote_id_quote FOREIGN KEY(tenant_id, quote_id) REFERENCES quote (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_quote_line_tenant_id_variant_id_variant FOREIGN KEY(tenant_id, variant_id) REFERENCES variant (tenant_id, id),
    CONSTRAINT uq_quote_line_tenant_id_quote_id_variant_id UNIQUE (tenant_id, quote_id, variant_id),
    CONSTRAINT ck_quote_line_quantity_positive CHECK (quantity > 0),
    CONSTRAINT ck_quote_line_unit_price_positive CHECK (unit_price > 0)
);
CREATE TABLE quote_version (
    quote_id UUID NOT NULL,
    number INTEGER NOT NULL,
    author_id VARCHAR(200) NOT NULL,
    author_kind VARCHAR(10) NOT NULL,
    vendor_id UUID,
    lines JSONB NOT NULL,
    changes JSONB NOT NULL,
    total INTEGER NOT NULL,
    valid_until TIMESTAMP WITH TIME ZONE NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_quote_version PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_quote_version_tenant_id_quote_id_quote FOREIGN KEY(tenant_id, quote_id) REFERENCES quote (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_quote_version_tenant_id_quote_id_number UNIQUE (tenant_id, quote_id, number)
);
CREATE TABLE quote_message (
    quote_id UUID NOT NULL,
    author_id VARCHAR(200) NOT NULL,
    author_kind VARCHAR(10) NOT NULL,
    vendor_id UUID,
    body VARCHAR(4000) NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_quote_message PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_quote_message_tenant_id_quote_id_quote FOREIGN KEY(tenant_id, quote_id) REFERENCES quote (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_quote_message_tenant_quote ON quote_message (tenant_id, quote_id, created_at);
CREATE TABLE approval_rule (
    company_id UUID NOT NULL,
    min_amount INTEGER NOT NULL,
    levels JSONB NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_approval_rule PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_approval_rule_company FOREIGN KEY(tenant_id, company_id) REFERENCES company (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_approval_rule_tenant_id_company_id_min_amount UNIQUE (tenant_id, company_id, min_amount),
    CONSTRAINT ck_approval_rule_min_amount_not_negative CHECK (min_amount >= 0)
);
CREATE TABLE approval_request (
    company_id UUID NOT NULL,
    quote_id UUID NOT NULL,
    quote_version INTEGER NOT NULL,
    buyer_id VARCHAR(200) NOT NULL,
    amount INTEGER NOT NULL,
    currency_code VARCHAR(3) NOT NULL,
    reasons JSONB NOT NULL,
    levels JSONB NOT NULL,
    current_level INTEGER DEFAULT '0' NOT NULL,
    status VARCHAR(20) DEFAULT 'pending' NOT NULL,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_approval_request PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_approval_request_company FOREIGN KEY(tenant_id, company_id) REFERENCES company (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_approval_request_tenant_id_quote_id_quote FOREIGN KEY(tenant_id, quote_id) REFERENCES quote (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_approval_request_status CHECK (status in ('pending', 'approved', 'rejected')),
    CONSTRAINT uq_approval_request_tenant_id_quote_id_quote_version UNIQUE (tenant_id, quote_id, quote_version)
);
CREATE INDEX ix_approval_request_tenant_company ON approval_request (tenant_id, company_id, created_at, id);
CREATE TABLE approval_step (
    request_id UUID NOT NULL,
    level INTEGER NOT NULL,
    approver_id VARCHAR(200) NOT NULL,
    approver_role VARCHAR(20) NOT NULL,
    decision VARCHAR(10) NOT NULL,
    comment VARCHAR(2000),
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_approval_step PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_approval_step_tenant_id_request_id_approval_request FOREIGN KEY(tenant_id, request_id) REFERENCES approval_request (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_approval_step_decision CHECK (decision in ('approve', 'reject')),
    CONSTRAINT uq_approval_step_tenant_id_request_id_level_approver_id UNIQUE (tenant_id, request_id, level, approver_id)
);
CREATE TABLE invoice (
    company_id UUID NOT NULL,
    order_id UUID NOT NULL,
    quote_id UUID,
    buyer_id VARCHAR(200) NOT NULL,
    amount INTEGER NOT NULL,
    currency_code VARCHAR(3) NOT NULL,
    payment_terms VARCHAR(10) NOT NULL,
    due_at TIMESTAMP WITH TIME ZONE NOT NULL,
    status VARCHAR(10) DEFAULT 'open' NOT NULL,
    paid_at TIMESTAMP WITH TIME ZONE,
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_invoice PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_invoice_company FOREIGN KEY(tenant_id, company_id) REFERENCES company (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_invoice_tenant_id_order_id_orders FOREIGN KEY(tenant_id, order_id) REFERENCES orders (tenant_id, id),
    CONSTRAINT ck_invoice_status CHECK (status in ('open', 'paid')),
    CONSTRAINT uq_invoice_tenant_id_order_id UNIQUE (tenant_id, order_id),
    CONSTRAINT ck_invoice_amount_positive CHECK (amount > 0)
);
CREATE INDEX ix_invoice_tenant_company ON invoice (tenant_id, company_id, created_at, id);

ALTER TABLE price_list ADD CONSTRAINT fk_price_list_company FOREIGN KEY(tenant_id, company_id)
    REFERENCES company (tenant_id, id) ON DELETE CASCADE;
"""

# A quote version is a record of what was offered: never changed, never removed (only with its quote).
IMMUTABLE_VERSIONS = """
CREATE FUNCTION cityos_quote_version_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM quote WHERE tenant_id = OLD.tenant_id AND id = OLD.quote_id)
  THEN RETURN OLD; END IF;
  RAISE EXCEPTION 'quote versions are immutable' USING ERRCODE = 'restrict_violation';
END $$
"""
IMMUTABLE_TRIGGER = """
CREATE TRIGGER quote_version_immutable BEFORE UPDATE OR DELETE ON quote_version
    FOR EACH ROW EXECUTE FUNCTION cityos_quote_version_immutable()
"""


def upgrade() -> None:
    for statement in DDL.split(";\n"):
        if statement.strip():
            op.execute(statement)
    op.execute(IMMUTABLE_VERSIONS)
    op.execute(IMMUTABLE_TRIGGER)
    op.execute("ALTER TABLE cart ADD COLUMN company_id UUID")
    op.execute("ALTER TABLE orders ADD COLUMN company_id UUID")
    op.execute("ALTER TABLE orders ALTER COLUMN payment_intent_id DROP NOT NULL")
    op.execute("CREATE INDEX ix_orders_tenant_company ON orders (tenant_id, company_id, created_at)")
    for table in TABLES:
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        rls.disable_tenant_rls(table)
    op.execute("DROP TABLE " + ", ".join(reversed(TABLES)))
    op.execute("DROP FUNCTION cityos_quote_version_immutable()")
    op.execute("DROP INDEX ix_orders_tenant_company")
    op.execute("DELETE FROM orders WHERE payment_intent_id IS NULL")  # orders on account cannot go back
    op.execute("ALTER TABLE orders ALTER COLUMN payment_intent_id SET NOT NULL")
    op.execute("ALTER TABLE orders DROP COLUMN company_id")
    op.execute("ALTER TABLE cart DROP COLUMN company_id")
