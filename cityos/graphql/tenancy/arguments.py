"""Inputs of the store set-up mutations: regions, their states and tax, shipping options, sales channels."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from cityos.graphql.core.values import MoneyInput


@strawberry.input(description="A state (ISO 3166-2 subdivision) a region sells to, with its own tax rate if any.")
class RegionStateInput:
    code: str = strawberry.field(description="ISO 3166-2 code (US-CA), or without the country (CA) when the region "
                                             "has one country.")
    name: str = strawberry.field(description="Display name (e.g. California).")
    tax_rate: Decimal | None = strawberry.field(default=None, description="The state's tax rate (decimal fraction, "
                                                                          "e.g. 0.0725); null: the region's.")


@strawberry.input(description="A new selling region of the caller's tenant.")
class CreateRegionInput:
    name: str = strawberry.field(description="Display name, unique in the tenant.")
    currency_code: str = strawberry.field(description="ISO 4217 code of the region's currency (e.g. usd); carts in "
                                                      "this currency shop in this region.")
    country_codes: list[str] = strawberry.field(description="ISO 3166-1 alpha-2 codes of the countries it sells to.")
    tax_rate: Decimal = strawberry.field(default=Decimal(0), description="Tax rate (decimal fraction, 0 ≤ rate < 1, "
                                                                         "at most 4 places).")
    tax_inclusive: bool = strawberry.field(default=False, description="Whether prices and shipping include the tax.")
    states: list[RegionStateInput] = strawberry.field(default_factory=list, description="The states it sells to; "
                                                      "with none listed for a country, any state of it is accepted.")


@strawberry.input(description="Changes to a region; omitted fields stay as they are. Its currency never changes.")
class UpdateRegionInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    country_codes: list[str] | None = strawberry.field(default=None, description="The countries it sells to.")
    tax_rate: Decimal | None = strawberry.field(default=None, description="New tax rate.")
    tax_inclusive: bool | None = strawberry.field(default=None, description="Whether prices include the tax.")
    states: list[RegionStateInput] | None = strawberry.field(default=None, description="Replaces the region's "
                                                                                       "states.")


@strawberry.input(description="A weight band: parcels up to upToGrams cost amount.")
class WeightBandInput:
    up_to_grams: int | None = strawberry.field(default=None, description="Upper limit in grams; null only for the "
                                                                          "last band (no limit).")
    amount: MoneyInput = strawberry.field(description="Price, in the region's currency.")


@strawberry.input(description="A new shipping option of a region. Every amount must be in the region's currency "
                              "(BAD_USER_INPUT otherwise).")
class CreateShippingOptionInput:
    region_id: strawberry.ID = strawberry.field(description="Global id of the region.")
    vendor_id: strawberry.ID | None = strawberry.field(default=None, description="A vendor's own option: its items "
                                                       "ship at this price, charged on their own in one checkout.")
    code: str = strawberry.field(description="Stable code (standard, express, …).")
    name: str = strawberry.field(description="Display name.")
    amount: MoneyInput = strawberry.field(description="Flat price (0 for free shipping).")
    min_subtotal: MoneyInput | None = strawberry.field(default=None, description="Offered only from this subtotal.")
    free_above: MoneyInput | None = strawberry.field(default=None, description="Free from this subtotal on.")
    weight_bands: list[WeightBandInput] | None = strawberry.field(default=None, description="Price by parcel weight "
                                                                  "(replaces the flat amount), lightest first.")


@strawberry.input(description="Changes to a shipping option; omitted fields stay as they are.")
class UpdateShippingOptionInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    amount: MoneyInput | None = strawberry.field(default=None, description="New flat price.")
    min_subtotal: MoneyInput | None = strawberry.field(default=None, description="New minimum subtotal.")
    free_above: MoneyInput | None = strawberry.field(default=None, description="New free-above amount.")
    weight_bands: list[WeightBandInput] | None = strawberry.field(default=None, description="New weight bands.")
    is_active: bool | None = strawberry.field(default=None, description="Offer it to carts or not.")
    clear: list[str] = strawberry.field(default_factory=list, description="Optional amounts to remove: "
                                                                          "minSubtotal, freeAbove, weightBands.")


@strawberry.input(description="A new sales channel of a store.")
class CreateSalesChannelInput:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store.")
    name: str = strawberry.field(description="Display name, unique in the store.")
    description: str | None = strawberry.field(default=None, description="What the channel is for.")
    is_default: bool = strawberry.field(default=False, description="Make it the channel storefronts sell.")


@strawberry.input(description="Changes to a sales channel; omitted fields stay as they are.")
class UpdateSalesChannelInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    description: str | None = strawberry.field(default=None, description="New description.")
    is_default: bool | None = strawberry.field(default=None, description="Make it the store's default channel.")
    is_disabled: bool | None = strawberry.field(default=None, description="Switch it off (not the default one).")


NewRegion = Annotated[CreateRegionInput, strawberry.argument(description="The region to create.")]
RegionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the region.")]
RegionChanges = Annotated[UpdateRegionInput, strawberry.argument(description="The changes.")]
NewShippingOption = Annotated[CreateShippingOptionInput, strawberry.argument(description="The option to create.")]
ShippingOptionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the shipping option.")]
ShippingOptionChanges = Annotated[UpdateShippingOptionInput, strawberry.argument(description="The changes.")]
NewSalesChannel = Annotated[CreateSalesChannelInput, strawberry.argument(description="The channel to create.")]
SalesChannelIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the sales channel.")]
SalesChannelChanges = Annotated[UpdateSalesChannelInput, strawberry.argument(description="The changes.")]
