"""Marketplace queries: vendors, commission rules, the ledger and payouts (field-guarded balances)."""


from __future__ import annotations

import strawberry

from cityos.domain.marketplace import queries as marketplace
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    from_global_id,
    page_query,
    wants_total,
)
from cityos.graphql.marketplace.arguments import ScopeStoreId, VendorIdArg
from cityos.graphql.marketplace.types import (
    COMMISSION_RULE,
    RULE_TABLE,
    VENDOR_PLAN_ATTRIBUTES,
    VENDOR_TABLE,
    CommissionRule,
    LedgerEntry,
    Payout,
    Vendor,
)

RULE_PLAN_ATTRIBUTES = COMMISSION_RULE.plan_attributes
SCOPE_TYPES = {"store": "Store", "vendor": "Vendor", "category": "Category", "product": "Product"}
CONNECT_PATH = "/settings/integrations/stripe"



async def vendor_for(info: Info, vendor_id: strawberry.ID, action: str) -> Vendor:
    vendor: Vendor = await node_by_global_id(info, vendor_id, "Vendor", action)
    return vendor



@strawberry.type
class MarketplaceQuery:
    @strawberry.field(description="Vendors the caller may read (SQL-filtered by policy).")
    async def vendors(self, info: Info, store_id: ScopeStoreId = None, first: First = None,
                      after: After = None, last: Last = None,
                      before: Before = None) -> Connection[Vendor]:
        allowed = await info.context.authz.sql_filter("vendor", "read", VENDOR_TABLE, VENDOR_PLAN_ATTRIBUTES)
        store = from_global_id(store_id, "Store")[1] if store_id is not None else None
        listing = marketplace.vendors(allowed, *in_tenant(info.context.db, VENDOR_TABLE), store_id=store)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                Vendor.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Commission rules the caller may read: a tenant's admins all of them, a vendor's "
                                  "admin the rules of its vendor.")
    async def commission_rules(self, info: Info, first: First = None, after: After = None,
                               last: Last = None, before: Before = None) -> Connection[CommissionRule]:
        allowed = await info.context.authz.sql_filter("commission_rule", "read", RULE_TABLE, RULE_PLAN_ATTRIBUTES)
        listing = marketplace.commission_rules(allowed)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                CommissionRule.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="A vendor's commission ledger, newest first (needs read:field:balance).")
    async def ledger_entries(self, info: Info, vendor_id: VendorIdArg, first: First = None,
                             after: After = None) -> Connection[LedgerEntry]:
        vendor = await vendor_for(info, vendor_id, "read:field:balance")
        listing = marketplace.ledger_entries(vendor.pk)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                LedgerEntry.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="A vendor's payouts, newest first (needs read:field:balance).")
    async def payouts(self, info: Info, vendor_id: VendorIdArg, first: First = None,
                      after: After = None) -> Connection[Payout]:
        vendor = await vendor_for(info, vendor_id, "read:field:balance")
        listing = marketplace.payouts(vendor.pk)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                Payout.from_row, listing.order, count=wants_total(info))


