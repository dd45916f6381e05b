"""B2B tables: companies and their users, quotes (lines, immutable versions, messages), approval rules and
requests with their audit trail, and on-account invoices. Company price lists are catalog's (catalog/models.py).

Each status is a StrEnum: the one list that derives the table's CHECK, drives the rules and the GraphQL enum."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, one_of


class CompanyStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class PaymentTerms(StrEnum):
    """How a company pays: up front (card), or on account with an invoice due N days after the order."""

    PREPAID = "prepaid"
    NET_15 = "net15"
    NET_30 = "net30"
    NET_60 = "net60"


class CompanyRole(StrEnum):
    COMPANY_ADMIN = "company_admin"
    COMPANY_BUYER = "company_buyer"
    APPROVER = "approver"


class CompanyUserStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class InvitationStatus(StrEnum):
    PENDING = "pending"  # sent; accepted by the invitee until it expires
    ACCEPTED = "accepted"
    REVOKED = "revoked"


class SpendingPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


class QuoteStatus(StrEnum):
    """Where a quote is (see rules.QUOTE_TRANSITIONS)."""

    REQUESTED = "requested"  # the buyer asked; the seller has not answered yet
    RESPONDED = "responded"  # the store or a vendor answered with a new version
    COUNTERED = "countered"  # the buyer answered with a version of their own
    PENDING_APPROVAL = "pending_approval"  # accepted by the buyer, waiting for the company's approvers
    APPROVED = "approved"  # accepted (and approved where the company's rules required it): ready to order
    REJECTED = "rejected"  # an approver rejected it
    ORDERED = "ordered"  # converted into its one order
    EXPIRED = "expired"  # its validity date passed before it was ordered


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ApprovalMode(StrEnum):
    ALL = "all"
    ANY = "any"


class ApprovalDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    OVERDUE = "overdue"  # open past its due date (the mark-overdue-invoices job): the company is on credit hold


class PaymentMethod(StrEnum):
    """How a company order is paid once approved."""

    CARD = "card"
    ON_ACCOUNT = "on_account"


def _company_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "company_id"], ["company.tenant_id", "company.id"],
                                ondelete="CASCADE", name=f"fk_{table}_company")


class Company(TenantOwnedMixin, Base):
    """A business customer of the tenant. `credit_used` never exceeds `credit_limit` (a CHECK, and the atomic
    conditional update of service.take_credit)."""

    __tablename__ = "company"
    __table_args__ = (
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        one_of(CompanyStatus),
        one_of(PaymentTerms, "payment_terms"),
        CheckConstraint("credit_limit >= 0", name="credit_limit_not_negative"),
        CheckConstraint("credit_used >= 0 and credit_used <= credit_limit", name="credit_within_limit"),
        Index("ix_company_tenant_created", "tenant_id", "created_at", "id"),
    )

    # The stores it is restricted to (company_store), comma-separated and sorted, for the policies (store admins of a
    # listed store manage it); empty: every store of the tenant.
    store_ids: Mapped[str] = mapped_column(String(4000), nullable=False, server_default="")
    legal_name: Mapped[str] = mapped_column(String(255), nullable=False)
    tax_id: Mapped[str | None] = mapped_column(String(64))
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    credit_limit: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    credit_used: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    payment_terms: Mapped[str] = mapped_column(String(10), nullable=False, server_default="prepaid")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")


class CompanyStore(TenantOwnedMixin, Base):
    """A store a company is restricted to (none: it buys in every store of the tenant)."""

    __tablename__ = "company_store"
    __table_args__ = (
        _company_fk("company_store"),
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "company_id", "store_id"),
        Index("ix_company_store_tenant_store", "tenant_id", "store_id"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class CompanyUser(TenantOwnedMixin, Base):
    """A customer (token subject) in a company, with a company role and an optional spending limit."""

    __tablename__ = "company_user"
    __table_args__ = (
        _company_fk("company_user"),
        UniqueConstraint("tenant_id", "company_id", "customer_id"),
        one_of(CompanyRole, "role"),
        one_of(CompanyUserStatus),
        one_of(SpendingPeriod, "limit_period"),
        CheckConstraint("order_limit is null or order_limit > 0", name="order_limit_positive"),
        CheckConstraint("period_limit is null or period_limit > 0", name="period_limit_positive"),
        CheckConstraint("(period_limit is null) = (limit_period is null)", name="period_limit_has_period"),
        Index("ix_company_user_tenant_customer", "tenant_id", "customer_id"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    customer_id: Mapped[str] = mapped_column(String(200), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")
    order_limit: Mapped[int | None] = mapped_column(Integer)
    period_limit: Mapped[int | None] = mapped_column(Integer)
    limit_period: Mapped[str | None] = mapped_column(String(10))


class CompanyInvitation(TenantOwnedMixin, Base):
    """An invitation of an email into a company with a role and a spending limit; only the SHA-256 of its token is
    stored. One row per (company, email): inviting the email again gives it a new token and expiry."""

    __tablename__ = "company_invitation"
    __table_args__ = (
        _company_fk("company_invitation"),
        UniqueConstraint("tenant_id", "company_id", "email"),
        UniqueConstraint("tenant_id", "token_hash"),
        one_of(InvitationStatus),
        one_of(CompanyRole, "role"),
        one_of(SpendingPeriod, "limit_period"),
        CheckConstraint("order_limit is null or order_limit > 0", name="order_limit_positive"),
        CheckConstraint("period_limit is null or period_limit > 0", name="period_limit_positive"),
        CheckConstraint("(period_limit is null) = (limit_period is null)", name="period_limit_has_period"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    order_limit: Mapped[int | None] = mapped_column(Integer)
    period_limit: Mapped[int | None] = mapped_column(Integer)
    limit_period: Mapped[str | None] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    invited_by: Mapped[str] = mapped_column(String(200), nullable=False)
    accepted_by: Mapped[str | None] = mapped_column(String(200))  # the customer (token subject) who accepted
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Quote(TenantOwnedMixin, Base):
    """A buyer's request for prices, negotiated in versions. `order_id` is unique: one quote, one order."""

    __tablename__ = "quote"
    __table_args__ = (
        _company_fk("quote"),
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"]),
        one_of(QuoteStatus),
        UniqueConstraint("tenant_id", "order_id"),
        UniqueConstraint("tenant_id", "cart_id"),
        Index("ix_quote_tenant_company", "tenant_id", "company_id", "created_at", "id"),
        Index("ix_quote_tenant_valid", "tenant_id", "status", "valid_until"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)  # holds the lines' region
    buyer_id: Mapped[str] = mapped_column(String(200), nullable=False)
    # The vendors whose products are on the quote, comma-separated (policies: a vendor reads quotes it is on).
    vendor_ids: Mapped[str] = mapped_column(String(4000), nullable=False, server_default="")
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="requested")
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    accepted_version: Mapped[int | None] = mapped_column(Integer)
    accepted_total: Mapped[int | None] = mapped_column(Integer)  # the goods total of the accepted version
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # counts in that period's spend
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class QuoteLine(TenantOwnedMixin, Base):
    """A quote line as of the quote's current version."""

    __tablename__ = "quote_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "quote_id"], ["quote.tenant_id", "quote.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"]),
        UniqueConstraint("tenant_id", "quote_id", "variant_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
    )

    quote_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    sku: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str] = mapped_column(String(600), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    list_unit_price: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[int] = mapped_column(Integer, nullable=False)


class QuoteVersion(TenantOwnedMixin, Base):
    """One immutable response on a quote: who, when, what changed, and every line as it then stood (a trigger of
    the migration refuses UPDATE and DELETE)."""

    __tablename__ = "quote_version"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "quote_id"], ["quote.tenant_id", "quote.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "quote_id", "number"),
    )

    quote_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    author_id: Mapped[str] = mapped_column(String(200), nullable=False)
    author_kind: Mapped[str] = mapped_column(String(10), nullable=False)  # buyer, store or vendor
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class QuoteMessage(TenantOwnedMixin, Base):
    __tablename__ = "quote_message"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "quote_id"], ["quote.tenant_id", "quote.id"], ondelete="CASCADE"),
        Index("ix_quote_message_tenant_quote", "tenant_id", "quote_id", "created_at"),
    )

    quote_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    author_id: Mapped[str] = mapped_column(String(200), nullable=False)
    author_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    body: Mapped[str] = mapped_column(String(4000), nullable=False)


