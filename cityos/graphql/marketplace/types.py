"""GraphQL types of the marketplace: vendors with their Stripe Connect state, users, balances, commission rules,
the commission ledger and payouts. Amounts in a currency are `Money`; a commission rule's amounts and a vendor's
payout minimum apply in whatever currency the sale or payout is in, so they stay Int minor units. A vendor's Stripe
account id, balances and users, and commission rates, are field permissions (see policies/vendor.yaml,
policies/commission_rule.yaml)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy.engine import Row
from strawberry.scalars import JSON

from cityos.domain.base import table_of
from cityos.domain.content.models import ContentKind
from cityos.domain.marketplace import queries as marketplace_queries
from cityos.domain.marketplace.ledger import balance_statement
from cityos.domain.marketplace.models import CommissionRule as CommissionRuleModel
from cityos.domain.marketplace.models import CommissionTransaction as CommissionTransactionModel
from cityos.domain.marketplace.models import Payout as PayoutModel
from cityos.domain.marketplace.models import PayoutTransactionLink as PayoutTransactionLinkModel
from cityos.domain.marketplace.models import Vendor as VendorModel
from cityos.domain.marketplace.models import VendorUser as VendorUserModel
from cityos.graphql.content.types import Content, load_content
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Attribute, Declaration, Declared, columns, declare, declared, page_children
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import After, Before, Connection, First, Last, Node, PageRequest, to_global_id
from cityos.graphql.core.values import Money, PayoutStatus, VendorStatus, money

if TYPE_CHECKING:
    from cityos.graphql.catalog.types import Product

VENDOR_TABLE = table_of(VendorModel)
VENDOR_USER_TABLE = table_of(VendorUserModel)
RULE_TABLE = table_of(CommissionRuleModel)
ENTRY_TABLE = table_of(CommissionTransactionModel)
PAYOUT_TABLE = table_of(PayoutModel)
LINK_TABLE = table_of(PayoutTransactionLinkModel)
VENDOR = Declaration("Vendor", VENDOR_TABLE, "vendor",
                     columns(VENDOR_TABLE, "tenant_id", "store_id", "status", vendor_id="id"),
                     fields={"status": lambda row: VendorStatus(row.status)})
VENDOR_PLAN_ATTRIBUTES = VENDOR.plan_attributes
SCOPE_TYPES = {"store": "Store", "vendor": "Vendor", "category": "Category", "product": "Product"}
COMMISSION_RULE = Declaration(
    "CommissionRule", RULE_TABLE, "commission_rule",
    {**columns(RULE_TABLE, "tenant_id"),
     "vendor_id": Attribute(marketplace_queries.RULE_VENDOR_ID,
                            lambda row: row.scope_id if row.scope == "vendor" else "")},
    fields={"scope_id": lambda row: to_global_id(SCOPE_TYPES[row.scope], row.scope_id) if row.scope_id else None})
PAYOUT = Declaration("Payout", PAYOUT_TABLE, "payout", columns(PAYOUT_TABLE, "tenant_id", "vendor_id"),
                     fields={"amount": lambda row: money(row.amount, row.currency_code),
                             "status": lambda row: PayoutStatus(row.status)})


@strawberry.type(description="A vendor's money in one currency: pending (held), available, paid out.")
class VendorBalance:
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    pending: Money = strawberry.field(description="Sales still in their hold period (CITYOS_PAYOUT_HOLD_DAYS).")
    available: Money = strawberry.field(description="Ready to be paid out.")
    paid_out: Money = strawberry.field(description="Paid out so far.")


@strawberry.type(description="A person who works for a vendor, invited by email or Keycloak subject.")
class VendorUser:
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    email: str | None = strawberry.field(description="The invited email, if invited by email.")
    subject: str | None = strawberry.field(description="The Keycloak subject (user id), once known.")
    role: str = strawberry.field(description="vendor_admin | vendor_user.")
    status: str = strawberry.field(description="invited | active.")

    @classmethod
    def from_row(cls, row: Row[Any]) -> VendorUser:
        return cls(id=to_global_id("VendorUser", row.id), email=row.email, subject=row.subject, role=row.role,
                   status=row.status)


@strawberry.type(description="Where couriers collect a vendor's parcels (the Fleetbase pickup).")
class PickupAddress:
    company: str | None = strawberry.field(description="Name at the address, when given.")
    address_1: str = strawberry.field(description="Street and number.")
    address_2: str | None = strawberry.field(description="Apartment, suite, floor, when given.")
    city: str = strawberry.field(description="City or town.")
    province: str | None = strawberry.field(description="State or province code, when given.")
    postal_code: str = strawberry.field(description="Postal (ZIP) code.")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 country code, lower case.")
    phone: str | None = strawberry.field(description="Phone number for the courier, when given.")

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> PickupAddress | None:
        if not stored:
            return None
        return cls(company=stored.get("company"), address_1=str(stored.get("address_1") or ""),
                   address_2=stored.get("address_2"), city=str(stored.get("city") or ""),
                   province=stored.get("province"), postal_code=str(stored.get("postal_code") or ""),
                   country_code=str(stored.get("country_code") or ""), phone=stored.get("phone"))


@strawberry.federation.type(keys=["id"], description="A seller on a store's marketplace.")
@declare(VENDOR)
class Vendor(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    name: str = strawberry.field(description="Display name.")
    status: VendorStatus = strawberry.field(description="The vendor's standing on the marketplace.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    charges_enabled: bool = strawberry.field(description="Whether Stripe lets the vendor's connected account take "
                                                         "charges.")
    payouts_enabled: bool = strawberry.field(description="Whether Stripe lets the connected account receive payouts.")
    details_submitted: bool = strawberry.field(description="Whether the vendor finished Stripe onboarding.")
    requirements: JSON = strawberry.field(description="Stripe's outstanding requirements of the connected account "
                                                      "(account.requirements).")
    payout_minimum: int | None = strawberry.field(description="Smallest payout in minor units; null: the platform "
                                                              "default (CITYOS_PAYOUT_MINIMUM).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]
    row: strawberry.Private[Any]

    @strawberry.field(description="The vendor's products the caller may see.")
    async def products(self, info: Info, first: First = None, after: After = None,
                       last: Last = None, before: Before = None,
                       ) -> Connection[Annotated[Product, strawberry.lazy("cityos.graphql.catalog.types")]]:
        return await page_children(info, declared("Product"), "vendor_id", self.pk,
                                    PageRequest(first, after, last, before), planned=True)

    @guarded_field("Vendor", "pickup_address", "Where couriers collect the vendor's parcels "
                   "(setVendorPickupAddress); null until set (Fleetbase then collects at the store). The vendor's "
                   "people and the store's admins.")
    def pickup_address(self) -> PickupAddress | None:
        return PickupAddress.from_stored(self.row.pickup_address)

    @strawberry.field(description="Its content from Payload CMS (brand story, logo, images, SEO); null until "
                                  "edited there.")
    async def content(self, info: Info) -> Content | None:
        return await load_content(info, ContentKind.VENDOR, self.pk)

    @guarded_field("Vendor", "contact_email", "Where the platform reaches the vendor (contact data).")
    def contact_email(self) -> str | None:
        return self.row.contact_email  # type: ignore[no-any-return]

    @guarded_field("Vendor", "stripe_account_id", "The vendor's connected Stripe account.")
    def stripe_account_id(self) -> str | None:
        return self.row.stripe_account_id  # type: ignore[no-any-return]

    @guarded_field("Vendor", "balance", "Derived from the commission ledger, per currency.")
    async def balances(self, info: Info) -> list[VendorBalance] | None:
        rows = (await info.context.db.execute(balance_statement([self.pk]))).all()
        return [VendorBalance(currency_code=row.currency_code, pending=money(row.pending, row.currency_code),
                              available=money(row.available, row.currency_code),
                              paid_out=money(row.paid_out, row.currency_code)) for row in rows]

    @guarded_field("Vendor", "users", "The vendor's admins and users.")
    async def users(self, info: Info) -> list[VendorUser] | None:
        rows = await info.context.loaders.many_by_key(VENDOR_USER_TABLE, "vendor_id").load(self.pk)
        return [VendorUser.from_row(row) for row in rows]


@strawberry.federation.type(keys=["id"], description="What the platform keeps of a sale, by scope.")
@declare(COMMISSION_RULE)
class CommissionRule(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    scope: str = strawberry.field(description="tenant | store | vendor | category | product.")
    scope_id: strawberry.ID | None = strawberry.field(description="Global id of the ruled store, vendor, category or "
                                                                  "product; null for the tenant.")
    effective_from: datetime | None = strawberry.field(description="First moment the rule applies (null: always did).")
    effective_to: datetime | None = strawberry.field(description="Moment the rule stops applying (null: never).")
    row: strawberry.Private[Any]

    @guarded_field("CommissionRule", "commission_rate", "Percentage of the line (0–100).")
    def percentage(self) -> Decimal | None:
        return self.row.percentage  # type: ignore[no-any-return]

    @guarded_field("CommissionRule", "commission_rate", "Flat amount per line, minor units.")
    def flat_per_line(self) -> int | None:
        return self.row.flat_per_line  # type: ignore[no-any-return]

    @guarded_field("CommissionRule", "commission_rate", "Smallest commission per line.")
    def minimum(self) -> int | None:
        return self.row.minimum  # type: ignore[no-any-return]

    @guarded_field("CommissionRule", "commission_rate", "Largest commission per line.")
    def maximum(self) -> int | None:
        return self.row.maximum  # type: ignore[no-any-return]


@strawberry.type(description="One entry of the append-only commission ledger.")
class LedgerEntry:
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    kind: str = strawberry.field(description="sale (an order line was paid) | shipping (a vendor's own shipping of a "
                                             "paid order) | reversal (canceled or refunded) | restored (a refund "
                                             "failed after it was recorded).")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    line_amount: Money = strawberry.field(description="The order line's total, or the vendor's shipping (negative for "
                                                      "reversals).")
    commission_amount: Money = strawberry.field(description="What the platform keeps.")
    vendor_amount: Money = strawberry.field(description="The vendor's share: lineAmount − commissionAmount.")
    available_at: datetime | None = strawberry.field(description="When the vendor's share can be paid out (end of "
                                                                 "the hold period); null while the order is on "
                                                                 "account and its invoice is not paid.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    order_id: strawberry.ID = strawberry.field(description="Global id of the order the entry comes from.")
    row: strawberry.Private[Any] = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> LedgerEntry:
        return cls(id=to_global_id("LedgerEntry", row.id), kind=row.kind, currency_code=row.currency_code,
                   line_amount=money(row.line_amount, row.currency_code),
                   commission_amount=money(row.commission_amount, row.currency_code),
                   vendor_amount=money(row.vendor_amount, row.currency_code),
                   available_at=None if row.available_at.year == datetime.max.year else row.available_at,
                   created_at=row.created_at,
                   order_id=to_global_id("Order", row.order_id), row=row)

    @strawberry.field(description="A sale's promotion discount and who funded it (null for a sale without one, and "
                                  "for reversals): the commission was priced on gross − vendorFunded.")
    def promotion(self) -> LedgerPromotion | None:
        row = self.row
        if row is None or row.kind != "sale" or not getattr(row, "discount_amount", 0):
            return None
        code = row.currency_code
        return LedgerPromotion(gross=money(row.gross_amount, code), discount=money(row.discount_amount, code),
                               platform_funded=money(row.platform_discount, code),
                               vendor_funded=money(row.vendor_discount, code))


@strawberry.type(description="The promotions on a sold line: its gross before them, their discount, and who funded "
                             "it (platform + vendor = discount).")
class LedgerPromotion:
    gross: Money = strawberry.field(description="The line before promotions.")
    discount: Money = strawberry.field(description="What the promotions took off (gross − lineAmount).")
    platform_funded: Money = strawberry.field(description="The platform's part: it comes off the commission.")
    vendor_funded: Money = strawberry.field(description="The vendor's part: it comes off the vendor's share.")


@strawberry.federation.type(keys=["id"], description="Money moved to a vendor's Stripe account by one transfer.")
@declare(PAYOUT)
class Payout(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    amount: Money = strawberry.field(description="Amount transferred.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    status: PayoutStatus = strawberry.field(description="Where the transfer is.")
    stripe_transfer_id: str | None = strawberry.field(description="The Stripe transfer (tr_…), once made.")
    failure_reason: str | None = strawberry.field(description="Why the transfer failed or was reversed.")
    bank_payout_status: str | None = strawberry.field(description="paid | failed: the connected account's payout to "
                                                                  "its bank, when Stripe reported it.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @strawberry.field(description="The ledger entries this payout pays.")
    async def entries(self, info: Info) -> list[LedgerEntry]:
        links = await info.context.loaders.many_by_key(LINK_TABLE, "payout_id").load(self.row.id)
        rows = await info.context.loaders.by_key(ENTRY_TABLE).load_many([link.transaction_id for link in links])
        return [LedgerEntry.from_row(row) for row in rows if row]



