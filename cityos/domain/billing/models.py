"""Billing tables. `SubscriptionPlan` (what a vendor or store sells on a schedule) and `CustomerSubscription` (a
customer's subscription to a plan) are never called `Subscription`: that is GraphQL's root operation type.

Each status is a StrEnum: the one list that derives the table's CHECK, drives the rules and the GraphQL enum."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, TenantOwnedMixin, one_of


class BillingInterval(StrEnum):
    """The unit of a plan's billing period (a period is `interval_count` of them)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class SubscriptionPlanStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class CustomerSubscriptionStatus(StrEnum):
    """Where a customer's subscription is (see rules.TRANSITIONS)."""

    INCOMPLETE = "incomplete"  # created; the first charge or card set-up has not succeeded (yet)
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    CANCELED = "canceled"
    EXPIRED = "expired"


class BillingCycleStatus(StrEnum):
    """Where one billing cycle's renewal charge is."""

    PENDING = "pending"  # claimed, not charged yet (or Stripe was unavailable: charged again next run)
    CHARGING = "charging"  # a runner holds its lease and is calling Stripe
    PAID = "paid"
    FAILED = "failed"  # declined; the subscription is past_due and dunning retries it (or the customer confirms)
    SKIPPED = "skipped"  # not charged: skipped by the customer, or the variant was out of stock (recorded, notified)


