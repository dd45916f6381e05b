"""Marketplace mutations: vendors and their users, commission rules, Stripe Connect onboarding."""


from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.fulfillment import vendor_orders
from cityos.domain.marketplace import service
from cityos.domain.platform.service import audit
from cityos.errors import BadUserInput
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import (
    from_global_id,
    to_global_id,
)
from cityos.graphql.marketplace.arguments import (
    CommissionRuleInput,
    CreateVendor,
    InviteEmail,
    InviteSubject,
    OAuthCode,
    OAuthState,
    OnboardingLink,
    PickupAddressArg,
    RuleIdArg,
    RuleValues,
    VendorChanges,
    VendorIdArg,
    VendorRole,
    VendorUserIdArg,
)
from cityos.graphql.marketplace.queries import CONNECT_PATH, SCOPE_TYPES, vendor_for
from cityos.graphql.marketplace.types import (
    VENDOR_USER_TABLE,
    CommissionRule,
    Vendor,
    VendorUser,
)
from cityos.graphql.tenancy.types import Store
from cityos.integrations.stripe import client as stripe_api
from cityos.integrations.stripe.connect_state import sign_state, verify_state


def _rule_values(input: CommissionRuleInput) -> dict[str, Any]:
    scope_id = None
    if input.scope_id is not None:
        if input.scope not in SCOPE_TYPES:
            raise BadUserInput("a tenant rule has no scopeId", field="scopeId")
        scope_id = from_global_id(input.scope_id, SCOPE_TYPES[input.scope])[1]
    return service.rule_values(input.scope, scope_id, input.percentage, input.flat_per_line, input.minimum,
                               input.maximum, input.effective_from, input.effective_to)



def _admin_url(info: Info, page: str) -> str:
    return f"{info.context.settings.CITYOS_ADMIN_URL.rstrip('/')}{CONNECT_PATH}/{page}"



