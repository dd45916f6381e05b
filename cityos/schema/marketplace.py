"""GraphQL types of the marketplace: vendors with their Stripe Connect state, users, balances, commission rules,
the commission ledger and payouts. Money fields are minor units. A vendor's Stripe account id, balances and
users, and commission rates, are field permissions (see policies/vendor.yaml, policies/commission_rule.yaml)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy.engine import Row
from strawberry.scalars import JSON

from cityos.auth.authz import ResourceRef
from cityos.domain.base import table_of
from cityos.domain.marketplace.ledger import balance_statement
from cityos.domain.marketplace.models import CommissionRule as CommissionRuleModel
from cityos.domain.marketplace.models import CommissionTransaction as CommissionTransactionModel
from cityos.domain.marketplace.models import Payout as PayoutModel
from cityos.domain.marketplace.models import PayoutTransactionLink as PayoutTransactionLinkModel
from cityos.domain.marketplace.models import Vendor as VendorModel
from cityos.domain.marketplace.models import VendorUser as VendorUserModel
from cityos.schema.permissions import guarded_field
from cityos.schema.relay import Connection, Node, PageRequest, to_global_id
from cityos.schema.tenancy import Info, page_children, register_table_node

if TYPE_CHECKING:
    from cityos.schema.catalog import Product

VENDOR_TABLE = table_of(VendorModel)
VENDOR_USER_TABLE = table_of(VendorUserModel)
RULE_TABLE = table_of(CommissionRuleModel)
ENTRY_TABLE = table_of(CommissionTransactionModel)
PAYOUT_TABLE = table_of(PayoutModel)
LINK_TABLE = table_of(PayoutTransactionLinkModel)
VENDOR_PLAN_ATTRIBUTES = {"tenant_id": VENDOR_TABLE.c.tenant_id, "store_id": VENDOR_TABLE.c.store_id,
                          "vendor_id": VENDOR_TABLE.c.id, "status": VENDOR_TABLE.c.status}


@strawberry.type(description="A vendor's money in one currency: pending (held), available, paid out.")
class VendorBalance:
    currency_code: str
    pending: int
    available: int
    paid_out: int


@strawberry.type
class VendorUser:
    id: strawberry.ID
    email: str | None
    subject: str | None
    role: str
    status: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> VendorUser:
        return cls(id=to_global_id("VendorUser", row.id), email=row.email, subject=row.subject, role=row.role,
                   status=row.status)


@strawberry.federation.type(keys=["id"], description="A seller on a store's marketplace.")
class Vendor(Node):
    id: strawberry.ID
    handle: str
    name: str
    status: str
    created_at: datetime
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements: JSON
    payout_minimum: int | None
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Vendor:
        return cls(id=to_global_id("Vendor", row.id), handle=row.handle, name=row.name, status=row.status,
                   created_at=row.created_at, charges_enabled=row.charges_enabled,
                   payouts_enabled=row.payouts_enabled, details_submitted=row.details_submitted,
                   requirements=row.requirements, payout_minimum=row.payout_minimum, pk=row.id,
                   tenant_pk=row.tenant_id, store_pk=row.store_id, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("vendor", self.pk, tenant_id=self.tenant_pk, store_id=self.store_pk,
                              vendor_id=self.pk, status=self.status)

    @strawberry.field(description="The vendor's products the caller may see.")
    async def products(self, info: Info, first: int | None = None, after: str | None = None,
                       last: int | None = None, before: str | None = None,
                       ) -> Connection[Annotated[Product, strawberry.lazy("cityos.schema.catalog")]]:
        from cityos.schema.catalog import PRODUCT_PLAN_ATTRIBUTES, PRODUCT_TABLE, Product

        return await page_children(info, PRODUCT_TABLE, "vendor_id", self.pk,
                                    PageRequest(first, after, last, before), Product.from_row,
                                    ("product", PRODUCT_PLAN_ATTRIBUTES))

    @guarded_field("Vendor", "contact_email", "Where the platform reaches the vendor (contact data).")
    def contact_email(self) -> str | None:
        return self.row.contact_email  # type: ignore[no-any-return]

    @guarded_field("Vendor", "stripe_account_id", "The vendor's connected Stripe account.")
    def stripe_account_id(self) -> str | None:
        return self.row.stripe_account_id  # type: ignore[no-any-return]

    @guarded_field("Vendor", "balance", "Derived from the commission ledger, per currency.")
    async def balances(self, info: Info) -> list[VendorBalance] | None:
        rows = (await info.context.db.execute(balance_statement([self.pk]))).all()
        return [VendorBalance(currency_code=row.currency_code, pending=row.pending, available=row.available,
                              paid_out=row.paid_out) for row in rows]

    @guarded_field("Vendor", "users", "The vendor's admins and users.")
    async def users(self, info: Info) -> list[VendorUser] | None:
        rows = await info.context.loaders.many_by_key(VENDOR_USER_TABLE, "vendor_id").load(self.pk)
        return [VendorUser.from_row(row) for row in rows]


@strawberry.federation.type(keys=["id"], description="What the platform keeps of a sale, by scope.")
class CommissionRule(Node):
    id: strawberry.ID
    scope: str
    scope_id: strawberry.ID | None
    effective_from: datetime | None
    effective_to: datetime | None
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> CommissionRule:
        scope_type = {"store": "Store", "vendor": "Vendor", "category": "Category", "product": "Product"}
        return cls(id=to_global_id("CommissionRule", row.id), scope=row.scope,
                   scope_id=to_global_id(scope_type[row.scope], row.scope_id) if row.scope_id else None,
                   effective_from=row.effective_from, effective_to=row.effective_to, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("commission_rule", self.row.id, tenant_id=self.row.tenant_id,
                              vendor_id=self.row.scope_id if self.row.scope == "vendor" else "")

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
    id: strawberry.ID
    kind: str
    currency_code: str
    line_amount: int
    commission_amount: int
    vendor_amount: int
    available_at: datetime
    created_at: datetime
    order_id: strawberry.ID

    @classmethod
    def from_row(cls, row: Row[Any]) -> LedgerEntry:
        return cls(id=to_global_id("LedgerEntry", row.id), kind=row.kind, currency_code=row.currency_code,
                   line_amount=row.line_amount, commission_amount=row.commission_amount,
                   vendor_amount=row.vendor_amount, available_at=row.available_at, created_at=row.created_at,
                   order_id=to_global_id("Order", row.order_id))


@strawberry.federation.type(keys=["id"], description="Money moved to a vendor's Stripe account by one transfer.")
class Payout(Node):
    id: strawberry.ID
    amount: int
    currency_code: str
    status: str
    stripe_transfer_id: str | None
    failure_reason: str | None
    bank_payout_status: str | None
    created_at: datetime
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Payout:
        return cls(id=to_global_id("Payout", row.id), amount=row.amount, currency_code=row.currency_code,
                   status=row.status, stripe_transfer_id=row.stripe_transfer_id, failure_reason=row.failure_reason,
                   bank_payout_status=row.bank_payout_status, created_at=row.created_at, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("payout", self.row.id, tenant_id=self.row.tenant_id, vendor_id=self.row.vendor_id)

    @strawberry.field(description="The ledger entries this payout pays.")
    async def entries(self, info: Info) -> list[LedgerEntry]:
        links = await info.context.loaders.many_by_key(LINK_TABLE, "payout_id").load(self.row.id)
        rows = await info.context.loaders.by_key(ENTRY_TABLE).load_many([link.transaction_id for link in links])
        return [LedgerEntry.from_row(row) for row in rows if row]


register_table_node("Vendor", VENDOR_TABLE, Vendor.from_row)
register_table_node("CommissionRule", RULE_TABLE, CommissionRule.from_row)
register_table_node("Payout", PAYOUT_TABLE, Payout.from_row)
