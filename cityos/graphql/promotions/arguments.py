"""Arguments and inputs of the promotion operations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from cityos.domain.promotions.models import PromotionAction, PromotionFunding, PromotionStacking, PromotionStatus
from cityos.graphql.promotions import types as _registered  # noqa: F401  (registers the enums as GraphQL enums)


@strawberry.input(description="A spend threshold of a tiered promotion.")
class PromotionTierInput:
    threshold: int = strawberry.field(description="From this subtotal of its lines (minor units) …")
    amount: int = strawberry.field(description="… this much comes off (minor units, at most the threshold).")


@strawberry.input(description="When a promotion applies; every condition given must hold.")
class PromotionConditionsInput:
    min_subtotal: int | None = strawberry.field(default=None, description="The cart's subtotal is at least this.")
    product_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Some line is one of "
                                                                                         "these products.")
    category_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Some line is in one of "
                                                                                          "these categories.")
    vendor_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Some line is sold by one "
                                                                                        "of these vendors.")
    customer_ids: list[str] | None = strawberry.field(default=None, description="The customer is one of these "
                                                                                "(token subjects).")
    company_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="The cart's company is "
                                                                                         "one of these.")
    first_order: bool = strawberry.field(default=False, description="The signed-in customer has no order yet.")


@strawberry.input(description="A new promotion. Vendors create promotions of their own products (vendorId); a store "
                              "that requires approval keeps them pending until an admin approves.")
class CreatePromotionInput:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store.")
    name: str = strawberry.field(description="Display name (1–200 characters).")
    action: PromotionAction = strawberry.field(description="What it takes off.")
    code: str | None = strawberry.field(default=None, description="The code shoppers enter (1–64 letters, digits, "
                                                                  "- or _; unique per store, case-insensitive); "
                                                                  "omit for an automatic promotion.")
    vendor_id: strawberry.ID | None = strawberry.field(default=None, description="A vendor's own promotion: only "
                                                                                 "its products.")
    percent: Decimal | None = strawberry.field(default=None, description="Percent off (above 0, at most 100): "
                                                                         "percent actions; buy X get Y (default "
                                                                         "100).")
    amount: int | None = strawberry.field(default=None, description="Fixed amount off (minor units): fixed "
                                                                    "actions.")
    currency_code: str | None = strawberry.field(default=None, description="Currency of fixed and tiered amounts "
                                                                            "(carts in other currencies do not "
                                                                            "get it).")
    buy_quantity: int | None = strawberry.field(default=None, description="Buy X get Y: units to buy.")
    get_quantity: int | None = strawberry.field(default=None, description="Buy X get Y: units that come free.")
    tiers: list[PromotionTierInput] | None = strawberry.field(default=None, description="Tiered: thresholds, "
                                                                                        "rising.")
    conditions: PromotionConditionsInput | None = strawberry.field(default=None, description="When it applies.")
    stacking: PromotionStacking = strawberry.field(default=PromotionStacking.COMBINABLE,
                                                   description="Exclusive or combinable (default).")
    priority: int = strawberry.field(default=0, description="Precedence: higher applies first.")
    starts_at: datetime | None = strawberry.field(default=None, description="Applies from then.")
    ends_at: datetime | None = strawberry.field(default=None, description="Applies until then.")
    usage_limit: int | None = strawberry.field(default=None, description="Uses in all (orders).")
    per_customer_limit: int | None = strawberry.field(default=None, description="Uses per customer.")
    funding: PromotionFunding = strawberry.field(default=PromotionFunding.PLATFORM,
                                                 description="Who pays (vendor and split: a vendor's promotion).")
    vendor_share_percent: Decimal | None = strawberry.field(default=None, description="Split: the vendor's "
                                                                                      "percent (above 0, below "
                                                                                      "100).")
    max_cycles: int | None = strawberry.field(default=None, description="Subscription renewals it discounts once "
                                                                        "a subscription carries it; null: all.")


@strawberry.input(description="Changes to a promotion; omitted fields stay as they are. A vendor's change waits for "
                              "approval again where the store requires it.")
class UpdatePromotionInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    code: str | None = strawberry.field(default=None, description="New code.")
    percent: Decimal | None = strawberry.field(default=None, description="New percent.")
    amount: int | None = strawberry.field(default=None, description="New fixed amount.")
    tiers: list[PromotionTierInput] | None = strawberry.field(default=None, description="New tiers.")
    conditions: PromotionConditionsInput | None = strawberry.field(default=None, description="New conditions "
                                                                                             "(replace them).")
    stacking: PromotionStacking | None = strawberry.field(default=None, description="New stacking.")
    priority: int | None = strawberry.field(default=None, description="New priority.")
    starts_at: datetime | None = strawberry.field(default=None, description="New start.")
    ends_at: datetime | None = strawberry.field(default=None, description="New end.")
    usage_limit: int | None = strawberry.field(default=None, description="New overall limit.")
    per_customer_limit: int | None = strawberry.field(default=None, description="New per-customer limit.")
    max_cycles: int | None = strawberry.field(default=None, description="New renewal cycles.")


PromotionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the promotion.")]
CreatePromotion = Annotated[CreatePromotionInput, strawberry.argument(description="The promotion to create.")]
PromotionChanges = Annotated[UpdatePromotionInput, strawberry.argument(description="The changes.")]
PromotionStoreArg = Annotated[strawberry.ID | None, strawberry.argument(description="Only promotions of this store "
                                                                                   "(global id).")]
PromotionStatusArg = Annotated[PromotionStatus | None, strawberry.argument(description="Only promotions with this "
                                                                                      "status.")]
PromotionVendorArg = Annotated[strawberry.ID | None, strawberry.argument(description="Only this vendor's "
                                                                                    "promotions (global id).")]
StoreIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the store.")]
ApprovalRequired = Annotated[bool, strawberry.argument(description="Vendors' promotions wait for approval.")]
SubscriptionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the customer "
                                                                           "subscription.")]
CodeArg = Annotated[str, strawberry.argument(description="The promotion code (case-insensitive).")]