@strawberry.type
class MarketplaceMutation:
    @strawberry.mutation(description="Create a vendor on a store's marketplace.")
    async def create_vendor(self, info: Info, input: CreateVendor) -> Vendor:
        tenant_id = tenant_of(info)
        store: Store = await node_by_global_id(info, input.store_id, "Store")
        await info.context.authz.require(ResourceRef.of("vendor", "new", tenant_id=tenant_id, store_id=store.pk,
                                                        vendor_id="", status="pending"), "create")
        row = await info.context.db.mutate(lambda connection: service.create_vendor(
            connection, tenant_id=tenant_id, store_id=store.pk, handle=input.handle, name=input.name,
            contact_email=input.contact_email, payout_minimum=input.payout_minimum))
        return Vendor.from_row(row)

    @strawberry.mutation(description="Update a vendor; changing its status needs `set_status` (admins).")
    async def update_vendor(self, info: Info, id: VendorIdArg, input: VendorChanges) -> Vendor:
        tenant_of(info)
        vendor = await vendor_for(info, id, "update")
        if input.status is not None:
            await info.context.authz.require(vendor.resource(), "set_status")
        row = await info.context.db.mutate(lambda connection: service.update_vendor(
            connection, vendor.pk, name=input.name, status=input.status, contact_email=input.contact_email,
            payout_minimum=input.payout_minimum))
        return Vendor.from_row(row)

    @strawberry.mutation(description="Set where couriers collect the vendor's parcels (the Fleetbase pickup of its "
                                     "vendor orders); vendor admins and the store's admins.")
    async def set_vendor_pickup_address(self, info: Info, vendor_id: VendorIdArg,
                                        address: PickupAddressArg) -> Vendor:
        tenant_of(info)
        vendor = await vendor_for(info, vendor_id, "update")

        async def work(connection: AsyncConnection) -> Any:
            row = await vendor_orders.set_pickup_address(connection, vendor.pk, dict(address.__dict__))
            await audit(connection, tenant_id=info.context.principal.tenant_id, actor=info.context.principal.id,
                        action="set_vendor_pickup_address", target_kind="vendor", target_id=row.id)
            return row

        return Vendor.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Invite a vendor admin or user by email or Keycloak subject.")
    async def invite_vendor_user(self, info: Info, vendor_id: VendorIdArg, role: VendorRole, email: InviteEmail = None,
                                 subject: InviteSubject = None) -> VendorUser:
        tenant_of(info)
        vendor = await vendor_for(info, vendor_id, "manage_users")
        row = await info.context.db.mutate(lambda connection: service.invite_vendor_user(
            connection, vendor=vendor, email=email, subject=subject, role=role))
        return VendorUser.from_row(row)

    @strawberry.mutation(description="Remove a vendor user; returns the removed user's id.")
    async def remove_vendor_user(self, info: Info, vendor_id: VendorIdArg, id: VendorUserIdArg) -> strawberry.ID:
        tenant_of(info)
        vendor = await vendor_for(info, vendor_id, "manage_users")
        _, user_id = from_global_id(id, "VendorUser")
        rows = await info.context.loaders.many_by_key(VENDOR_USER_TABLE, "vendor_id").load(vendor.pk)
        if user_id not in {row.id for row in rows}:
            raise BadUserInput("no such user of this vendor", field="id")
        await info.context.db.mutate(lambda connection: service.remove_vendor_user(connection, user_id))
        return id

    @strawberry.mutation(description="Create a commission rule.")
    async def create_commission_rule(self, info: Info, input: RuleValues) -> CommissionRule:
        tenant_id = tenant_of(info)
        values = _rule_values(input)
        vendor = values["scope_id"] if values["scope"] == "vendor" else ""
        await info.context.authz.require(ResourceRef.of("commission_rule", "new", tenant_id=tenant_id,
                                                        vendor_id=vendor), "create")
        row = await info.context.db.mutate(lambda connection: service.create_commission_rule(
            connection, tenant_id=tenant_id, values=values))
        return CommissionRule.from_row(row)

    @strawberry.mutation(description="Replace a commission rule's values.")
    async def update_commission_rule(self, info: Info, id: RuleIdArg,
                                     input: RuleValues) -> CommissionRule:
        tenant_of(info)
        rule: CommissionRule = await node_by_global_id(info, id, "CommissionRule", "update")
        values = _rule_values(input)
        row = await info.context.db.mutate(lambda connection: service.update_commission_rule(
            connection, rule.row.id, values))
        return CommissionRule.from_row(row)

    @strawberry.mutation(description="Delete a commission rule; returns its id.")
    async def delete_commission_rule(self, info: Info, id: RuleIdArg) -> strawberry.ID:
        tenant_of(info)
        rule: CommissionRule = await node_by_global_id(info, id, "CommissionRule", "delete")
        await info.context.db.mutate(lambda connection: service.delete_commission_rule(connection, rule.row.id))
        return id

    @strawberry.mutation(description="Create the vendor's Express account (once) and an onboarding link.")
    async def start_vendor_onboarding(self, info: Info, vendor_id: VendorIdArg) -> OnboardingLink:
        tenant_of(info)
        vendor = await vendor_for(info, vendor_id, "onboard")
        account = vendor.row.stripe_account_id
        if account is None:
            account = await stripe_api.create_express_account(
                info.context.services.stripe, email=vendor.row.contact_email, vendor_id=str(vendor.pk),
                idempotency_key=f"vendor-{vendor.pk}-express-account")
            await info.context.db.mutate(lambda connection: service.set_stripe_account(
                connection, vendor.pk, account, "express"))
        url = await stripe_api.create_onboarding_link(
            info.context.services.stripe, account=account, refresh_url=_admin_url(info, "refresh"),
            return_url=_admin_url(info, "return"))
        return OnboardingLink(url=url, stripe_account_id=account)

    @strawberry.mutation(description="A fresh onboarding link (the previous one expired or was used).")
    async def refresh_vendor_onboarding(self, info: Info, vendor_id: VendorIdArg) -> OnboardingLink:
        tenant_of(info)
        vendor = await vendor_for(info, vendor_id, "onboard")
        if vendor.row.stripe_account_id is None or vendor.row.stripe_account_type != "express":
            raise BadUserInput("start the onboarding first", field="vendorId")
        url = await stripe_api.create_onboarding_link(
            info.context.services.stripe, account=vendor.row.stripe_account_id,
            refresh_url=_admin_url(info, "refresh"), return_url=_admin_url(info, "return"))
        return OnboardingLink(url=url, stripe_account_id=vendor.row.stripe_account_id)

    @strawberry.mutation(description="The Stripe Connect OAuth URL for connecting an existing Standard account. "
                                     "Its state is signed, expires in 10 minutes and binds the vendor and caller.")
    async def stripe_connect_authorize_url(self, info: Info, vendor_id: VendorIdArg) -> str:
        tenant_of(info)
        vendor = await vendor_for(info, vendor_id, "onboard")
        if not info.context.settings.STRIPE_CONNECT_CLIENT_ID:
            raise BadUserInput("Stripe Connect OAuth is not configured (STRIPE_CONNECT_CLIENT_ID)", field="vendorId")
        state = sign_state(info.context.settings.JWT_SECRET, vendor.pk, info.context.principal.id)
        return stripe_api.authorize_url(info.context.services.stripe, state=state,
                                        redirect_uri=_admin_url(info, "callback"))

    @strawberry.mutation(description="Finish the OAuth connection: exchange the code, store the account id.")
    async def complete_stripe_connect(self, info: Info, code: OAuthCode, state: OAuthState) -> Vendor:
        tenant_of(info)
        checked = verify_state(info.context.settings.JWT_SECRET, state, info.context.principal.id)
        vendor = await vendor_for(info, to_global_id("Vendor", checked.vendor_id), "onboard")

        async def redeem(connection: AsyncConnection) -> None:
            await service.redeem_state(connection, checked.nonce)

        await info.context.db.mutate(redeem)
        account = await stripe_api.exchange_oauth_code(info.context.services.stripe, code)
        row = await info.context.db.mutate(lambda connection: service.set_stripe_account(
            connection, vendor.pk, account, "standard"))
        return Vendor.from_row(row)


