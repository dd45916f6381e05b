"""Billing types, declared once. `SubscriptionPlan` and `CustomerSubscription` are never named `Subscription`
(GraphQL's root operation type). A billing cycle is part of its subscription: it is read through it and authorized
as it (kind `customer_subscription`)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from cityos.domain.base import table_of
from cityos.domain.billing.models import (
    BillingAttemptOutcome,
    BillingCycleStatus,
    BillingInterval,
    CustomerSubscriptionStatus,
    DunningFinalAction,
    SubscriptionPlanStatus,
)
from cityos.domain.billing.models import (
    BillingCycle as BillingCycleModel,
)
from cityos.domain.billing.models import (
    CustomerSubscription as CustomerSubscriptionModel,
)
from cityos.domain.billing.models import (
    SubscriptionPlan as SubscriptionPlanModel,
)
from cityos.domain.billing.models import (
    SubscriptionPlanPrice as SubscriptionPlanPriceModel,
)
from cityos.domain.billing.queries import attempts as attempt_listing
from cityos.domain.billing.queries import cycles as cycle_listing
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import NODE_LOADERS, Declaration, Declared, columns, declare, declared
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import After, Connection, First, Node, PageRequest, page_query, to_global_id, wants_total
from cityos.graphql.core.values import Money, described_enum, money

if TYPE_CHECKING:
    from cityos.graphql.catalog.types import Variant

PLAN_TABLE = table_of(SubscriptionPlanModel)
PLAN_PRICE_TABLE = table_of(SubscriptionPlanPriceModel)
SUBSCRIPTION_TABLE = table_of(CustomerSubscriptionModel)
CYCLE_TABLE = table_of(BillingCycleModel)

described_enum(BillingInterval, "The unit of a plan's billing period; a period is intervalCount of them.", {
    BillingInterval.DAY: "Days.",
    BillingInterval.WEEK: "Weeks (7 days).",
    BillingInterval.MONTH: "Calendar months; a day the month lacks is its last day (Jan 31 → Feb 28 → Mar 31).",
    BillingInterval.YEAR: "Calendar years (Feb 29 → Feb 28 in other years).",
})
described_enum(SubscriptionPlanStatus, "Whether a plan can be subscribed to.", {
    SubscriptionPlanStatus.ACTIVE: "Offered: customers can subscribe.",
    SubscriptionPlanStatus.ARCHIVED: "No new subscriptions; existing ones go on renewing.",
})
described_enum(CustomerSubscriptionStatus, "Where a customer's subscription is.", {
    CustomerSubscriptionStatus.INCOMPLETE: "Created; the first payment or card set-up has not succeeded.",
    CustomerSubscriptionStatus.TRIALING: "In its free trial; the first renewal charges the saved card.",
    CustomerSubscriptionStatus.ACTIVE: "Paid up for the current period.",
    CustomerSubscriptionStatus.PAST_DUE: "The last renewal was declined; it is retried (dunning).",
    CustomerSubscriptionStatus.PAUSED: "Paused: no renewals until resumed.",
    CustomerSubscriptionStatus.CANCELED: "Canceled: no more renewals.",
    CustomerSubscriptionStatus.EXPIRED: "Never completed its first payment, or ran its course.",
})
described_enum(BillingCycleStatus, "Where one renewal charge is.", {
    BillingCycleStatus.PENDING: "Due: the next run of process-billing-cycles charges it.",
    BillingCycleStatus.CHARGING: "Being charged by a runner right now.",
    BillingCycleStatus.PAID: "Charged successfully; the subscription's period advanced.",
    BillingCycleStatus.FAILED: "Declined; see declineCode. The subscription is past due (dunning retries it, or "
                               "the customer confirms it when actionRequired).",
    BillingCycleStatus.SKIPPED: "Not charged: skipped by the customer, or out of stock (see skipReason).",
})
described_enum(BillingAttemptOutcome, "What one charge attempt came to.", {
    BillingAttemptOutcome.SUCCEEDED: "Charged.",
    BillingAttemptOutcome.DECLINED: "Declined by the card issuer (see declineCode).",
    BillingAttemptOutcome.ACTION_REQUIRED: "The bank asks for the customer's authentication (SCA): the customer "
                                           "confirms on-session (confirmSubscriptionPayment).",
})
described_enum(DunningFinalAction, "What happens when the last dunning retry fails.", {
    DunningFinalAction.CANCEL: "The subscription is canceled.",
    DunningFinalAction.PAUSE: "The subscription is paused (the customer can resume it).",
})


@strawberry.type(description="One charge attempt of a billing cycle, as Stripe answered it.")
class BillingAttempt:
    attempt: int = strawberry.field(description="Which attempt of the cycle (1 = the renewal, then the retries).")
    source: str = strawberry.field(description="renewal | retry | webhook: who recorded it.")
    outcome: BillingAttemptOutcome = strawberry.field(description="What it came to.")
    amount: Money = strawberry.field(description="What was charged.")
    payment_intent_id: str | None = strawberry.field(description="The Stripe PaymentIntent.")
    code: str | None = strawberry.field(description="Stripe's error code (card_declined, authentication_required…).")
    decline_code: str | None = strawberry.field(description="Stripe's decline code (insufficient_funds…).")
    message: str | None = strawberry.field(description="Stripe's message to the customer.")
    created_at: datetime = strawberry.field(description="When it was recorded.")

    @classmethod
    def from_row(cls, row: Any) -> BillingAttempt:
        return cls(attempt=row.attempt, source=row.source, outcome=BillingAttemptOutcome(row.outcome),
                   amount=money(row.amount, row.currency_code), payment_intent_id=row.payment_intent_id,
                   code=row.code, decline_code=row.decline_code, message=row.message, created_at=row.created_at)


@strawberry.type(description="A plan's price per billing period, and its one-off setup fee, in one currency.")
class SubscriptionPlanPrice:
    amount: Money = strawberry.field(description="Price of one billing period.")
    setup_fee: Money = strawberry.field(description="Charged once, when subscribing (zero for none).")


SUBSCRIPTION_PLAN = Declaration(
    "SubscriptionPlan", PLAN_TABLE, "subscription_plan",
    columns(PLAN_TABLE, "tenant_id", "store_id", "vendor_id", "status"),
    fields={"status": lambda row: SubscriptionPlanStatus(row.status),
            "interval": lambda row: BillingInterval(row.interval)})


@strawberry.federation.type(keys=["id"], description="A variant sold on a schedule: every intervalCount intervals, "
                                                     "at a price per currency, with an optional trial and setup "
                                                     "fee. Vendors manage their own plans, store admins all of "
                                                     "their store's.")
@declare(SUBSCRIPTION_PLAN)
class SubscriptionPlan(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name (e.g. Monthly coffee box).")
    interval: BillingInterval = strawberry.field(description="The unit of the billing period.")
    interval_count: int = strawberry.field(description="How many intervals one billing period lasts (1–366).")
    trial_days: int = strawberry.field(description="Free days before the first charge of the period price (0: "
                                                   "none).")
    status: SubscriptionPlanStatus = strawberry.field(description="Whether customers can subscribe.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]
    variant_pk: strawberry.Private[uuid.UUID]
    vendor_pk: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="Prices, one per currency, by currency code.")
    async def prices(self, info: Info) -> list[SubscriptionPlanPrice]:
        rows = await info.context.loaders.many_by_key(PLAN_PRICE_TABLE, "plan_id").load(self.pk)
        return [SubscriptionPlanPrice(amount=money(row.amount, row.currency_code),
                                      setup_fee=money(row.setup_fee, row.currency_code))
                for row in sorted(rows, key=lambda row: row.currency_code)]

    @strawberry.field(description="The variant the plan sells; null when the caller may not read its product.")
    async def variant(self, info: Info) -> Annotated[Variant, strawberry.lazy("cityos.graphql.catalog.types")] | None:
        found: Variant | None = await NODE_LOADERS["Variant"](info, self.variant_pk)
        if found is None or not await info.context.authz.allowed(found.resource(), "read"):
            return None
        return found


@strawberry.type(description="One renewal of a customer subscription: the period it pays for and its off-session "
                             "charge.")
class BillingCycle:
    id: strawberry.ID = strawberry.field(description="Opaque id of the cycle (the charge's idempotency key).")
    period_index: int = strawberry.field(description="Which paid period (0 = the first).")
    period_start: datetime = strawberry.field(description="Start of the period it pays for.")
    period_end: datetime = strawberry.field(description="End of the period it pays for.")
    amount: Money = strawberry.field(description="What is charged for the period.")
    status: BillingCycleStatus = strawberry.field(description="Where its charge is.")
    attempts: int = strawberry.field(description="Charge attempts made.")
    payment_intent_id: str | None = strawberry.field(description="The Stripe PaymentIntent of the charge.")
    decline_code: str | None = strawberry.field(description="Stripe's decline code of a failed charge (e.g. "
                                                            "insufficient_funds, generic_decline).")
    failure_message: str | None = strawberry.field(description="Why the last attempt failed, as Stripe said it.")
    charged_at: datetime | None = strawberry.field(description="When the charge succeeded.")
    credit_applied: Money = strawberry.field(description="Proration credit taken off this cycle's charge.")
    skip_reason: str | None = strawberry.field(description="Why a skipped cycle was not charged.")
    next_retry_at: datetime | None = strawberry.field(description="When dunning charges a failed cycle again (or, "
                                                                  "when actionRequired, the customer's deadline).")
    action_required: bool = strawberry.field(description="The bank asks for the customer's authentication: no "
                                                         "blind retry; the customer confirms on-session.")
    order_id: strawberry.ID | None = strawberry.field(description="Global id of the renewal order (read it with "
                                                                  "node or the order queries).")
    pk: strawberry.Private[uuid.UUID]
    currency_code: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: Any) -> BillingCycle:
        return cls(id=strawberry.ID(str(row.id)), period_index=row.period_index, period_start=row.period_start,
                   period_end=row.period_end, amount=money(row.amount, row.currency_code),
                   status=BillingCycleStatus(row.status), attempts=row.attempts,
                   payment_intent_id=row.payment_intent_id, decline_code=row.decline_code,
                   failure_message=row.failure_message, charged_at=row.charged_at,
                   credit_applied=money(row.credit_applied, row.currency_code), skip_reason=row.skip_reason,
                   next_retry_at=row.next_retry_at, action_required=row.action_required,
                   order_id=to_global_id("Order", row.order_id) if row.order_id else None, pk=row.id,
                   currency_code=row.currency_code)

    @strawberry.field(description="Its charge attempts, oldest first, each with Stripe's answer.")
    async def attempt_history(self, info: Info, first: First = None,
                              after: After = None) -> Connection[BillingAttempt]:
        listing = attempt_listing(self.pk)
        currency = self.currency_code

        def of(row: Any) -> BillingAttempt:
            return BillingAttempt.from_row(_WithCurrency(row, currency))

        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after), of,
                                listing.order, count=wants_total(info))


class _WithCurrency:
    """An attempt row read with its cycle's currency."""

    def __init__(self, row: Any, currency_code: str) -> None:
        self._row = row
        self.currency_code = currency_code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


