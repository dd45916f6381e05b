"""The storefront flow over HTTP: browse → cart → checkout → Stripe (the real SDK against the fake) → webhook →
order split by vendor; and every way it can go wrong."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import text

from cityos.graphql.core.relay import from_global_id, to_global_id
from tests.commerce_flow import ADDRESS, OPS, WEBHOOK, Shopper, order_count, send_event, shop, stock, usd
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe


async def test_browse_cart_checkout_webhook_order(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld,
                                                  fake_stripe: FakeStripe, owner_engine, tokens: Tokens) -> None:
    shopper = Shopper(gql, shop, tokens("customer", shop, subject="ada"))
    cart = await shopper.ready_cart({"NW-SOCK-1": 10, "LU-CANDLE": 1}, option="free")
    view = (await shopper.ok("storefront/Cart", {"id": cart}))["cart"]
    socks = next(line for line in view["lines"] if line["sku"] == "NW-SOCK-1")
    assert (socks["listUnitPrice"], socks["unitPrice"], socks["total"]) == (usd(1200), usd(1092), usd(10920))
    # 12000 + 2400 list, 1080 tier discount, free shipping, 8.25 % tax on 13320 = 1098.9 → 1099
    assert view["totals"] == {"currencyCode": "usd", "subtotal": usd(14400), "discountTotal": usd(1080),
                              "shippingTotal": usd(0), "taxTotal": usd(1099), "total": usd(14419)}
    assert {(o["code"], o["amount"]["amount"]) for o in view["availableShippingOptions"]} == {
        ("standard", 500), ("express", 1500), ("free", 0)}
    # The address reads back as an Address, in the API's names, as validated (state code, lower-case country)
    assert view["shippingAddress"] == {"firstName": "Ada", "lastName": "Lovelace", "company": None,
                                       "address1": "1 Market St", "address2": None, "city": "San Francisco",
                                       "province": "US-CA", "postalCode": "94105", "countryCode": "us",
                                       "phone": None}
    assert {o["code"] for o in view["availableShippingOptions"]} == {"standard", "express", "free"}
    before = await stock(owner_engine, "NW-SOCK-1", shop.tenant_id)

    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert session["amount"] == usd(14419)
    assert session["clientSecret"].startswith(session["paymentIntentId"])
    intent = fake_stripe.intents[session["paymentIntentId"]]
    assert intent["transfer_group"] == str(from_global_id(session["orderId"])[1])
    assert intent["metadata"]["cart_id"] == str(from_global_id(cart)[1])
    assert await stock(owner_engine, "NW-SOCK-1", shop.tenant_id) == before - 10  # reserved
    again = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert again["paymentIntentId"] == session["paymentIntentId"]  # same cart → same idempotency key → same intent
    assert await stock(owner_engine, "NW-SOCK-1", shop.tenant_id) == before - 10

    not_paid = await shopper("storefront/CompleteCheckout", {"cartId": cart})
    assert error_codes(not_paid) == ["PAYMENT_FAILED"]
    paid = fake_stripe.pay(session["paymentIntentId"])
    response = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id="evt_once")
    assert response.status_code == 200, response.text
    replay = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id="evt_once")
    assert replay.json()["duplicate"] is True
    completed = (await shopper.ok("storefront/CompleteCheckout", {"cartId": cart}))["completeCheckout"]
    assert completed["id"] == session["orderId"]
    assert completed["status"] == "PAID"
    assert await order_count(owner_engine, shop.tenant_id) == 1
    assert await stock(owner_engine, "NW-SOCK-1", shop.tenant_id) == before - 10  # sold, not double-counted

    order = (await gql(OPS["admin/OrderById"], {"id": session["orderId"]}, token=tokens("tenant_admin", shop)))
    order = order["data"]["order"]
    assert order["totals"]["total"] == usd(14419)
    assert order["shippingAddress"]["postalCode"] == "94105" and order["shippingAddress"]["province"] == "US-CA"
    assert {line["sku"]: line["unitPrice"] for line in order["lines"]}["NW-SOCK-1"] == usd(1092)
    parts = order["vendorOrders"]
    assert {part["vendor"]["handle"] for part in parts} == {"northwind-outfitters", "lumen-home"}
    for column in ("subtotal", "discountTotal", "shippingTotal", "taxTotal", "total"):
        assert sum(part["totals"][column]["amount"] for part in parts) == order["totals"][column]["amount"]
        assert {part["totals"][column]["currencyCode"] for part in parts} == {"usd"}
    mine = (await shopper.ok("storefront/MyOrders"))["orders"]
    assert mine["totalCount"] == 1
    assert mine["nodes"][0]["email"] == "ada@example.com"
    vendor = await gql(OPS["vendor/VendorOrders"], {"first": 10},
                       token=tokens("vendor_user", shop, vendor="lumen-home"))
    assert [node["vendor"]["handle"] for node in vendor["data"]["vendorOrders"]["nodes"]] == ["lumen-home"]
    assert [line["sku"] for line in vendor["data"]["vendorOrders"]["nodes"][0]["lines"]] == ["LU-CANDLE"]


async def test_complete_checkout_first_then_webhook_makes_one_order(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                    shop: TenantWorld, fake_stripe: FakeStripe,
                                                                    owner_engine) -> None:
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"CP-HONEY-12": 2})
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    paid = fake_stripe.pay(session["paymentIntentId"])
    completed, webhook = await asyncio.gather(
        shopper("storefront/CompleteCheckout", {"cartId": cart, "accessToken": session["orderAccessToken"]}),
        send_event(http, fake_stripe, "payment_intent.succeeded", paid))
    assert webhook.status_code == 200
    assert "errors" not in completed, completed
    assert await order_count(owner_engine, shop.tenant_id) == 1
    late = await send_event(http, fake_stripe, "payment_intent.succeeded", paid)  # another delivery, new event id
    assert late.status_code == 200
    assert await order_count(owner_engine, shop.tenant_id) == 1


async def test_a_failed_payment_leaves_the_cart_open(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld,
                                                     fake_stripe: FakeStripe, owner_engine) -> None:
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"CP-COFFEE-1LB": 1})
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    declined = fake_stripe.decline(session["paymentIntentId"])
    response = await send_event(http, fake_stripe, "payment_intent.payment_failed", declined)
    assert response.status_code == 200
    view = (await shopper.ok("storefront/Cart", {"id": cart}))["cart"]
    assert view["status"] == "OPEN"
    assert view["paymentError"] == {"code": "card_declined", "declineCode": "insufficient_funds",
                                    "message": "Your card has insufficient funds."}
    assert await order_count(owner_engine, shop.tenant_id) == 0


async def test_forged_stale_or_malformed_webhooks_are_refused(http: httpx.AsyncClient, shop: TenantWorld,
                                                              fake_stripe: FakeStripe, owner_engine) -> None:
    intent = {"id": "pi_forged", "object": "payment_intent", "status": "succeeded", "amount_received": 1,
              "currency": "usd", "metadata": {"tenant_id": str(shop.tenant_id), "cart_id": "x"}}
    payload = fake_stripe.event("payment_intent.succeeded", intent)
    forged = await http.post(WEBHOOK, content=payload,
                             headers={"stripe-signature": fake_stripe.sign(payload, secret="whsec_wrong")})
    stale = await http.post(WEBHOOK, content=payload, headers={
        "stripe-signature": fake_stripe.sign(payload, timestamp=int(time.time()) - 3600)})
    future = await http.post(WEBHOOK, content=payload, headers={
        "stripe-signature": fake_stripe.sign(payload, timestamp=int(time.time()) + 3600)})
    unsigned = await http.post(WEBHOOK, content=payload)
    tampered = await http.post(WEBHOOK, content=payload.replace(b"pi_forged", b"pi_other"),
                               headers={"stripe-signature": fake_stripe.sign(payload)})
    assert [r.status_code for r in (forged, stale, future, unsigned, tampered)] == [400] * 5
    async with owner_engine.connect() as connection:
        assert (await connection.execute(text("select count(*) from webhook_inbox where payload->'data'->'object'"
                                              "->>'id' = 'pi_forged'"))).scalar_one() == 0


async def test_unknown_event_types_are_acknowledged(http: httpx.AsyncClient, fake_stripe: FakeStripe) -> None:
    response = await send_event(http, fake_stripe, "customer.created", {"id": "cus_1", "object": "customer"})
    assert response.status_code == 200
    assert response.json()["outcome"].startswith("ignored")


async def test_two_checkouts_for_the_last_unit(gql: GraphQLClient, shop: TenantWorld, owner_engine) -> None:
    async with owner_engine.begin() as connection:
        await connection.execute(text("update variant set inventory_quantity = 1 where sku = 'LU-THROW-SLATE' "
                                      "and tenant_id = :t"), {"t": shop.tenant_id})
    first, second = Shopper(gql, shop), Shopper(gql, shop)
    carts = [await first.ready_cart({"LU-THROW-SLATE": 1}), await second.ready_cart({"LU-THROW-SLATE": 1})]
    results = await asyncio.gather(first("storefront/StartCheckout", {"cartId": carts[0]}),
                                   second("storefront/StartCheckout", {"cartId": carts[1]}))
    outcomes = sorted(("errors" in result and error_codes(result)[0]) or "ok" for result in results)
    assert outcomes == ["OUT_OF_STOCK", "ok"], results
    assert await stock(owner_engine, "LU-THROW-SLATE", shop.tenant_id) == 0


async def test_bad_cart_input_is_typed_and_changes_nothing(gql: GraphQLClient, shop: TenantWorld,
                                                           owner_engine) -> None:
    shopper = Shopper(gql, shop)
    cart = (await shopper.ok("storefront/CreateCart"))["createCart"]["id"]
    variant = await shopper.variant("CP-HONEY-12")
    cases = [
        ({"cartId": cart, "variantId": to_global_id("Variant", "00000000-0000-0000-0000-000000000000"),
          "quantity": 1}, "BAD_USER_INPUT"),
        ({"cartId": cart, "variantId": variant, "quantity": 0}, "BAD_USER_INPUT"),
        ({"cartId": cart, "variantId": variant, "quantity": 10_001}, "BAD_USER_INPUT"),
        ({"cartId": cart, "variantId": variant, "quantity": 201}, "OUT_OF_STOCK"),
        ({"cartId": cart, "variantId": "garbage", "quantity": 1}, "BAD_USER_INPUT"),
    ]
    for variables, code in cases:
        assert error_codes(await shopper("storefront/AddCartLine", variables)) == [code], variables
    assert (await shopper.ok("storefront/Cart", {"id": cart}))["cart"]["lines"] == []
    async with owner_engine.begin() as connection:  # a variant priced only in EUR cannot go into a USD cart
        await connection.execute(text("update variant_price set currency_code = 'eur' where tenant_id = :t and "
                                      "variant_id = (select id from variant where sku = 'CP-HONEY-32' and "
                                      "tenant_id = :t)"), {"t": shop.tenant_id})
    euro_only = await shopper.variant("CP-HONEY-32")
    mismatch = await shopper("storefront/AddCartLine", {"cartId": cart, "variantId": euro_only, "quantity": 1})
    assert error_codes(mismatch) == ["BAD_USER_INPUT"]
    assert "EUR" not in mismatch["errors"][0]["message"] and "USD" in mismatch["errors"][0]["message"]
    assert error_codes(await shopper("storefront/CreateCart", {"input": {"currencyCode": "eur"}})) == [
        "BAD_USER_INPUT"]  # no region sells in EUR
    assert error_codes(await shopper("storefront/SetCartEmail", {"cartId": cart, "email": "not-an-email"})) == [
        "BAD_USER_INPUT"]
    abroad = {**ADDRESS, "countryCode": "CA", "province": "ON"}
    assert error_codes(await shopper("storefront/SetShippingAddress", {"cartId": cart, "address": abroad})) == [
        "BAD_USER_INPUT"]
    nowhere = {**ADDRESS, "province": "ZZ"}
    assert error_codes(await shopper("storefront/SetShippingAddress", {"cartId": cart, "address": nowhere})) == [
        "BAD_USER_INPUT"]
    for zip_code in ("9410", "941055", "94105-12", "ABCDE", "94105 1234"):
        refused_zip = await shopper("storefront/SetShippingAddress",
                                    {"cartId": cart, "address": {**ADDRESS, "postalCode": zip_code}})
        assert error_codes(refused_zip) == ["BAD_USER_INPUT"], zip_code
        assert refused_zip["errors"][0]["extensions"]["field"] == "address.postalCode"
    zip4 = await shopper.ok("storefront/SetShippingAddress",
                            {"cartId": cart, "address": {**ADDRESS, "postalCode": " 94105-1234 ", "company": "AE Ltd"}})
    assert (zip4["setShippingAddress"]["shippingAddress"]["postalCode"],
            zip4["setShippingAddress"]["shippingAddress"]["company"]) == ("94105-1234", "AE Ltd")
    await shopper.ok("storefront/AddCartLine", {"cartId": cart, "variantId": variant, "quantity": 1})
    options = await shopper.ok("storefront/SetShippingAddress", {"cartId": cart, "address": ADDRESS})
    assert "free" not in {o["code"] for o in options["setShippingAddress"]["availableShippingOptions"]}
    async with owner_engine.connect() as connection:
        free = (await connection.execute(text("select id from shipping_option where code = 'free' and tenant_id = :t"),
                                         {"t": shop.tenant_id})).scalar_one()
    refused = await shopper("storefront/SetShippingOption", {"cartId": cart,
                                                            "shippingOptionId": to_global_id("ShippingOption", free)})
    assert error_codes(refused) == ["BAD_USER_INPUT"]  # $14 is below the $50 free-shipping minimum
    incomplete = await shopper("storefront/StartCheckout", {"cartId": cart})
    assert error_codes(incomplete) == ["BAD_USER_INPUT"]  # no email, no shipping option
    assert await stock(owner_engine, "CP-HONEY-12", shop.tenant_id) == 200


async def test_a_stripe_outage_reserves_nothing(gql: GraphQLClient, shop: TenantWorld, fake_stripe: FakeStripe,
                                                owner_engine) -> None:
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"CP-HONEY-32": 3})
    fake_stripe.failures = [500, 500, 500]
    body = await shopper("storefront/StartCheckout", {"cartId": cart})
    fake_stripe.failures = []
    assert error_codes(body) == ["UNAVAILABLE"]
    assert await stock(owner_engine, "CP-HONEY-32", shop.tenant_id) == 80


async def test_order_status_follows_the_state_machine(gql: GraphQLClient, http: httpx.AsyncClient,
                                                      shop: TenantWorld, fake_stripe: FakeStripe,
                                                      tokens: Tokens) -> None:
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"CP-HONEY-12": 1})
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    await send_event(http, fake_stripe, "payment_intent.succeeded", fake_stripe.pay(session["paymentIntentId"]))
    admin = tokens("store_admin", shop, stores=["store-0"])
    update = OPS["admin/UpdateOrderStatus"]
    for status in ("FULFILLED", "COMPLETED"):
        body = await gql(update, {"id": session["orderId"], "status": status}, token=admin)
        assert body["data"]["updateOrderStatus"]["status"] == status
        assert {part["status"] for part in body["data"]["updateOrderStatus"]["vendorOrders"]} == {status}
    back = await gql(update, {"id": session["orderId"], "status": "PENDING"}, token=admin)
    assert error_codes(back) == ["INVALID_STATE_TRANSITION"]  # the one OrderStatus enum: PENDING is never a target
    illegal = await gql(update, {"id": session["orderId"], "status": "CANCELED"}, token=admin)
    assert error_codes(illegal) == ["INVALID_STATE_TRANSITION"]
    assert illegal["errors"][0]["extensions"]["from"] == "completed"
    vendor = await gql(update, {"id": session["orderId"], "status": "REFUNDED"},
                       token=tokens("vendor_admin", shop, vendor="cedar-pantry"))
    assert error_codes(vendor) == ["FORBIDDEN"]


__all__ = ["shop"]
