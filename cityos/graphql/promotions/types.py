"""Promotion types, declared once. A promotion is a Cerbos resource `promotion` (attributes: tenant, store, vendor,
status, trigger = code | automatic, approval_required); its usage counts and its funding are field-guarded."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import case

from cityos.domain.base import table_of
from cityos.domain.promotions.models import (
    Promotion as PromotionModel,
)
from cityos.domain.promotions.models import (
    PromotionAction,
    PromotionFunding,
    PromotionStacking,
    PromotionStatus,
)
from cityos.domain.promotions.rules import Conditions
from cityos.domain.promotions.service import CurrencyReport
from cityos.graphql.core.nodes import Attribute, Declaration, Declared, columns, declare
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import Node, to_global_id
from cityos.graphql.core.values import Money, described_enum, money

PROMOTION_TABLE = table_of(PromotionModel)

described_enum(PromotionStatus, "Whether a promotion applies.", {
    PromotionStatus.PENDING_APPROVAL: "A vendor's promotion waiting for the store's approval (the store requires "
                                      "it): it does not apply yet.",
    PromotionStatus.ACTIVE: "Applies (within its dates and usage limits).",
    PromotionStatus.ARCHIVED: "Applies no more; its past uses stay in the reports.",
})
described_enum(PromotionAction, "What a promotion takes off.", {
    PromotionAction.ORDER_PERCENT: "A percent off the whole order (a vendor's promotion: off its lines).",
    PromotionAction.ORDER_FIXED: "A fixed amount off the whole order, split over its lines.",
    PromotionAction.LINES_PERCENT: "A percent off the lines matching its products, categories or vendors.",
    PromotionAction.LINES_FIXED: "A fixed amount off the matching lines, split over them.",
    PromotionAction.FREE_SHIPPING: "The chosen shipping option costs nothing.",
    PromotionAction.BUY_X_GET_Y: "For every buyQuantity + getQuantity matching units, getQuantity of the cheapest "
                                 "are free (or percent off).",
    PromotionAction.TIERED: "Spend thresholds: the highest tier reached takes its amount off (spend 100 → 10 off, "
                            "200 → 25 off).",
})
described_enum(PromotionStacking, "Whether a promotion combines with others.", {
    PromotionStacking.EXCLUSIVE: "Applies alone: it wins only if it saves more than the combinable ones "
                                 "together.",
    PromotionStacking.COMBINABLE: "Applies together with the other combinable promotions, by precedence.",
})
described_enum(PromotionFunding, "Who pays for a promotion's discount.", {
    PromotionFunding.PLATFORM: "The platform: the vendor's share is computed on the undiscounted amount.",
    PromotionFunding.VENDOR: "The vendor: its share shrinks by the discount (its own promotions only).",
    PromotionFunding.SPLIT: "Split: the vendor funds vendorSharePercent of it, the platform the rest.",
})


def _trigger(row: Any) -> str:
    return "automatic" if row.code is None else "code"


PROMOTION = Declaration(
    "Promotion", PROMOTION_TABLE, "promotion",
    {**columns(PROMOTION_TABLE, "tenant_id", "store_id", "vendor_id", "status"),
     "trigger": Attribute(case((PROMOTION_TABLE.c.code.is_(None), "automatic"), else_="code"), _trigger)},
    fields={"status": lambda row: PromotionStatus(row.status), "action": lambda row: PromotionAction(row.action),
            "stacking": lambda row: PromotionStacking(row.stacking)})


@strawberry.type(description="A spend threshold of a tiered promotion (in the promotion's currency).")
class PromotionTier:
    threshold: Money = strawberry.field(description="From this subtotal of its lines …")
    amount: Money = strawberry.field(description="… this much comes off.")


@strawberry.type(description="When a promotion applies; every condition given must hold.")
class PromotionConditions:
    min_subtotal: int | None = strawberry.field(description="The cart's subtotal is at least this (minor units of "
                                                            "the cart's currency).")
    product_ids: list[strawberry.ID] = strawberry.field(description="Some line is one of these products.")
    category_ids: list[strawberry.ID] = strawberry.field(description="Some line is in one of these categories.")
    vendor_ids: list[strawberry.ID] = strawberry.field(description="Some line is sold by one of these vendors.")
    customer_ids: list[str] = strawberry.field(description="The cart's customer is one of these (subjects).")
    company_ids: list[strawberry.ID] = strawberry.field(description="The cart's company is one of these.")
    first_order: bool = strawberry.field(description="The signed-in customer has no order yet.")

    @classmethod
    def of(cls, conditions: Conditions) -> PromotionConditions:
        def ids(type_name: str, values: frozenset[uuid.UUID]) -> list[strawberry.ID]:
            return [to_global_id(type_name, value) for value in sorted(values, key=str)]

        return cls(min_subtotal=conditions.min_subtotal, product_ids=ids("Product", conditions.product_ids),
                   category_ids=ids("Category", conditions.category_ids),
                   vendor_ids=ids("Vendor", conditions.vendor_ids), customer_ids=sorted(conditions.customer_ids),
                   company_ids=ids("Company", conditions.company_ids), first_order=conditions.first_order)


@strawberry.type(description="Who funds a promotion's discount.")
class PromotionFundingTerms:
    funding: PromotionFunding = strawberry.field(description="Platform, vendor, or split.")
    vendor_share_percent: Decimal = strawberry.field(description="The vendor's percent of every discount (0 for "
                                                                 "platform, 100 for vendor).")


@strawberry.type(description="How often a promotion was used.")
class PromotionUsage:
    times_used: int = strawberry.field(description="Uses counted (orders not canceled).")
    usage_limit: int | None = strawberry.field(description="Uses allowed in all; null: no limit.")
    per_customer_limit: int | None = strawberry.field(description="Uses allowed per customer; null: no limit.")


@strawberry.federation.type(keys=["id"], description="A store's promotion: a code (case-insensitive) or automatic "
                                                     "(applies when its conditions hold); its conditions, action, "
                                                     "stacking, dates and limits, and who funds it.")
@declare(PROMOTION)
class Promotion(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name (shown on the cart).")
    status: PromotionStatus = strawberry.field(description="Whether it applies.")
    action: PromotionAction = strawberry.field(description="What it takes off.")
    stacking: PromotionStacking = strawberry.field(description="Whether it combines with others.")
    priority: int = strawberry.field(description="Precedence: higher applies first.")
    starts_at: datetime | None = strawberry.field(description="It applies from then; null: from now.")
    ends_at: datetime | None = strawberry.field(description="It applies until then; null: no end.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The code shoppers enter (matched case-insensitively); null for an automatic "
                                  "promotion.")
    def code(self) -> str | None:
        return self.row.code  # type: ignore[no-any-return]

    @strawberry.field(description="Percent off (0–100) for percent actions and buy X get Y; else null.")
    def percent(self) -> Decimal | None:
        return self.row.percent  # type: ignore[no-any-return]

    @strawberry.field(description="The fixed amount off, for fixed actions; else null.")
    def amount(self) -> Money | None:
        if self.row.amount is None or self.row.currency_code is None:
            return None
        return money(self.row.amount, self.row.currency_code)

    @strawberry.field(description="The currency of its fixed and tiered amounts; null: any currency.")
    def currency_code(self) -> str | None:
        return self.row.currency_code  # type: ignore[no-any-return]

    @strawberry.field(description="Buy X get Y: units to buy.")
    def buy_quantity(self) -> int | None:
        return self.row.buy_quantity  # type: ignore[no-any-return]

    @strawberry.field(description="Buy X get Y: units that come free (or percent off).")
    def get_quantity(self) -> int | None:
        return self.row.get_quantity  # type: ignore[no-any-return]

    @strawberry.field(description="Tiered: its spend thresholds, rising.")
    def tiers(self) -> list[PromotionTier]:
        currency = self.row.currency_code or ""
        return [PromotionTier(threshold=money(int(tier["threshold"]), currency),
                              amount=money(int(tier["amount"]), currency)) for tier in self.row.tiers or ()]

    @strawberry.field(description="When it applies.")
    def conditions(self) -> PromotionConditions:
        return PromotionConditions.of(Conditions.of_json(self.row.conditions))

    @strawberry.field(description="Subscription renewals it discounts once carried by a subscription; null: all.")
    def max_cycles(self) -> int | None:
        return self.row.max_cycles  # type: ignore[no-any-return]

    @strawberry.field(description="Global id of the vendor whose promotion it is (only its products); null: the "
                                  "store's.")
    def vendor_id(self) -> strawberry.ID | None:
        return to_global_id("Vendor", self.row.vendor_id) if self.row.vendor_id else None

    @strawberry.field(description="Global id of its store.")
    def store_id(self) -> strawberry.ID:
        return to_global_id("Store", self.row.store_id)

    @guarded_field("Promotion", "usage", "Uses counted and the limits (the store's admins and the owning vendor).")
    def usage(self) -> PromotionUsage | None:
        return PromotionUsage(times_used=self.row.times_used, usage_limit=self.row.usage_limit,
                              per_customer_limit=self.row.per_customer_limit)

    @guarded_field("Promotion", "funding", "Who funds it (the store's admins and the owning vendor).")
    def funding(self) -> PromotionFundingTerms | None:
        return PromotionFundingTerms(funding=PromotionFunding(self.row.funding),
                                     vendor_share_percent=self.row.vendor_share_percent)


@strawberry.type(description="A promotion's campaign figures in one currency (orders not canceled).")
class PromotionCurrencyReport:
    currency_code: str = strawberry.field(description="ISO 4217 code, lower case.")
    uses: int = strawberry.field(description="Orders that used it.")
    discount: Money = strawberry.field(description="Taken off their lines.")
    shipping_discount: Money = strawberry.field(description="Shipping waived (free shipping: not charged at all, "
                                                            "vendors' own options included).")
    revenue: Money = strawberry.field(description="What those orders came to (after the discount).")
    platform_funded: Money = strawberry.field(description="The part of the line discount the platform funded.")
    vendor_funded: Money = strawberry.field(description="The part of the line discount vendors funded.")

    @classmethod
    def of(cls, report: CurrencyReport) -> PromotionCurrencyReport:
        code = report.currency_code
        return cls(currency_code=code, uses=report.uses, discount=money(report.discount, code),
                   shipping_discount=money(report.shipping_discount, code), revenue=money(report.revenue, code),
                   platform_funded=money(report.platform_funded, code),
                   vendor_funded=money(report.vendor_funded, code))


@strawberry.type(description="A promotion's campaign report: uses, discount given, revenue, by funder.")
class PromotionReport:
    promotion: Promotion = strawberry.field(description="The promotion.")
    currencies: list[PromotionCurrencyReport] = strawberry.field(description="Its figures per currency.")


@strawberry.type(description="A store's promotion settings.")
class PromotionSettings:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store.")
    vendor_approval_required: bool = strawberry.field(description="Vendors' promotions wait for a store admin's "
                                                                  "approval before they apply.")
