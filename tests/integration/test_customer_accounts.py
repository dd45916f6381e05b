"""Customer accounts over HTTP: profile, address book, orders across the store with their vendor orders' and
shipments' status, reorder into a cart, and claiming guest orders with a verified email."""

from __future__ import annotations

import uuid

import httpx

from tests.commerce_flow import OPS, Shopper, paid_order, send_event, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]
HOME = {"firstName": "Ada", "lastName": "Lovelace", "address1": "12 Analytical Row", "city": "Austin",
        "province": "tx", "postalCode": "73301", "countryCode": "us", "phone": "+1 512 555 0199"}


async def guest_order(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, stripe: FakeStripe,
                      email: str, lines: dict[str, int], token: str | None = None) -> str:
    """A paid order placed with `email` (by a guest, or by the customer of `token`)."""
    shopper = Shopper(gql, shop, token)
    cart = await shopper.ready_cart(lines)
    await shopper.ok("storefront/SetCartEmail", {"cartId": cart, "email": email})
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    response = await send_event(http, stripe, "payment_intent.succeeded", stripe.pay(session["paymentIntentId"]))
    assert response.status_code == 200, response.text
    return str(session["orderId"])


async def test_claiming_guest_orders_needs_a_verified_email_and_takes_only_guest_orders(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, tokens: Tokens,
        fake_stripe: FakeStripe) -> None:
    mine = await guest_order(gql, http, shop, fake_stripe, "Ada@Example.com", {"LU-CANDLE": 1})
    someone_elses = await guest_order(gql, http, shop, fake_stripe, "grace@example.com", {"LU-CANDLE": 1})
    bobs = await guest_order(gql, http, shop, fake_stripe, "ada@example.com", {"CP-HONEY-12": 1},
                             token=tokens("customer", shop, subject=f"bob-{uuid.uuid4().hex[:6]}"))
    alice = f"alice-{uuid.uuid4().hex[:6]}"
    unverified = Shopper(gql, shop, tokens("customer", shop, subject=alice, email="ada@example.com",
                                           email_verified=False))
    assert error_codes(await unverified("storefront/ClaimGuestOrders")) == ["FORBIDDEN"]
    verified = Shopper(gql, shop, tokens("customer", shop, subject=alice, email="ada@example.com"))
    claimed = (await verified.ok("storefront/ClaimGuestOrders"))["claimGuestOrders"]
    assert claimed["count"] == 1 and [order["id"] for order in claimed["orders"]] == [mine]
    assert (await verified.ok("storefront/ClaimGuestOrders"))["claimGuestOrders"]["count"] == 0
    account = (await verified.ok("storefront/Me", {"first": 10}))["me"]
    assert account["email"] == "ada@example.com"
    assert [order["id"] for order in account["orders"]["nodes"]] == [mine]
    assert someone_elses not in str(account) and bobs not in str(account)
    part = account["orders"]["nodes"][0]["vendorOrders"][0]
    assert (part["fulfillmentStatus"], part["vendor"]["handle"]) == ("UNFULFILLED", "lumen-home")
    staff = await gql(OPS["storefront/ClaimGuestOrders"], {}, token=tokens("tenant_admin", shop, email="x@y.example"))
    assert error_codes(staff) == ["FORBIDDEN"]
    anonymous = await gql(OPS["storefront/Me"], {}, key=shop.key)
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]