@strawberry.type(description="Where a subscription's renewals are charged: the Stripe customer and saved card.")
class SubscriptionPaymentDetails:
    stripe_customer_id: str | None = strawberry.field(description="The Stripe Customer (cus_…).")
    payment_method_id: str | None = strawberry.field(description="The saved PaymentMethod renewals charge (pm_…).")


CUSTOMER_SUBSCRIPTION = Declaration(
    "CustomerSubscription", SUBSCRIPTION_TABLE, "customer_subscription",
    columns(SUBSCRIPTION_TABLE, "tenant_id", "store_id", "vendor_id", "customer_id"),
    fields={"status": lambda row: CustomerSubscriptionStatus(row.status),
            "amount": lambda row: money(row.amount, row.currency_code)})


@strawberry.federation.type(keys=["id"], description="A customer's subscription to a plan (not GraphQL's "
                                                     "Subscription root type): its status, current period and "
                                                     "billing cycles.")
@declare(CUSTOMER_SUBSCRIPTION)
class CustomerSubscription(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: CustomerSubscriptionStatus = strawberry.field(description="Where the subscription is.")
    amount: Money = strawberry.field(description="What each billing period costs (quantity included).")
    quantity: int = strawberry.field(description="Units of the plan's variant per period.")
    email: str | None = strawberry.field(description="The customer's email, as given when subscribing.")
    current_period_start: datetime = strawberry.field(description="Start of the current period (or of the trial).")
    current_period_end: datetime = strawberry.field(description="End of the current period: the next renewal.")
    trial_end: datetime | None = strawberry.field(description="When the free trial ends; null without one.")
    last_decline_code: str | None = strawberry.field(description="Stripe's decline code of the last failed "
                                                                 "renewal; null once a renewal succeeds.")
    canceled_at: datetime | None = strawberry.field(description="When it was canceled.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    plan_pk: strawberry.Private[uuid.UUID]
    authentication_secret: strawberry.Private[str | None] = dataclasses.field(default=None, init=False)

    @strawberry.field(description="Only in subscribe's answer, when the bank asks the customer to authenticate "
                                  "(3-D Secure): the client secret for Stripe.js — of the SetupIntent with a trial "
                                  "(confirmCardSetup), of the first charge's PaymentIntent without one "
                                  "(confirmCardPayment); give it to Stripe.js only. The subscription is INCOMPLETE "
                                  "until Stripe's webhook says how it went. Null otherwise.")
    def authentication_client_secret(self) -> str | None:
        return self.authentication_secret

    @strawberry.field(description="It will be canceled when the current period ends (no more renewals).")
    def cancel_at_period_end(self) -> bool:
        return bool(self.row.cancel_at_period_end)

    @strawberry.field(description="When it was paused; null unless paused.")
    def paused_at(self) -> datetime | None:
        return self.row.paused_at  # type: ignore[no-any-return]

    @strawberry.field(description="The next period will not be charged or shipped (the customer skipped it).")
    def skip_next_cycle(self) -> bool:
        return self.row.skip_period_index is not None and self.row.skip_period_index == self.row.periods_billed

    @strawberry.field(description="Proration credit carried into the next renewals.")
    def credit_balance(self) -> Money:
        return money(self.row.credit_balance, self.row.currency_code)

    @guarded_field("CustomerSubscription", "payment_details", "The Stripe customer and saved card renewals charge "
                                                              "(the customer and the store's admins).")
    def payment_details(self) -> SubscriptionPaymentDetails | None:
        return SubscriptionPaymentDetails(stripe_customer_id=self.row.stripe_customer_id,
                                          payment_method_id=self.row.stripe_payment_method_id)

    @strawberry.field(description="The plan subscribed to; null when the caller may not read it (e.g. archived).")
    async def plan(self, info: Info) -> SubscriptionPlan | None:
        row = await info.context.loaders.by_key(PLAN_TABLE).load(self.plan_pk)
        plan: SubscriptionPlan | None = declared("SubscriptionPlan").to_node(row) if row else None
        if plan is None or not await info.context.authz.allowed(plan.resource(), "read"):
            return None
        return plan

    @strawberry.field(description="Its billing cycles, newest period first (each with its attempts).")
    async def cycles(self, info: Info, first: First = None, after: After = None) -> Connection[BillingCycle]:
        listing = cycle_listing(self.pk)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                BillingCycle.from_row, listing.order, count=wants_total(info))


@strawberry.type(description="A tenant's dunning policy.")
class DunningPolicy:
    retry_days: list[int] = strawberry.field(description="Days after the first failure at which a declined renewal "
                                                         "is retried.")
    final_action: DunningFinalAction = strawberry.field(description="What happens after the last failed retry.")

    @classmethod
    def of(cls, policy: Any) -> DunningPolicy:
        return cls(retry_days=list(policy.retry_days), final_action=policy.final_action)


@strawberry.type(description="What the customer's browser needs to confirm a renewal on-session (Stripe.js "
                             "confirmCardPayment with the client secret).")
class SubscriptionPaymentConfirmation:
    payment_intent_id: str = strawberry.field(description="The renewal's PaymentIntent.")
    client_secret: str = strawberry.field(description="Its client secret (give it to Stripe.js only).")
    status: str = strawberry.field(description="The PaymentIntent's status at Stripe.")
    cycle_id: strawberry.ID = strawberry.field(description="The billing cycle it pays for.")


@strawberry.type(description="A subscription moved to another plan, with the credit for the old plan's unused "
                             "time.")
class SubscriptionPlanChange:
    subscription: CustomerSubscription = strawberry.field(description="The subscription on its new plan.")
    credit: Money = strawberry.field(description="Credit for the unused time of the old plan, taken off the next "
                                                 "renewals.")
