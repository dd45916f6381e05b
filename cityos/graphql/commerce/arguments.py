"""Arguments and inputs of the cart, checkout and order fields."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cityos.graphql.core.values import OrderStatus

AccessToken = Annotated[str | None, strawberry.argument(
    description="The orderAccessToken startCheckout returned (proves the caller bought the cart).")]



@strawberry.input(description="Options for a new cart.")
class CreateCartInput:
    currency_code: str | None = strawberry.field(default=None, description="Default: the store's currency")
    region_id: strawberry.ID | None = strawberry.field(default=None, description="The region to shop in (its "
                                                       "currency is the cart's); default: the oldest region "
                                                       "selling in the currency.")
    email: str | None = strawberry.field(default=None, description="The shopper's email, for the receipt (can be set "
                                                                   "later with setCartEmail).")


@strawberry.input(description="A postal address inside the cart's region (country and state must belong to it).")
class AddressInput:
    first_name: str = strawberry.field(description="Recipient's first name.")
    last_name: str = strawberry.field(description="Recipient's last name.")
    company: str | None = strawberry.field(default=None, description="Company name (optional).")
    address_1: str = strawberry.field(description="Street and number.")
    address_2: str | None = strawberry.field(default=None, description="Apartment, suite, floor (optional).")
    city: str = strawberry.field(description="City or town.")
    province: str = strawberry.field(description="State code, e.g. CA or US-CA")
    postal_code: str = strawberry.field(description="Postal code; in the US a ZIP code, 12345 or 12345-6789.")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 country code; must be the country of the "
                                                     "cart's region.")
    phone: str | None = strawberry.field(default=None, description="Phone number for the courier (optional).")



CartOptions = Annotated[CreateCartInput | None, strawberry.argument(description="Options for the new cart.")]
CartIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the cart.")]
VariantIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the variant.")]
Quantity = Annotated[int, strawberry.argument(description="Number of units, at least 1.")]
LineIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the cart line.")]
LineQuantity = Annotated[int, strawberry.argument(
    description="New number of units, at least 1 (removeCartLine removes a line).")]
Email = Annotated[str, strawberry.argument(description="The shopper's email.")]
Address = Annotated[AddressInput, strawberry.argument(description="The shipping address.")]
ShippingOptionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of a shipping option from "
                                                                               "the cart's availableShippingOptions.")]
OrderIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the order.")]
NewOrderStatus = Annotated[OrderStatus, strawberry.argument(description="The status to move to (PENDING never is "
                                                                         "one: INVALID_STATE_TRANSITION).")]
PromotionCode = Annotated[str, strawberry.argument(description="A promotion code (matched case-insensitively).")]
