"""The marketplace over HTTP: field permissions on vendors and rules, onboarding, OAuth state, rule CRUD."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from cityos.errors import BadUserInput
from cityos.graphql.core.relay import to_global_id
from cityos.integrations.stripe.connect_state import sign_state, verify_state
from tests.commerce_flow import OPS, Shopper, paid_order, send_event, shop, usd
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]


async def vendor_id(owner_engine, shop: TenantWorld, handle: str) -> str:
    async with owner_engine.connect() as connection:
        pk = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = :h"),
                                       {"t": shop.tenant_id, "h": handle})).scalar_one()
    return to_global_id("Vendor", pk)


async def test_account_ids_and_balances_are_for_the_vendor_admin_and_tenant_admins(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        tokens: Tokens) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-HONEY-12": 1})
    cedar = await vendor_id(owner_engine, shop, "cedar-pantry")
    async with owner_engine.begin() as connection:
        await connection.execute(text("update vendor set stripe_account_id = 'acct_cedar_' || "
                                      "left(md5(cast(:t as text)), 8), status = 'active' "
                                      "where tenant_id = :t and handle = 'cedar-pantry'"),
                                 {"t": str(shop.tenant_id)})
    query = OPS["vendor/VendorAccount"]
    for token in (tokens("vendor_admin", shop, vendor="cedar-pantry"), tokens("tenant_admin", shop)):
        body = await gql(query, {"id": cedar}, token=token)
        assert "errors" not in body, body
        account = body["data"]["node"]
        assert account["stripeAccountId"].startswith("acct_cedar_")
        assert account["balances"] == [{"currencyCode": "usd", "pending": usd(1365), "available": usd(0),
                                        "paidOut": usd(0)}]
    for token in (tokens("vendor_user", shop, vendor="cedar-pantry"), tokens("vendor_admin", shop, vendor="lumen-home"),
                  tokens("customer", shop), tokens("store_admin", shop, stores=["store-0"])):
        body = await gql(query, {"id": cedar}, token=token, key=shop.key)
        account = body["data"]["node"]
        assert account["name"] == "Cedar Pantry"
        assert account["stripeAccountId"] is None and account["balances"] is None
        assert "FORBIDDEN" in error_codes(body)
    ledger = await gql(OPS["vendor/LedgerEntries"], {"vendorId": cedar},
                       token=tokens("vendor_admin", shop, vendor="cedar-pantry"))
    assert [entry["vendorAmount"] for entry in ledger["data"]["ledgerEntries"]["nodes"]] == [usd(1365)]
    refused = await gql(OPS["vendor/LedgerEntries"], {"vendorId": cedar},
                        token=tokens("vendor_admin", shop, vendor="lumen-home"))
    assert error_codes(refused) == ["FORBIDDEN"]


async def test_express_onboarding_creates_the_account_once(gql: GraphQLClient, http: httpx.AsyncClient,
                                                           shop: TenantWorld, fake_stripe: FakeStripe,
                                                           owner_engine, tokens: Tokens) -> None:
    lumen = await vendor_id(owner_engine, shop, "lumen-home")
    admin = tokens("vendor_admin", shop, vendor="lumen-home")
    first = (await gql(OPS["vendor/StartVendorOnboarding"], {"vendorId": lumen}, token=admin))
    assert "errors" not in first, first
    link = first["data"]["startVendorOnboarding"]
    again = (await gql(OPS["vendor/StartVendorOnboarding"], {"vendorId": lumen}, token=admin))
    assert again["data"]["startVendorOnboarding"]["stripeAccountId"] == link["stripeAccountId"]
    refreshed = await gql(OPS["vendor/RefreshVendorOnboarding"], {"vendorId": lumen}, token=admin)
    assert refreshed["data"]["refreshVendorOnboarding"]["url"] != link["url"]
    other = await gql(OPS["vendor/StartVendorOnboarding"], {"vendorId": lumen},
                      token=tokens("vendor_admin", shop, vendor="cedar-pantry"))
    assert error_codes(other) == ["FORBIDDEN"]
    account = fake_stripe.accounts[link["stripeAccountId"]]
    response = await send_event(http, fake_stripe, "account.updated", {
        **account, "charges_enabled": True, "payouts_enabled": True, "details_submitted": True,
        "requirements": {"currently_due": [], "eventually_due": [], "past_due": [], "disabled_reason": None}})
    assert response.json()["outcome"] == "capabilities updated"
    status = await gql(OPS["vendor/VendorAccount"], {"id": lumen}, token=admin)
    assert status["data"]["node"]["payoutsEnabled"] is True


async def test_standard_oauth_state_is_bound_signed_and_single_use(gql: GraphQLClient, shop: TenantWorld,
                                                                   fake_stripe: FakeStripe, owner_engine,
                                                                   tokens: Tokens) -> None:
    northwind = await vendor_id(owner_engine, shop, "northwind-outfitters")
    admin = tokens("vendor_admin", shop, vendor="northwind-outfitters", subject="nw-admin")
    body = await gql(OPS["vendor/StripeConnectAuthorizeUrl"], {"vendorId": northwind}, token=admin)
    url = urlsplit(body["data"]["stripeConnectAuthorizeUrl"])
    params = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert url.path == "/oauth/authorize"
    assert params["client_id"] == "ca_cityos_test" and params["response_type"] == "code"
    assert params["redirect_uri"].endswith("/settings/integrations/stripe/callback")
    state = params["state"]
    stranger = tokens("vendor_admin", shop, vendor="northwind-outfitters", subject="someone-else")
    refused = await gql(OPS["vendor/CompleteStripeConnect"], {"code": fake_stripe.authorize(), "state": state},
                        token=stranger)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    tampered = await gql(OPS["vendor/CompleteStripeConnect"],
                         {"code": fake_stripe.authorize(), "state": state[:-1] + ("0" if state[-1] != "0" else "1")},
                         token=admin)
    assert error_codes(tampered) == ["BAD_USER_INPUT"]
    done = await gql(OPS["vendor/CompleteStripeConnect"], {"code": fake_stripe.authorize(), "state": state},
                     token=admin)
    assert done["data"]["completeStripeConnect"]["stripeAccountId"].startswith("acct_")
    reused = await gql(OPS["vendor/CompleteStripeConnect"], {"code": fake_stripe.authorize(), "state": state},
                       token=admin)
    assert error_codes(reused) == ["BAD_USER_INPUT"]
    bad_code = await gql(OPS["vendor/StripeConnectAuthorizeUrl"], {"vendorId": northwind}, token=admin)
    fresh = parse_qs(urlsplit(bad_code["data"]["stripeConnectAuthorizeUrl"]).query)["state"][0]
    invalid = await gql(OPS["vendor/CompleteStripeConnect"], {"code": "ac_invalid", "state": fresh}, token=admin)
    assert error_codes(invalid) == ["PAYMENT_FAILED"]


def test_an_expired_state_is_refused() -> None:
    vendor = uuid.uuid4()
    state = sign_state("secret" * 8, vendor, "me", now=time.time() - 3600)
    with pytest.raises(BadUserInput, match="expired"):
        verify_state("secret" * 8, state, "me")
    assert verify_state("secret" * 8, sign_state("secret" * 8, vendor, "me"), "me").vendor_id == vendor


async def test_commission_rules_crud(gql: GraphQLClient, shop: TenantWorld, owner_engine, tokens: Tokens) -> None:
    admin = tokens("tenant_admin", shop)
    lumen = await vendor_id(owner_engine, shop, "lumen-home")
    created = await gql(OPS["admin/CreateCommissionRule"], {"input": {
        "scope": "VENDOR".lower(), "scopeId": lumen, "percentage": "12.5", "minimum": 50}}, token=admin)
    assert "errors" not in created, created
    rule = created["data"]["createCommissionRule"]
    assert (rule["percentage"], rule["minimum"]) == ("12.5000", 50)
    foreign_vendor = to_global_id("Vendor", uuid.uuid4())  # e.g. another tenant's: invisible here
    for bad in ({"scope": "vendor", "scopeId": lumen}, {"scope": "tenant", "percentage": "150"},
                {"scope": "vendor", "scopeId": foreign_vendor, "percentage": "1"},
                {"scope": "tenant", "scopeId": lumen, "percentage": "1"},
                {"scope": "tenant", "percentage": "1", "minimum": 10, "maximum": 5}):
        assert error_codes(await gql(OPS["admin/CreateCommissionRule"], {"input": bad}, token=admin)) == [
            "BAD_USER_INPUT"], bad
    own = await gql(OPS["admin/CommissionRules"], {}, token=tokens("vendor_admin", shop, vendor="lumen-home"))
    assert [node["percentage"] for node in own["data"]["commissionRules"]["nodes"]] == ["12.5000"]
    other = await gql(OPS["admin/CommissionRules"], {}, token=tokens("vendor_admin", shop, vendor="cedar-pantry"))
    assert other["data"]["commissionRules"]["totalCount"] == 0
    forbidden = await gql(OPS["admin/UpdateCommissionRule"], {"id": rule["id"], "input": {
        "scope": "tenant", "percentage": "0"}}, token=tokens("vendor_admin", shop, vendor="lumen-home"))
    assert error_codes(forbidden) == ["FORBIDDEN"]
    updated = await gql(OPS["admin/UpdateCommissionRule"], {"id": rule["id"], "input": {
        "scope": "tenant", "percentage": "3"}}, token=admin)
    assert updated["data"]["updateCommissionRule"]["scope"] == "tenant"
    deleted = await gql(OPS["admin/DeleteCommissionRule"], {"id": rule["id"]}, token=admin)
    assert deleted["data"]["deleteCommissionRule"] == rule["id"]
    gone = await gql(OPS["admin/DeleteCommissionRule"], {"id": rule["id"]}, token=admin)
    assert error_codes(gone) == ["NOT_FOUND"]


async def test_vendors_and_their_users(gql: GraphQLClient, shop: TenantWorld, tokens: Tokens) -> None:
    admin = tokens("tenant_admin", shop)
    created = await gql(OPS["admin/CreateVendor"], {"input": {
        "storeId": to_global_id("Store", shop.store_id), "handle": "new-seller", "name": "New Seller",
        "contactEmail": "ops@new-seller.example", "payoutMinimum": 2500}}, token=admin)
    vendor = created["data"]["createVendor"]
    assert vendor["status"] == "PENDING"
    duplicate = await gql(OPS["admin/CreateVendor"], {"input": {
        "storeId": to_global_id("Store", shop.store_id), "handle": "new-seller", "name": "Again"}}, token=admin)
    assert error_codes(duplicate) == ["CONFLICT"]
    seller = tokens("vendor_admin", shop, vendor="new-seller")
    self_activate = await gql(OPS["admin/UpdateVendor"], {"id": vendor["id"], "input": {"status": "ACTIVE"}},
                              token=seller)
    assert error_codes(self_activate) == ["FORBIDDEN"]
    activated = await gql(OPS["admin/UpdateVendor"], {"id": vendor["id"], "input": {"status": "ACTIVE"}},
                          token=admin)
    assert activated["data"]["updateVendor"]["status"] == "ACTIVE"
    invited = await gql(OPS["vendor/InviteVendorUser"], {"vendorId": vendor["id"], "role": "vendor_user",
                                                         "email": "Packer@New-Seller.example"}, token=seller)
    user = invited["data"]["inviteVendorUser"]
    assert (user["email"], user["status"]) == ("packer@new-seller.example", "invited")
    again = await gql(OPS["vendor/InviteVendorUser"], {"vendorId": vendor["id"], "role": "vendor_user",
                                                       "email": "packer@new-seller.example"}, token=seller)
    assert error_codes(again) == ["CONFLICT"]
    bad_role = await gql(OPS["vendor/InviteVendorUser"], {"vendorId": vendor["id"], "role": "owner",
                                                          "email": "x@new-seller.example"}, token=seller)
    assert error_codes(bad_role) == ["BAD_USER_INPUT"]
    listed = await gql(OPS["admin/Vendors"], {"first": 50}, key=shop.key)
    assert "new-seller" in {node["handle"] for node in listed["data"]["vendors"]["nodes"]}
    removed = await gql(OPS["vendor/RemoveVendorUser"], {"vendorId": vendor["id"], "id": user["id"]}, token=seller)
    assert removed["data"]["removeVendorUser"] == user["id"]
