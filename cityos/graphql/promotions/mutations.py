"""Promotion mutations: create, change, approve and archive promotions (Cerbos decides who; a store that requires
approval keeps vendors' promotions pending — the `activate` action), the store's setting, and a subscription
carrying a promotion into its renewals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.promotions import rules, service
from cityos.domain.promotions.models import PromotionStatus
from cityos.errors import BadUserInput, NotFound
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import declared, node_by_global_id
from cityos.graphql.core.relay import from_global_id
from cityos.graphql.promotions.arguments import (
    ApprovalRequired,
    CodeArg,
    CreatePromotion,
    PromotionChanges,
    PromotionConditionsInput,
    PromotionIdArg,
    PromotionTierInput,
    StoreIdArg,
    SubscriptionIdArg,
)
from cityos.graphql.promotions.queries import settings_resource
from cityos.graphql.promotions.types import PROMOTION_TABLE, Promotion, PromotionSettings


def _ids(values: list[strawberry.ID] | None, type_name: str, field: str) -> frozenset[uuid.UUID]:
    try:
        return frozenset(from_global_id(value, type_name)[1] for value in values or ())
    except BadUserInput as error:
        raise BadUserInput(error.message, field=field) from None


def _conditions(given: PromotionConditionsInput | None) -> rules.Conditions:
    if given is None:
        return rules.Conditions()
    return rules.Conditions(
        min_subtotal=given.min_subtotal, product_ids=_ids(given.product_ids, "Product", "productIds"),
        category_ids=_ids(given.category_ids, "Category", "categoryIds"),
        vendor_ids=_ids(given.vendor_ids, "Vendor", "vendorIds"),
        customer_ids=frozenset(value.strip() for value in given.customer_ids or () if value.strip()),
        company_ids=_ids(given.company_ids, "Company", "companyIds"), first_order=given.first_order)


def _tiers(tiers: list[PromotionTierInput] | None) -> tuple[rules.Tier, ...]:
    return tuple(rules.Tier(tier.threshold, tier.amount) for tier in tiers or ())


async def _approval_required(info: Info, store_id: uuid.UUID) -> bool:
    return await info.context.db.run(lambda connection: service.vendor_approval_required(connection, store_id))


def _resource(tenant_id: uuid.UUID, store_id: uuid.UUID, vendor_id: uuid.UUID | None, status: str, code: str | None,
              approval_required: bool, id: str = "new") -> ResourceRef:
    return ResourceRef.of("promotion", id, tenant_id=tenant_id, store_id=store_id, vendor_id=vendor_id,
                          status=status, trigger="automatic" if code is None else "code",
                          approval_required="true" if approval_required else "false")


async def _promotion(info: Info, id: strawberry.ID, action: str) -> tuple[Promotion, ResourceRef]:
    """The promotion, if the caller may `action` it; its resource carries the store's approval setting."""
    tenant_of(info)
    promotion: Promotion = await node_by_global_id(info, id, "Promotion")
    row = promotion.row
    resource = _resource(row.tenant_id, row.store_id, row.vendor_id, row.status, row.code,
                         await _approval_required(info, row.store_id), str(row.id))
    await info.context.authz.require(resource, action)
    return promotion, resource


