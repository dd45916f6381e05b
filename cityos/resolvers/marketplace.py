"""Marketplace queries and mutations: vendors and their users, commission rules, ledger and payouts, Stripe
Connect onboarding (Express account links, Standard OAuth)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from sqlalchemy import Text, case, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.marketplace import service
from cityos.errors import BadUserInput
from cityos.integrations.stripe import client as stripe_api
from cityos.integrations.stripe.connect_state import sign_state, verify_state
from cityos.resolvers.loaders import in_tenant
from cityos.resolvers.tenancy_admin import tenant_of
from cityos.schema.marketplace import (
    ENTRY_TABLE,
    PAYOUT_TABLE,
    RULE_TABLE,
    VENDOR_PLAN_ATTRIBUTES,
    VENDOR_TABLE,
    VENDOR_USER_TABLE,
    CommissionRule,
    LedgerEntry,
    Payout,
    Vendor,
    VendorUser,
)
from cityos.schema.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    SortKey,
    from_global_id,
    page_query,
    to_global_id,
)
from cityos.schema.tenancy import Info, Store, node_by_global_id
from cityos.schema.values import VendorStatus

RULE_PLAN_ATTRIBUTES = {"tenant_id": RULE_TABLE.c.tenant_id,
                        "vendor_id": case((RULE_TABLE.c.scope == "vendor", cast(RULE_TABLE.c.scope_id, Text)),
                                          else_="")}
SCOPE_TYPES = {"store": "Store", "vendor": "Vendor", "category": "Category", "product": "Product"}
CONNECT_PATH = "/settings/integrations/stripe"


@strawberry.input(description="A new vendor (seller) on a store's marketplace.")
class CreateVendorInput:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store whose marketplace the vendor sells "
                                                           "on.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    name: str = strawberry.field(description="Display name.")
    contact_email: str | None = strawberry.field(default=None, description="Where the platform reaches the vendor.")
    payout_minimum: int | None = strawberry.field(default=None, description="Smallest payout in minor units (default: "
                                                                            "CITYOS_PAYOUT_MINIMUM).")


@strawberry.input(description="Changes to a vendor; omitted fields stay as they are.")
class UpdateVendorInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    status: VendorStatus | None = strawberry.field(default=None, description="New standing (admins).")
    contact_email: str | None = strawberry.field(default=None, description="New contact email.")
    payout_minimum: int | None = strawberry.field(default=None, description="New smallest payout in minor units "
                                                                            "(null: the platform default).")


@strawberry.input(description="What the platform keeps of a sale at one scope: a percentage, a flat amount per line "
                              "or both, optionally bounded; the most specific matching rule wins.")
class CommissionRuleInput:
    scope: str = strawberry.field(description="tenant | store | vendor | category | product")
    scope_id: strawberry.ID | None = strawberry.field(default=None, description="Global id of the store, vendor, "
                                                                                "category or product the rule applies "
                                                                                "to; null for the tenant scope.")
    percentage: Decimal | None = strawberry.field(default=None, description="Percentage of the line total the "
                                                                            "platform keeps (0–100).")
    flat_per_line: int | None = strawberry.field(default=None, description="Flat amount per order line, in minor "
                                                                           "units of the line's currency.")
    minimum: int | None = strawberry.field(default=None, description="Smallest commission per line, in minor units.")
    maximum: int | None = strawberry.field(default=None, description="Largest commission per line, in minor units.")
    effective_from: datetime | None = strawberry.field(default=None, description="First moment the rule applies "
                                                                                 "(null: always did).")
    effective_to: datetime | None = strawberry.field(default=None, description="Moment the rule stops applying (null: "
                                                                               "never).")


@strawberry.type(description="A single-use Stripe-hosted page where a vendor completes its Express account.")
class OnboardingLink:
    url: str = strawberry.field(description="The Stripe onboarding page; open it once, before it expires.")
    stripe_account_id: str = strawberry.field(description="The vendor's connected Stripe account (acct_…).")


def _rule_values(input: CommissionRuleInput) -> dict[str, Any]:
    scope_id = None
    if input.scope_id is not None:
        if input.scope not in SCOPE_TYPES:
            raise BadUserInput("a tenant rule has no scopeId", field="scopeId")
        scope_id = from_global_id(input.scope_id, SCOPE_TYPES[input.scope])[1]
    return service.rule_values(input.scope, scope_id, input.percentage, input.flat_per_line, input.minimum,
                               input.maximum, input.effective_from, input.effective_to)


async def _vendor(info: Info, vendor_id: strawberry.ID, action: str) -> Vendor:
    vendor: Vendor = await node_by_global_id(info, vendor_id, "Vendor", action)
    return vendor


def _admin_url(info: Info, page: str) -> str:
    return f"{info.context.settings.CITYOS_ADMIN_URL.rstrip('/')}{CONNECT_PATH}/{page}"


CreateVendor = Annotated[CreateVendorInput, strawberry.argument(description="The vendor to create.")]
VendorIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the vendor.")]
VendorChanges = Annotated[UpdateVendorInput, strawberry.argument(description="The changes.")]
VendorRole = Annotated[str, strawberry.argument(description="vendor_admin or vendor_user.")]
InviteEmail = Annotated[str | None, strawberry.argument(description="Email of the invited person (this or subject).")]
InviteSubject = Annotated[str | None, strawberry.argument(description="Keycloak subject (user id) of the invited "
                                                                      "person (this or email).")]
VendorUserIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the vendor user.")]
RuleValues = Annotated[CommissionRuleInput, strawberry.argument(description="The rule's scope and values.")]
RuleIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the commission rule.")]
OAuthCode = Annotated[str, strawberry.argument(description="The `code` Stripe passed to the OAuth callback.")]
OAuthState = Annotated[str, strawberry.argument(description="The `state` Stripe passed back: signed, bound to the "
                                                            "vendor and the caller, single use.")]
ScopeStoreId = Annotated[strawberry.ID | None, strawberry.argument(description="Global id of a store; defaults to the "
                                                                               "storefront's store (publishable key "
                                                                               "or domain).")]


@strawberry.type
class MarketplaceQuery:
    @strawberry.field(description="Vendors the caller may read (SQL-filtered by policy).")
    async def vendors(self, info: Info, store_id: ScopeStoreId = None, first: First = None,
                      after: After = None, last: Last = None,
                      before: Before = None) -> Connection[Vendor]:
        allowed = await info.context.authz.sql_filter("vendor", "read", VENDOR_TABLE, VENDOR_PLAN_ATTRIBUTES)
        statement = select(VENDOR_TABLE).where(allowed, *in_tenant(info.context.db, VENDOR_TABLE))
        if store_id is not None:
            statement = statement.where(VENDOR_TABLE.c.store_id == from_global_id(store_id, "Store")[1])
        return await page_query(info.context.db.execute, statement, PageRequest(first, after, last, before),
                                Vendor.from_row)

    @strawberry.field(description="Commission rules the caller may read: a tenant's admins all of them, a vendor's "
                                  "admin the rules of its vendor.")
    async def commission_rules(self, info: Info, first: First = None, after: After = None,
                               last: Last = None, before: Before = None) -> Connection[CommissionRule]:
        allowed = await info.context.authz.sql_filter("commission_rule", "read", RULE_TABLE, RULE_PLAN_ATTRIBUTES)
        return await page_query(info.context.db.execute, select(RULE_TABLE).where(allowed),
                                PageRequest(first, after, last, before), CommissionRule.from_row)

    @strawberry.field(description="A vendor's commission ledger, newest first (needs read:field:balance).")
    async def ledger_entries(self, info: Info, vendor_id: VendorIdArg, first: First = None,
                             after: After = None) -> Connection[LedgerEntry]:
        vendor = await _vendor(info, vendor_id, "read:field:balance")
        order = [SortKey(ENTRY_TABLE.c.created_at, True), SortKey(ENTRY_TABLE.c.id, True)]
        entries = select(ENTRY_TABLE).where(ENTRY_TABLE.c.vendor_id == vendor.pk)
        return await page_query(info.context.db.execute, entries, PageRequest(first, after), LedgerEntry.from_row,
                                order)

    @strawberry.field(description="A vendor's payouts, newest first (needs read:field:balance).")
    async def payouts(self, info: Info, vendor_id: VendorIdArg, first: First = None,
                      after: After = None) -> Connection[Payout]:
        vendor = await _vendor(info, vendor_id, "read:field:balance")
        order = [SortKey(PAYOUT_TABLE.c.created_at, True), SortKey(PAYOUT_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, select(PAYOUT_TABLE).where(
            PAYOUT_TABLE.c.vendor_id == vendor.pk), PageRequest(first, after), Payout.from_row, order)


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
        vendor = await _vendor(info, id, "update")
        if input.status is not None:
            await info.context.authz.require(vendor.resource(), "set_status")
        row = await info.context.db.mutate(lambda connection: service.update_vendor(
            connection, vendor.pk, name=input.name, status=input.status, contact_email=input.contact_email,
            payout_minimum=input.payout_minimum))
        return Vendor.from_row(row)

    @strawberry.mutation(description="Invite a vendor admin or user by email or Keycloak subject.")
    async def invite_vendor_user(self, info: Info, vendor_id: VendorIdArg, role: VendorRole, email: InviteEmail = None,
                                 subject: InviteSubject = None) -> VendorUser:
        tenant_of(info)
        vendor = await _vendor(info, vendor_id, "manage_users")
        row = await info.context.db.mutate(lambda connection: service.invite_vendor_user(
            connection, vendor=vendor, email=email, subject=subject, role=role))
        return VendorUser.from_row(row)

    @strawberry.mutation(description="Remove a vendor user; returns the removed user's id.")
    async def remove_vendor_user(self, info: Info, vendor_id: VendorIdArg, id: VendorUserIdArg) -> strawberry.ID:
        tenant_of(info)
        vendor = await _vendor(info, vendor_id, "manage_users")
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
        vendor = await _vendor(info, vendor_id, "onboard")
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
        vendor = await _vendor(info, vendor_id, "onboard")
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
        vendor = await _vendor(info, vendor_id, "onboard")
        if not info.context.settings.STRIPE_CONNECT_CLIENT_ID:
            raise BadUserInput("Stripe Connect OAuth is not configured (STRIPE_CONNECT_CLIENT_ID)", field="vendorId")
        state = sign_state(info.context.settings.JWT_SECRET, vendor.pk, info.context.principal.id)
        return stripe_api.authorize_url(info.context.services.stripe, state=state,
                                        redirect_uri=_admin_url(info, "callback"))

    @strawberry.mutation(description="Finish the OAuth connection: exchange the code, store the account id.")
    async def complete_stripe_connect(self, info: Info, code: OAuthCode, state: OAuthState) -> Vendor:
        tenant_of(info)
        checked = verify_state(info.context.settings.JWT_SECRET, state, info.context.principal.id)
        vendor = await _vendor(info, to_global_id("Vendor", checked.vendor_id), "onboard")

        async def redeem(connection: AsyncConnection) -> None:
            await service.redeem_state(connection, checked.nonce)

        await info.context.db.mutate(redeem)
        account = await stripe_api.exchange_oauth_code(info.context.services.stripe, code)
        row = await info.context.db.mutate(lambda connection: service.set_stripe_account(
            connection, vendor.pk, account, "standard"))
        return Vendor.from_row(row)