class ApprovalRule(TenantOwnedMixin, Base):
    """From `min_amount` on, a purchase needs the approval `levels` (JSON list of {mode: all|any, roles, users})."""

    __tablename__ = "approval_rule"
    __table_args__ = (
        _company_fk("approval_rule"),
        UniqueConstraint("tenant_id", "company_id", "min_amount"),
        CheckConstraint("min_amount >= 0", name="min_amount_not_negative"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    min_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)


class ApprovalRequest(TenantOwnedMixin, Base):
    """A quote, or a cart order, waiting for approval (exactly one of `quote_id` and `order_id`); `current_level`
    moves forward once per level (row lock + expected level)."""

    __tablename__ = "approval_request"
    __table_args__ = (
        _company_fk("approval_request"),
        ForeignKeyConstraint(["tenant_id", "quote_id"], ["quote.tenant_id", "quote.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
        one_of(ApprovalStatus),
        UniqueConstraint("tenant_id", "quote_id", "quote_version"),
        UniqueConstraint("tenant_id", "order_id"),
        one_of(PaymentMethod, "payment_method"),
        CheckConstraint("(quote_id is null) <> (order_id is null) and (quote_id is null) = (quote_version is null)",
                        name="quote_or_order"),
        Index("ix_approval_request_tenant_company", "tenant_id", "company_id", "created_at", "id"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quote_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    quote_version: Mapped[int | None] = mapped_column(Integer)
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # a cart order in pending_approval
    payment_method: Mapped[str | None] = mapped_column(String(20))  # the order's, once approved
    buyer_id: Mapped[str] = mapped_column(String(200), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    reasons: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    current_level: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")


class ApprovalStep(TenantOwnedMixin, Base):
    """The audit trail of an approval request: every decision, with its approver, level and comment."""

    __tablename__ = "approval_step"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "request_id"], ["approval_request.tenant_id", "approval_request.id"],
                             ondelete="CASCADE"),
        one_of(ApprovalDecision, "decision"),
        UniqueConstraint("tenant_id", "request_id", "level", "approver_id"),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False)
    approver_id: Mapped[str] = mapped_column(String(200), nullable=False)
    approver_role: Mapped[str] = mapped_column(String(20), nullable=False)
    decision: Mapped[str] = mapped_column(String(10), nullable=False)
    comment: Mapped[str | None] = mapped_column(String(2000))


class Invoice(TenantOwnedMixin, Base):
    """What an order on account owes, due by the company's payment terms; paying it restores the credit."""

    __tablename__ = "invoice"
    __table_args__ = (
        _company_fk("invoice"),
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"]),
        one_of(InvoiceStatus),
        UniqueConstraint("tenant_id", "order_id"),
        Index("ix_invoice_tenant_status_due", "tenant_id", "status", "due_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_invoice_tenant_company", "tenant_id", "company_id", "created_at", "id"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quote_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    buyer_id: Mapped[str] = mapped_column(String(200), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    payment_terms: Mapped[str] = mapped_column(String(10), nullable=False)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="open")
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # when the job marked it
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # its last reminder
