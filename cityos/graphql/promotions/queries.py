"""Promotion reads: promotions the caller may read (store admins their stores', vendors their own, shoppers the
store's active automatic ones), filtered in SQL by the Cerbos plan; a promotion's campaign report; a store's
promotion settings."""

from __future__ import annotations

import strawberry

from cityos.auth.authz import ResourceRef
from cityos.domain.promotions import queries as listing
from cityos.domain.promotions import service
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
from cityos.graphql.promotions.arguments import (
    PromotionIdArg,
    PromotionStatusArg,
    PromotionStoreArg,
    PromotionVendorArg,
    StoreIdArg,
)
from cityos.graphql.promotions.types import (
    PROMOTION,
    PROMOTION_TABLE,
    Promotion,
    PromotionCurrencyReport,
    PromotionReport,
    PromotionSettings,
)


async def settings_resource(info: Info, store_id: strawberry.ID) -> ResourceRef:
    """The store's promotion settings as a Cerbos resource (NOT_FOUND for another tenant's store)."""
    store = await node_by_global_id(info, store_id, "Store")
    return ResourceRef.of("promotion_settings", str(store.pk), tenant_id=store.row.tenant_id,
                          store_id=store.pk)


@strawberry.type
class PromotionsQuery:
    @strawberry.field(description="Promotions the caller may read, newest first: store admins their stores', "
                                  "vendors their own, shoppers the store's active automatic promotions.")
    async def promotions(self, info: Info, store_id: PromotionStoreArg = None, status: PromotionStatusArg = None,
                         vendor_id: PromotionVendorArg = None, first: First = None, after: After = None,
                         last: Last = None, before: Before = None) -> Connection[Promotion]:
        allowed = await info.context.authz.sql_filter("promotion", "read", PROMOTION_TABLE,
                                                      PROMOTION.plan_attributes)
        found = listing.promotions(
            allowed, *in_tenant(info.context.db, PROMOTION_TABLE),
            store_id=from_global_id(store_id, "Store")[1] if store_id is not None else None,
            status=status.value if status is not None else None,
            vendor_id=from_global_id(vendor_id, "Vendor")[1] if vendor_id is not None else None)
        return await page_query(info.context.db.execute, found.statement, PageRequest(first, after, last, before),
                                Promotion.from_row, found.order, count=wants_total(info))

    @strawberry.field(description="A promotion's campaign report: uses, discount given, revenue and who funded it, "
                                  "per currency (the store's admins and the owning vendor).")
    async def promotion_report(self, info: Info, id: PromotionIdArg) -> PromotionReport:
        promotion: Promotion = await node_by_global_id(info, id, "Promotion", "report")
        figures = await info.context.db.run(lambda connection: service.report(connection, promotion.pk))
        return PromotionReport(promotion=promotion, currencies=[PromotionCurrencyReport.of(item) for item in figures])

    @strawberry.field(description="A store's promotion settings (its admins).")
    async def promotion_settings(self, info: Info, store_id: StoreIdArg) -> PromotionSettings:
        resource = await settings_resource(info, store_id)
        await info.context.authz.require(resource, "read")
        store = from_global_id(store_id, "Store")[1]
        required = await info.context.db.run(lambda connection: service.vendor_approval_required(connection, store))
        return PromotionSettings(store_id=store_id, vendor_approval_required=required)