class BillingAttemptOutcome(StrEnum):
    """What one charge attempt of a cycle came to, as Stripe answered it."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    ACTION_REQUIRED = "action_required"  # authentication_required (SCA): the customer must confirm on-session


class DunningFinalAction(StrEnum):
    """What happens to a subscription when its last dunning retry fails (per tenant)."""

    CANCEL = "cancel"
    PAUSE = "pause"


class SubscriptionPlan(TenantOwnedMixin, Base):
    __tablename__ = "subscription_plan"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "product_id"], ["product.tenant_id", "product.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "variant_id"], ["variant.tenant_id", "variant.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "vendor_id"], ["vendor.tenant_id", "vendor.id"]),
        one_of(BillingInterval, "interval"),
        one_of(SubscriptionPlanStatus),
        CheckConstraint("interval_count between 1 and 366", name="interval_count_range"),
        CheckConstraint("trial_days between 0 and 730", name="trial_days_range"),
        Index("ix_subscription_plan_tenant_store", "tenant_id", "store_id", "created_at", "id"),
        Index("ix_subscription_plan_tenant_vendor", "tenant_id", "vendor_id", "created_at", "id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    product_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the product's vendor (policies)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    interval: Mapped[str] = mapped_column(String(10), nullable=False)
    interval_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    trial_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")


class SubscriptionPlanPrice(TenantOwnedMixin, Base):
    """A plan's price per period, and its one-off setup fee, in one currency (minor units)."""

    __tablename__ = "subscription_plan_price"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "plan_id"], ["subscription_plan.tenant_id", "subscription_plan.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        UniqueConstraint("tenant_id", "plan_id", "currency_code"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("setup_fee >= 0", name="setup_fee_not_negative"),
    )

    plan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    setup_fee: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class CustomerSubscription(TenantOwnedMixin, Base):
    """A customer's subscription to a plan. Billing periods are anchored: paid period k runs from
    rules.period_start(anchor, k) to rules.period_start(anchor, k + 1), so month-end clamping never drifts;
    `periods_billed` counts the paid periods begun (a trial is before period 0)."""

    __tablename__ = "customer_subscription"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "plan_id"], ["subscription_plan.tenant_id", "subscription_plan.id"]),
        ForeignKeyConstraint(["tenant_id", "store_id"], ["store.tenant_id", "store.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["currency_code"], ["currency.code"]),
        one_of(CustomerSubscriptionStatus),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("current_period_end > current_period_start", name="period_order"),
        CheckConstraint("credit_balance >= 0", name="credit_not_negative"),
        CheckConstraint("setup_fee >= 0", name="setup_fee_not_negative"),
        Index("ix_customer_subscription_tenant_customer", "tenant_id", "customer_id", "created_at", "id"),
        Index("ix_customer_subscription_due", "tenant_id", "status", "current_period_end"),
        Index("ix_customer_subscription_tenant_plan", "tenant_id", "plan_id"),
    )

    store_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    plan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the plan's vendor (policies)
    customer_id: Mapped[str] = mapped_column(String(200), nullable=False)  # the customer's token subject
    email: Mapped[str | None] = mapped_column(String(320))
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # per period, quantity included, as subscribed
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="incomplete")
    anchor: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    periods_billed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    current_period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    current_period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    trial_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_payment_method_id: Mapped[str | None] = mapped_column(String(255))
    setup_intent_id: Mapped[str | None] = mapped_column(String(255))
    first_payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    last_decline_code: Mapped[str | None] = mapped_column(String(100))
    last_payment_error: Mapped[str | None] = mapped_column(String(1000))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Self-service (migration 0014): cancel when the period ends; paused since; the next period to skip; the
    # proration credit (minor units) carried into the next renewals; where physical renewals ship to.
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    skip_period_index: Mapped[int | None] = mapped_column(Integer)
    credit_balance: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The plan's setup fee as subscribed (minor units), until it is paid: a fee line of the first paid period's order
    # (at subscribing without a trial, else the first renewal), then 0 (migration 0020).
    setup_fee: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class BillingCycle(TenantOwnedMixin, Base):
    """One renewal of a subscription: claimed once per (subscription, period_start) — the unique key is the
    exactly-once guarantee — and charged off-session with the cycle's id as the idempotency key."""

    __tablename__ = "billing_cycle"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "subscription_id"],
                             ["customer_subscription.tenant_id", "customer_subscription.id"], ondelete="CASCADE",
                             name="fk_billing_cycle_subscription"),
        UniqueConstraint("tenant_id", "subscription_id", "period_start"),
        one_of(BillingCycleStatus),
        CheckConstraint("period_end > period_start", name="period_order"),
        Index("ix_billing_cycle_tenant_status", "tenant_id", "status", "lease_until"),
        Index("ix_billing_cycle_tenant_retry", "tenant_id", "status", "next_retry_at"),
        CheckConstraint("credit_applied >= 0", name="credit_applied_not_negative"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    period_index: Mapped[int] = mapped_column(Integer, nullable=False)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency_code: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    charge_id: Mapped[str | None] = mapped_column(String(255))
    decline_code: Mapped[str | None] = mapped_column(String(100))
    failure_message: Mapped[str | None] = mapped_column(String(1000))
    charged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Renewal orders and dunning (migration 0014): the cart and order of the renewal (the checkout's order path),
    # the snapshot charged for, the proration credit it used, when it first failed, when dunning retries it, and
    # whether the customer must confirm it on-session (SCA).
    cart_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    credit_applied: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    skip_reason: Mapped[str | None] = mapped_column(String(500))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    action_required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class BillingAttempt(TenantOwnedMixin, Base):
    """One charge attempt of a billing cycle, as Stripe answered it (the renewal, each dunning retry, a webhook
    about it, the customer's on-session confirmation). Unique per (PaymentIntent, outcome): a webhook about an
    attempt already recorded from the API's answer adds nothing."""

    __tablename__ = "billing_attempt"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cycle_id"], ["billing_cycle.tenant_id", "billing_cycle.id"],
                             ondelete="CASCADE", name="fk_billing_attempt_cycle"),
        UniqueConstraint("tenant_id", "payment_intent_id", "outcome"),
        one_of(BillingAttemptOutcome, "outcome"),
        Index("ix_billing_attempt_tenant_cycle", "tenant_id", "cycle_id", "created_at"),
    )

    cycle_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    subscription_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)  # renewal | retry | webhook | customer
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    code: Mapped[str | None] = mapped_column(String(100))
    decline_code: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(String(1000))


class BillingSettings(TenantOwnedMixin, Base):
    """A tenant's dunning policy (one row per tenant; none → the defaults of rules.DEFAULT_DUNNING)."""

    __tablename__ = "billing_settings"
    __table_args__ = (
        UniqueConstraint("tenant_id"),
        one_of(DunningFinalAction, "final_action"),
        CheckConstraint("cardinality(retry_days) between 1 and 10", name="retry_days_count"),
    )

    retry_days: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
    final_action: Mapped[str] = mapped_column(String(10), nullable=False, server_default="cancel")


class CartSubscriptionItem(TenantOwnedMixin, Base):
    """A subscription plan in a cart: checked out with the cart's PaymentIntent into a customer subscription whose
    first period the order pays (billing/cart.py). One row per (cart, plan)."""

    __tablename__ = "cart_subscription_item"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cart_id"], ["cart.tenant_id", "cart.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "plan_id"], ["subscription_plan.tenant_id", "subscription_plan.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "cart_id", "plan_id"),
        CheckConstraint("quantity between 1 and 1000", name="quantity_range"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    plan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
