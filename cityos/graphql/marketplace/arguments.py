"""Arguments and inputs of the marketplace fields."""


from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from cityos.graphql.core.values import VendorStatus


@strawberry.input(description="A new vendor (seller) on a store's marketplace.")
class CreateVendorInput:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store whose marketplace the vendor sells "
                                                           "on.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    name: str = strawberry.field(description="Display name.")
    contact_email: str | None = strawberry.field(default=None, description="Where the platform reaches the vendor.")
    payout_minimum: int | None = strawberry.field(default=None, description="Smallest payout in minor units (default: "
                                                                            "CITYOS_PAYOUT_MINIMUM).")


@strawberry.input(description="Changes to a vendor; omitted fields stay as they are.")
class UpdateVendorInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    status: VendorStatus | None = strawberry.field(default=None, description="New standing (admins).")
    contact_email: str | None = strawberry.field(default=None, description="New contact email.")
    payout_minimum: int | None = strawberry.field(default=None, description="New smallest payout in minor units "
                                                                            "(null: the platform default).")


@strawberry.input(description="What the platform keeps of a sale at one scope: a percentage, a flat amount per line "
                              "or both, optionally bounded; the most specific matching rule wins.")
class CommissionRuleInput:
    scope: str = strawberry.field(description="tenant | store | vendor | category | product")
    scope_id: strawberry.ID | None = strawberry.field(default=None, description="Global id of the store, vendor, "
                                                                                "category or product the rule applies "
                                                                                "to; null for the tenant scope.")
    percentage: Decimal | None = strawberry.field(default=None, description="Percentage of the line total the "
                                                                            "platform keeps (0–100).")
    flat_per_line: int | None = strawberry.field(default=None, description="Flat amount per order line, in minor "
                                                                           "units of the line's currency.")
    minimum: int | None = strawberry.field(default=None, description="Smallest commission per line, in minor units.")
    maximum: int | None = strawberry.field(default=None, description="Largest commission per line, in minor units.")
    effective_from: datetime | None = strawberry.field(default=None, description="First moment the rule applies "
                                                                                 "(null: always did).")
    effective_to: datetime | None = strawberry.field(default=None, description="Moment the rule stops applying (null: "
                                                                               "never).")


@strawberry.type(description="A single-use Stripe-hosted page where a vendor completes its Express account.")
class OnboardingLink:
    url: str = strawberry.field(description="The Stripe onboarding page; open it once, before it expires.")
    stripe_account_id: str = strawberry.field(description="The vendor's connected Stripe account (acct_…).")



@strawberry.input(description="A vendor's pickup address: street, city, postal code and country are required (a US "
                              "postal code is a ZIP code).")
class PickupAddressInput:
    company: str | None = strawberry.field(default=None, description="Name at the address (optional).")
    address_1: str = strawberry.field(description="Street and number.")
    address_2: str | None = strawberry.field(default=None, description="Apartment, suite, floor (optional).")
    city: str = strawberry.field(description="City or town.")
    province: str | None = strawberry.field(default=None, description="State or province code (optional).")
    postal_code: str = strawberry.field(description="Postal code; in the US a ZIP code, 12345 or 12345-6789.")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 country code.")
    phone: str | None = strawberry.field(default=None, description="Phone number for the courier (optional).")


PickupAddressArg = Annotated[PickupAddressInput, strawberry.argument(description="The pickup address.")]
CreateVendor = Annotated[CreateVendorInput, strawberry.argument(description="The vendor to create.")]
VendorIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the vendor.")]
VendorChanges = Annotated[UpdateVendorInput, strawberry.argument(description="The changes.")]
VendorRole = Annotated[str, strawberry.argument(description="vendor_admin or vendor_user.")]
InviteEmail = Annotated[str | None, strawberry.argument(description="Email of the invited person (this or subject).")]
InviteSubject = Annotated[str | None, strawberry.argument(description="Keycloak subject (user id) of the invited "
                                                                      "person (this or email).")]
VendorUserIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the vendor user.")]
RuleValues = Annotated[CommissionRuleInput, strawberry.argument(description="The rule's scope and values.")]
RuleIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the commission rule.")]
OAuthCode = Annotated[str, strawberry.argument(description="The `code` Stripe passed to the OAuth callback.")]
OAuthState = Annotated[str, strawberry.argument(description="The `state` Stripe passed back: signed, bound to the "
                                                            "vendor and the caller, single use.")]
ScopeStoreId = Annotated[strawberry.ID | None, strawberry.argument(description="Global id of a store; defaults to the "
                                                                               "storefront's store (publishable key "
                                                                               "or domain).")]