async def test_profile_and_address_book(gql: GraphQLClient, shop: TenantWorld, tokens: Tokens) -> None:
    alice = Shopper(gql, shop, tokens("customer", shop, subject=f"alice-{uuid.uuid4().hex[:6]}",
                                      email="alice@example.com"))
    profile = (await alice.ok("storefront/UpdateMyProfile", {"input": {"firstName": " Ada ", "phone": "+44 20 7946"}}))
    assert profile["updateMyProfile"] == {"customerId": profile["updateMyProfile"]["customerId"],
                                          "email": "alice@example.com", "firstName": "Ada", "lastName": None,
                                          "phone": "+44 20 7946"}
    again = (await alice.ok("storefront/UpdateMyProfile", {"input": {"lastName": "Lovelace"}}))["updateMyProfile"]
    assert (again["firstName"], again["lastName"]) == ("Ada", "Lovelace")
    assert error_codes(await alice("storefront/UpdateMyProfile", {"input": {"phone": "call me"}})) == \
        ["BAD_USER_INPUT"]
    home = (await alice.ok("storefront/AddMyAddress", {"input": {"label": "Home", "address": HOME}}))["addMyAddress"]
    assert home["isDefault"] is True and home["address"]["province"] == "TX" and home["address"]["countryCode"] == "us"
    bad = await alice("storefront/AddMyAddress", {"input": {"address": {**HOME, "postalCode": "7330"}}})
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    office = (await alice.ok("storefront/AddMyAddress", {"input": {
        "label": "Office", "address": {**HOME, "address1": "1 Congress Ave"}, "isDefault": True}}))["addMyAddress"]
    book = (await alice.ok("storefront/Me", {}))["me"]["addresses"]
    assert [(entry["label"], entry["isDefault"]) for entry in book] == [("Home", False), ("Office", True)]
    moved = await alice.ok("storefront/UpdateMyAddress", {"id": home["id"], "input": {
        "address": {**HOME, "city": "Round Rock", "postalCode": "78664"}, "isDefault": True}})
    assert moved["updateMyAddress"]["address"]["city"] == "Round Rock" and moved["updateMyAddress"]["isDefault"]
    bob = Shopper(gql, shop, tokens("customer", shop, subject=f"bob-{uuid.uuid4().hex[:6]}"))
    for name, variables in (("storefront/UpdateMyAddress", {"id": office["id"], "input": {"label": "Mine"}}),
                            ("storefront/RemoveMyAddress", {"id": office["id"]})):
        assert error_codes(await bob(name, variables)) == ["NOT_FOUND"]
    assert (await bob.ok("storefront/Me", {}))["me"]["addresses"] == []
    assert (await alice.ok("storefront/RemoveMyAddress", {"id": home["id"]}))["removeMyAddress"] == home["id"]
    book = (await alice.ok("storefront/Me", {}))["me"]["addresses"]
    assert [(entry["label"], entry["isDefault"]) for entry in book] == [("Office", True)]  # the default moved


async def test_reorder_puts_a_past_order_into_a_new_cart(gql: GraphQLClient, http: httpx.AsyncClient,
                                                         shop: TenantWorld, tokens: Tokens,
                                                         fake_stripe: FakeStripe) -> None:
    subject = f"alice-{uuid.uuid4().hex[:6]}"
    alice = Shopper(gql, shop, tokens("customer", shop, subject=subject, email="ada@example.com"))
    order = await paid_order(alice, http, fake_stripe, {"LU-CANDLE": 3, "CP-HONEY-12": 1, "NW-TEE-S": 1})
    admin = tokens("tenant_admin", shop)

    async def stock(sku: str, units: int) -> None:
        body = await gql(OPS["admin/UpdateVariant"], {"id": await alice.variant(sku),
                                                      "input": {"inventoryQuantity": units}}, token=admin)
        assert "errors" not in body, body

    await stock("LU-CANDLE", 2)  # fewer than ordered: the cart takes what is left
    await stock("CP-HONEY-12", 0)  # sold out: left out and named
    again = (await alice.ok("storefront/Reorder", {"orderId": order}))["reorder"]
    assert again["skippedSkus"] == ["CP-HONEY-12"]
    assert sorted((line["sku"], line["quantity"]) for line in again["cart"]["lines"]) == \
        [("LU-CANDLE", 2), ("NW-TEE-S", 1)]
    assert again["cart"]["email"] == "ada@example.com" and again["cart"]["status"] == "OPEN"
    assert again["cart"]["shippingAddress"]["city"] == "San Francisco"
    assert (await alice.ok("storefront/Cart", {"id": again["cart"]["id"]}))["cart"]["id"] == again["cart"]["id"]
    bob = Shopper(gql, shop, tokens("customer", shop, subject=f"bob-{uuid.uuid4().hex[:6]}"))
    assert error_codes(await bob("storefront/Reorder", {"orderId": order})) == ["FORBIDDEN"]
    guest = Shopper(gql, shop)
    assert error_codes(await guest("storefront/Reorder", {"orderId": order})) != []