@strawberry.type
class PromotionsMutation:
    @strawberry.mutation(description="Create a promotion: a code or automatic, its conditions, action, stacking, "
                                     "dates, limits and funding. BAD_USER_INPUT for what cannot work (a percent "
                                     "outside 0–100, …); FORBIDDEN when a vendor's promotion reaches another "
                                     "vendor's products; CONFLICT for a code the store already has.")
    async def create_promotion(self, info: Info, input: CreatePromotion) -> Promotion:
        tenant_id = tenant_of(info)
        store: Any = await node_by_global_id(info, input.store_id, "Store")
        vendor_id = None
        if input.vendor_id is not None:
            vendor: Any = await node_by_global_id(info, input.vendor_id, "Vendor")
            if vendor.row.store_id != store.pk:
                raise NotFound("no Vendor with that id in this store", field="vendorId")
            vendor_id = vendor.row.id
        approval = await _approval_required(info, store.pk)
        resource = _resource(tenant_id, store.pk, vendor_id, PromotionStatus.ACTIVE.value, input.code, approval)
        await info.context.authz.require(resource, "create")
        active = await info.context.authz.allowed(resource, "activate")
        spec = service.Spec(
            name=input.name, action=input.action, code=input.code, vendor_id=vendor_id, percent=input.percent,
            amount=input.amount, currency_code=input.currency_code, buy_quantity=input.buy_quantity,
            get_quantity=input.get_quantity, tiers=_tiers(input.tiers), conditions=_conditions(input.conditions),
            stacking=input.stacking, priority=input.priority, starts_at=input.starts_at, ends_at=input.ends_at,
            usage_limit=input.usage_limit, per_customer_limit=input.per_customer_limit, funding=input.funding,
            vendor_share_percent=input.vendor_share_percent, max_cycles=input.max_cycles)

        async def work(connection: AsyncConnection) -> Any:
            return await service.create_promotion(connection, tenant_id=tenant_id, store_id=store.pk, spec=spec,
                                                  active=active)

        return Promotion.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Change a promotion (not an archived one). A vendor's change waits for approval "
                                     "again where the store requires it.")
    async def update_promotion(self, info: Info, id: PromotionIdArg, input: PromotionChanges) -> Promotion:
        promotion, resource = await _promotion(info, id, "update")
        changes: dict[str, Any] = {name: value for name, value in (
            ("name", input.name), ("code", input.code), ("percent", input.percent), ("amount", input.amount),
            ("stacking", input.stacking), ("priority", input.priority), ("starts_at", input.starts_at),
            ("ends_at", input.ends_at), ("usage_limit", input.usage_limit),
            ("per_customer_limit", input.per_customer_limit), ("max_cycles", input.max_cycles)) if value is not None}
        if input.tiers is not None:
            changes["tiers"] = _tiers(input.tiers)
        if input.conditions is not None:
            changes["conditions"] = _conditions(input.conditions)
        active = None if await info.context.authz.allowed(resource, "activate") else False
        row = promotion.row
        updated = await info.context.db.mutate(
            lambda connection: service.update_promotion(connection, row, changes, active))
        info.context.loaders.by_key(PROMOTION_TABLE).clear(promotion.pk)
        return Promotion.from_row(updated)

    @strawberry.mutation(description="Approve a vendor's pending promotion: it applies from now (store admins).")
    async def approve_promotion(self, info: Info, id: PromotionIdArg) -> Promotion:
        promotion, _ = await _promotion(info, id, "approve")
        row, by = promotion.row, info.context.principal.id
        return Promotion.from_row(await info.context.db.mutate(
            lambda connection: service.set_status(connection, row, PromotionStatus.ACTIVE, approved_by=by)))

    @strawberry.mutation(description="Archive a promotion: it applies no more; its past uses stay in the reports.")
    async def archive_promotion(self, info: Info, id: PromotionIdArg) -> Promotion:
        promotion, _ = await _promotion(info, id, "archive")
        row = promotion.row
        return Promotion.from_row(await info.context.db.mutate(
            lambda connection: service.set_status(connection, row, PromotionStatus.ARCHIVED)))

    @strawberry.mutation(description="Delete a promotion that was never used (CONFLICT for a used one: archive it). "
                                     "Returns its id.")
    async def delete_promotion(self, info: Info, id: PromotionIdArg) -> strawberry.ID:
        promotion, _ = await _promotion(info, id, "delete")
        row = promotion.row
        await info.context.db.mutate(lambda connection: service.delete_promotion(connection, row))
        info.context.loaders.by_key(PROMOTION_TABLE).clear(promotion.pk)
        return id

    @strawberry.mutation(description="Whether vendors' promotions in the store wait for a store admin's approval.")
    async def set_promotion_settings(self, info: Info, store_id: StoreIdArg,
                                     vendor_approval_required: ApprovalRequired) -> PromotionSettings:
        tenant_id = tenant_of(info)
        resource = await settings_resource(info, store_id)
        await info.context.authz.require(resource, "update")
        store = from_global_id(store_id, "Store")[1]
        required = await info.context.db.mutate(lambda connection: service.set_vendor_approval(
            connection, tenant_id, store, vendor_approval_required))
        return PromotionSettings(store_id=store_id, vendor_approval_required=required)

    @strawberry.mutation(description="The customer's subscription carries a promotion code into its renewals, for "
                                     "the promotion's maxCycles renewals (NOT_FOUND, PROMOTION_EXPIRED, "
                                     "PROMOTION_EXHAUSTED like a cart's code). Returns the promotion.")
    async def apply_subscription_promotion(self, info: Info, subscription_id: SubscriptionIdArg,
                                           code: CodeArg) -> Promotion:
        subscription: Any = await node_by_global_id(info, subscription_id, "CustomerSubscription",
                                                    "apply_promotion")
        row, now = subscription.row, datetime.now(UTC)
        promotion = await info.context.db.mutate(
            lambda connection: service.attach_to_subscription(connection, row, code, now))
        node: Promotion = declared("Promotion").to_node(promotion)
        return node
