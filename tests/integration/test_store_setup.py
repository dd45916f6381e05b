"""A tenant created through the API sets itself up to sell without touching the database: store, key, region with
state tax, shipping options (the store's and a vendor's own by weight), sales channels, vendors, products; a
shopper then checks out against the fake Stripe and each vendor's shipping is charged in the one checkout."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import GraphQLClient, Tokens, error_codes
from tests.fakes.stripe import FakeStripe
from tests.operations import all_operations

OPS = all_operations()
ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "address1": "1 Market St", "city": "San Francisco",
           "province": "CA", "postalCode": "94105", "countryCode": "US"}


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currencyCode": "usd"}


class Admin:
    def __init__(self, gql: GraphQLClient, token: str) -> None:
        self.gql, self.token = gql, token

    async def __call__(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.gql(OPS[name], variables, token=self.token)

    async def ok(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await self(name, variables)
        assert "errors" not in body, (name, body)
        return body["data"]


async def set_up_tenant(gql: GraphQLClient, keycloak: Any) -> tuple[Admin, dict[str, Any]]:
    """Everything through GraphQL: the platform creates the tenant, its admin sets it up."""
    slug = f"setup-{uuid.uuid4().hex[:10]}"
    platform = Admin(gql, keycloak.token(roles=["super_admin"]))
    tenant = (await platform.ok("admin/CreateTenant", {"input": {"slug": slug, "name": "Set Up Shop"}}))["createTenant"]
    admin = Admin(gql, keycloak.token(roles=["tenant_admin"], tenant=slug))
    store = (await admin.ok("admin/CreateStore", {"input": {"handle": "main", "name": "Main"}}))["createStore"]
    key = (await admin.ok("admin/CreatePublishableKey", {"storeId": store["id"], "title": "web"}))
    region = (await admin.ok("admin/CreateRegion", {"input": {
        "name": "United States", "currencyCode": "USD", "countryCodes": ["US"], "taxRate": "0.05",
        "states": [{"code": "CA", "name": "California", "taxRate": "0.0725"}, {"code": "TX", "name": "Texas"}],
    }}))["createRegion"]
    vendors = {}
    for handle in ("heavy-goods", "light-goods"):
        vendors[handle] = (await admin.ok("admin/CreateVendor", {"input": {
            "storeId": store["id"], "handle": handle, "name": handle.title()}}))["createVendor"]["id"]
    return admin, {"tenant": tenant, "store": store, "key": key["createPublishableKey"]["key"], "region": region,
                   "vendors": vendors, "slug": slug}


async def add_product(admin: Admin, store: str, vendor: str, sku: str, price: int, grams: int) -> None:
    product = (await admin.ok("admin/CreateProduct", {"input": {
        "storeId": store, "handle": sku.lower(), "title": sku, "vendorId": vendor, "status": "PUBLISHED"}}))
    await admin.ok("admin/CreateVariant", {"productId": product["createProduct"]["id"], "input": {
        "sku": sku, "title": "One size", "inventoryQuantity": 10, "weightGrams": grams, "prices": [usd(price)]}})


async def test_a_tenant_set_up_through_graphql_sells(gql: GraphQLClient, tokens: Tokens, keycloak: Any,
                                                     fake_stripe: FakeStripe) -> None:
    admin, shop = await set_up_tenant(gql, keycloak)
    region, vendors = shop["region"], shop["vendors"]
    assert region["countryCodes"] == ["us"] and region["taxInclusive"] is False
    assert {state["code"]: state["taxRate"] for state in region["states"]} == {"US-CA": "0.0725", "US-TX": None}
    standard = (await admin.ok("admin/CreateShippingOption", {"input": {
        "regionId": region["id"], "code": "standard", "name": "Standard", "amount": usd(500),
        "freeAbove": usd(10000)}}))["createShippingOption"]
    assert standard["freeAbove"] == usd(10000) and standard["vendorId"] is None
    # The heavy-goods vendor ships its own items, priced by weight.
    own = (await admin.ok("admin/CreateShippingOption", {"input": {
        "regionId": region["id"], "vendorId": vendors["heavy-goods"], "code": "standard", "name": "Freight",
        "amount": usd(0), "weightBands": [{"upToGrams": 1000, "amount": usd(300)},
                                          {"upToGrams": 5000, "amount": usd(700)}, {"amount": usd(1500)}]}}))
    assert [band["upToGrams"] for band in own["createShippingOption"]["weightBands"]] == [1000, 5000, None]
    # An amount in another currency than the region's is refused, and nothing is written.
    euro = await admin("admin/CreateShippingOption", {"input": {
        "regionId": region["id"], "code": "express", "name": "Express", "amount": {"amount": 900,
                                                                                   "currencyCode": "eur"}}})
    assert error_codes(euro) == ["BAD_USER_INPUT"] and "USD" in euro["errors"][0]["message"]
    setup = (await admin.ok("admin/RegionSetup", {"id": shop["tenant"]["id"]}))["tenant"]["regions"]["nodes"]
    assert sorted(option["name"] for option in setup[0]["shippingOptions"]) == ["Freight", "Standard"]
    listed = (await admin.ok("admin/Regions", {"first": 10}))["regions"]
    assert listed["totalCount"] == 1 and [node["id"] for node in listed["nodes"]] == [region["id"]]
    assert [option["code"] for option in listed["nodes"][0]["shippingOptions"]] == ["standard", "standard"]
    # A second sales channel, then the default one again: storefronts sell the default channel's products.
    channel = (await admin.ok("admin/CreateSalesChannel", {"input": {
        "storeId": shop["store"]["id"], "name": "Marketplace feed", "description": "for partners"}}))
    assert channel["createSalesChannel"]["isDefault"] is False
    await add_product(admin, shop["store"]["id"], vendors["heavy-goods"], "ANVIL", 2000, 600)
    await add_product(admin, shop["store"]["id"], vendors["light-goods"], "FEATHER", 3000, 500)

    async def shopper(name: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await gql(OPS[name], variables, key=shop["key"])
        assert "errors" not in body, (name, body)
        return body["data"]

    products = (await shopper("storefront/Products", {"first": 10}))["products"]["nodes"]
    variants = {variant["sku"]: variant["id"] for product in products for variant in product["variants"]}
    cart = (await shopper("storefront/CreateCart", {"input": {"email": "ada@example.com"}}))["createCart"]["id"]
    await shopper("storefront/AddCartLine", {"cartId": cart, "variantId": variants["ANVIL"], "quantity": 2})
    await shopper("storefront/AddCartLine", {"cartId": cart, "variantId": variants["FEATHER"], "quantity": 1})
    offered = (await shopper("storefront/SetShippingAddress", {"cartId": cart, "address": ADDRESS}))
    # 1,200 g of anvils at the vendor's 700, the feather at the store's 500 (its 3,000 is under the free 10,000).
    assert [(o["code"], o["amount"]) for o in offered["setShippingAddress"]["availableShippingOptions"]] == \
        [("standard", usd(1200))]
    option = offered["setShippingAddress"]["availableShippingOptions"][0]["id"]
    await shopper("storefront/SetShippingOption", {"cartId": cart, "shippingOptionId": option})
    session = (await shopper("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    # subtotal 7,000 + shipping 1,200 = 8,200; California's 7.25 % = 594.5 → 595
    assert session["amount"] == usd(8795)
    fake_stripe.pay(session["paymentIntentId"])
    order = (await shopper("storefront/CompleteCheckout", {"cartId": cart,
                                                           "accessToken": session["orderAccessToken"]}))
    assert order["completeCheckout"]["totals"]["total"] == usd(8795)
    detail = (await admin.ok("admin/OrderById", {"id": order["completeCheckout"]["id"]}))["order"]
    parts = {part["vendor"]["handle"]: part["totals"] for part in detail["vendorOrders"]}
    assert parts["heavy-goods"]["shippingTotal"] == usd(700) and parts["light-goods"]["shippingTotal"] == usd(500)
    assert parts["heavy-goods"]["taxTotal"]["amount"] + parts["light-goods"]["taxTotal"]["amount"] == 595


async def test_tax_inclusive_region_and_its_updates(gql: GraphQLClient, keycloak: Any) -> None:
    admin, _ = await set_up_tenant(gql, keycloak)
    eu = (await admin.ok("admin/CreateRegion", {"input": {
        "name": "Europe", "currencyCode": "eur", "countryCodes": ["de", "fr", "DE"], "taxRate": "0.19",
        "taxInclusive": True}}))["createRegion"]
    assert eu["countryCodes"] == ["de", "fr"] and eu["taxInclusive"] is True and eu["states"] == []
    changed = (await admin.ok("admin/UpdateRegion", {"id": eu["id"], "input": {
        "taxRate": "0.2", "countryCodes": ["fr"], "states": [{"code": "FR-75", "name": "Paris", "taxRate": "0.1"}]}}))
    assert changed["updateRegion"]["taxRate"] in ("0.2", "0.2000")
    assert changed["updateRegion"]["states"] == [{"code": "FR-75", "name": "Paris", "taxRate": "0.1000"}]
    for bad in ({"taxRate": "1.5"}, {"countryCodes": ["usa"]}, {"states": [{"code": "US-CA", "name": "x"}]}):
        body = await admin("admin/UpdateRegion", {"id": eu["id"], "input": bad})
        assert error_codes(body) == ["BAD_USER_INPUT"], (bad, body)
    duplicate = await admin("admin/CreateRegion", {"input": {"name": "Europe", "currencyCode": "eur",
                                                             "countryCodes": ["it"]}})
    assert error_codes(duplicate) == ["CONFLICT"]
    option = (await admin.ok("admin/CreateShippingOption", {"input": {
        "regionId": eu["id"], "code": "post", "name": "Post", "amount": {"amount": 490, "currencyCode": "eur"}}}))
    option_id = option["createShippingOption"]["id"]
    updated = await admin.ok("admin/UpdateShippingOption", {"id": option_id, "input": {
        "isActive": False, "freeAbove": {"amount": 5000, "currencyCode": "EUR"}}})
    assert updated["updateShippingOption"]["isActive"] is False
    assert updated["updateShippingOption"]["freeAbove"] == {"amount": 5000, "currencyCode": "eur"}
    wrong = await admin("admin/UpdateShippingOption", {"id": option_id, "input": {"amount": usd(1)}})
    assert error_codes(wrong) == ["BAD_USER_INPUT"]
    cleared = await admin.ok("admin/UpdateShippingOption", {"id": option_id, "input": {"clear": ["freeAbove"]}})
    assert cleared["updateShippingOption"]["freeAbove"] is None


async def test_sales_channels_keep_one_default(gql: GraphQLClient, keycloak: Any) -> None:
    admin, shop = await set_up_tenant(gql, keycloak)
    store = shop["store"]["id"]
    created = (await admin.ok("admin/CreateSalesChannel", {"input": {"storeId": store, "name": "App",
                                                                      "isDefault": True}}))["createSalesChannel"]
    channels = (await admin.ok("admin/SalesChannels", {"storeId": store}))["store"]["salesChannels"]["nodes"]
    assert [c["name"] for c in channels if c["isDefault"]] == ["App"]
    refused = await admin("admin/UpdateSalesChannel", {"id": created["id"], "input": {"isDisabled": True}})
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    old = next(c["id"] for c in channels if c["name"] == "Default Sales Channel")
    await admin.ok("admin/UpdateSalesChannel", {"id": old, "input": {"isDefault": True}})
    disabled = await admin.ok("admin/UpdateSalesChannel", {"id": created["id"], "input": {"isDisabled": True,
                                                                                         "name": "App (off)"}})
    assert disabled["updateSalesChannel"] == {"id": created["id"], "name": "App (off)", "description": None,
                                              "isDefault": False, "isDisabled": True}


async def test_a_tax_inclusive_region_charges_prices_as_shown(gql: GraphQLClient, keycloak: Any,
                                                              fake_stripe: FakeStripe) -> None:
    admin, shop = await set_up_tenant(gql, keycloak)
    euro = {"currencyCode": "eur"}
    eu = (await admin.ok("admin/CreateRegion", {"input": {
        "name": "Germany", "currencyCode": "eur", "countryCodes": ["de"], "taxRate": "0.19",
        "taxInclusive": True}}))["createRegion"]
    await admin.ok("admin/CreateShippingOption", {"input": {"regionId": eu["id"], "code": "dhl", "name": "DHL",
                                                            "amount": {"amount": 490, **euro}}})
    product = await admin.ok("admin/CreateProduct", {"input": {"storeId": shop["store"]["id"], "handle": "mug",
                                                               "title": "Mug", "status": "PUBLISHED"}})
    await admin.ok("admin/CreateVariant", {"productId": product["createProduct"]["id"], "input": {
        "sku": "MUG", "title": "Mug", "inventoryQuantity": 5, "prices": [{"amount": 1190, **euro}]}})

    async def shopper(name: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await gql(OPS[name], variables, key=shop["key"])
        assert "errors" not in body, (name, body)
        return body["data"]

    products = (await shopper("storefront/Products", {"first": 10}))["products"]["nodes"]
    cart = (await shopper("storefront/CreateCart", {"input": {"email": "max@example.com", "regionId": eu["id"],
                                                               "currencyCode": "eur"}}))["createCart"]["id"]
    await shopper("storefront/AddCartLine", {"cartId": cart, "variantId": products[0]["variants"][0]["id"],
                                             "quantity": 1})
    us = await gql(OPS["storefront/SetShippingAddress"], {"cartId": cart, "address": ADDRESS}, key=shop["key"])
    assert error_codes(us) == ["BAD_USER_INPUT"]  # the region sells to Germany only
    offered = await shopper("storefront/SetShippingAddress", {"cartId": cart, "address": {
        "firstName": "Max", "lastName": "Muster", "address1": "Unter den Linden 1", "city": "Berlin",
        "province": "BE", "postalCode": "10117", "countryCode": "DE"}})
    option = offered["setShippingAddress"]["availableShippingOptions"][0]["id"]
    await shopper("storefront/SetShippingOption", {"cartId": cart, "shippingOptionId": option})
    session = (await shopper("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert session["amount"] == {"amount": 1680, **euro}  # 11.90 + 4.90, the tax inside
    fake_stripe.pay(session["paymentIntentId"])
    await shopper("storefront/CompleteCheckout", {"cartId": cart, "accessToken": session["orderAccessToken"]})
    order = (await admin.ok("admin/OrderById", {"id": session["orderId"]}))["order"]
    # 16.80 / 1.19 = 14.117… → 14.12 net: 2.68 of tax inside the total
    assert order["totals"]["taxTotal"] == {"amount": 268, **euro}
    assert order["totals"]["total"] == {"amount": 1680, **euro}


async def test_a_vendor_admin_sets_up_its_own_shipping_only(gql: GraphQLClient, keycloak: Any) -> None:
    admin, shop = await set_up_tenant(gql, keycloak)
    vendor_admin = Admin(gql, keycloak.token(roles=["vendor_admin"], tenant=shop["slug"], vendor="heavy-goods"))
    own = {"regionId": shop["region"]["id"], "code": "standard", "name": "Own truck", "amount": usd(900)}
    created = await vendor_admin.ok("admin/CreateShippingOption", {"input": {
        **own, "vendorId": shop["vendors"]["heavy-goods"]}})
    assert created["createShippingOption"]["vendorId"] == shop["vendors"]["heavy-goods"]
    for forbidden in ({**own, "vendorId": shop["vendors"]["light-goods"]}, own):
        assert error_codes(await vendor_admin("admin/CreateShippingOption", {"input": forbidden})) == ["FORBIDDEN"]
    twice = await admin("admin/CreateShippingOption", {"input": {**own, "vendorId": shop["vendors"]["heavy-goods"]}})
    assert error_codes(twice) == ["CONFLICT"]


async def test_storefront_visitors_list_the_regions_too(gql: GraphQLClient, keycloak: Any) -> None:
    _, shop = await set_up_tenant(gql, keycloak)
    listed = await gql(OPS["admin/Regions"], {"first": 5}, key=shop["key"])
    assert "errors" not in listed, listed
    assert [node["id"] for node in listed["data"]["regions"]["nodes"]] == [shop["region"]["id"]]
