"""Arguments and inputs of the billing operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from cityos.domain.billing.models import (
    BillingInterval,
    CustomerSubscriptionStatus,
    DunningFinalAction,
    SubscriptionPlanStatus,
)
from cityos.graphql.billing import types as _registered  # noqa: F401  (registers the enums as GraphQL enums)


@strawberry.input(description="A plan's price in one currency.")
class SubscriptionPlanPriceInput:
    currency_code: str = strawberry.field(description="ISO 4217 currency code (e.g. usd).")
    amount: int = strawberry.field(description="Price of one billing period in minor units (cents), positive.")
    setup_fee: int = strawberry.field(default=0, description="One-off fee charged when subscribing, in minor "
                                                            "units (default 0).")


@strawberry.input(description="A new subscription plan for a variant.")
class CreateSubscriptionPlanInput:
    variant_id: strawberry.ID = strawberry.field(description="Global id of the variant the plan sells (its "
                                                             "product's store and vendor own the plan).")
    name: str = strawberry.field(description="Display name.")
    interval: BillingInterval = strawberry.field(description="The unit of the billing period.")
    interval_count: int = strawberry.field(default=1, description="Intervals per billing period (1–366).")
    trial_days: int = strawberry.field(default=0, description="Free days before the first period is charged "
                                                              "(0–730).")
    prices: list[SubscriptionPlanPriceInput] = strawberry.field(description="Prices, one per currency; at least "
                                                                            "one.")


@strawberry.input(description="Changes to a plan; omitted fields stay as they are. Existing subscriptions keep the "
                              "price they subscribed at.")
class UpdateSubscriptionPlanInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    interval: BillingInterval | None = strawberry.field(default=None, description="New unit of the billing "
                                                                                   "period.")
    interval_count: int | None = strawberry.field(default=None, description="New intervals per period (1–366).")
    trial_days: int | None = strawberry.field(default=None, description="New trial length in days (0–730).")
    prices: list[SubscriptionPlanPriceInput] | None = strawberry.field(default=None, description="New prices "
                                                                                                 "(replace the "
                                                                                                 "old ones).")


@strawberry.input(description="A postal address renewals of physical goods ship to (checked like a cart's).")
class SubscriptionAddressInput:
    first_name: str = strawberry.field(description="Given name.")
    last_name: str = strawberry.field(description="Family name.")
    address_1: str = strawberry.field(description="Street and number.")
    address_2: str | None = strawberry.field(default=None, description="Apartment, suite…")
    city: str = strawberry.field(description="City.")
    province: str = strawberry.field(description="State or province code (e.g. CA or US-CA).")
    postal_code: str = strawberry.field(description="Postal code.")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 country code.")
    phone: str | None = strawberry.field(default=None, description="Phone for the courier.")


@strawberry.input(description="Subscribe the signed-in customer to a plan.")
class SubscribeInput:
    plan_id: strawberry.ID = strawberry.field(description="Global id of the plan.")
    currency_code: str = strawberry.field(description="ISO 4217 code of the plan price to pay in.")
    payment_method_id: str = strawberry.field(description="The Stripe PaymentMethod (pm_…) from Stripe.js; it is "
                                                          "saved to the customer for the renewals.")
    email: str | None = strawberry.field(default=None, description="The customer's email for receipts and the "
                                                                   "renewal orders (required).")
    quantity: int = strawberry.field(default=1, description="Units of the variant per period (1–1000).")
    shipping_address: SubscriptionAddressInput | None = strawberry.field(
        default=None, description="Where renewals ship to (physical goods); checked against the store's region.")


PlanIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the subscription plan.")]
CreatePlan = Annotated[CreateSubscriptionPlanInput, strawberry.argument(description="The plan to create.")]
PlanChanges = Annotated[UpdateSubscriptionPlanInput, strawberry.argument(description="The changes.")]
Subscribe = Annotated[SubscribeInput, strawberry.argument(description="What to subscribe to and how to pay.")]
PlanStoreId = Annotated[strawberry.ID | None, strawberry.argument(description="Only plans of this store (global "
                                                                             "id).")]
PlanStatusArg = Annotated[SubscriptionPlanStatus | None, strawberry.argument(description="Only plans with this "
                                                                                        "status.")]
SubscriptionStatusArg = Annotated[CustomerSubscriptionStatus | None, strawberry.argument(
    description="Only subscriptions with this status.")]


SubscriptionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the customer "
                                                                           "subscription.")]
AtPeriodEnd = Annotated[bool, strawberry.argument(description="true: it renews no more and ends when the current "
                                                              "period ends; false (default): canceled now.")]
NewPlanId = Annotated[strawberry.ID, strawberry.argument(description="Global id of the plan to move to (same store, "
                                                                     "priced in the subscription's currency).")]
PaymentMethodArg = Annotated[str, strawberry.argument(description="The new Stripe PaymentMethod (pm_…) from "
                                                                  "Stripe.js; it is saved for the renewals.")]
PlanFilterArg = Annotated[strawberry.ID | None, strawberry.argument(description="Only subscriptions to this plan "
                                                                               "(global id).")]
VendorFilterArg = Annotated[strawberry.ID | None, strawberry.argument(description="Only subscriptions to this "
                                                                                 "vendor's plans (global id).")]
RenewsAfterArg = Annotated[datetime | None, strawberry.argument(description="Only those renewing at or after this "
                                                                            "time (current period end).")]
RenewsBeforeArg = Annotated[datetime | None, strawberry.argument(description="Only those renewing before this "
                                                                             "time (current period end).")]
RetryDaysArg = Annotated[list[int], strawberry.argument(description="Days after the first failure at which a "
                                                                    "declined renewal is retried (increasing, "
                                                                    "1–60, at most 10; default 1, 3, 7).")]
FinalActionArg = Annotated[DunningFinalAction, strawberry.argument(description="What happens after the last "
                                                                               "failed retry.")]
CartPlanQuantity = Annotated[int, strawberry.argument(description="Subscriptions of the plan in the cart (units "
                                                                  "of its variant per period), 0-1000; 0 takes "
                                                                  "it out.")]
