"""Promotions over HTTP against the fakes: every condition and action on a cart, stacking, automatic promotions
re-evaluated on every change, typed errors, vendors' promotions and the store's approval, funding split across two
vendors with exact ledger sums, a refund of a discounted line, the last-use race, campaign reports, a subscription
renewal carrying a promotion for N cycles."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import create_app_engine
from cityos.domain.marketplace.rules import reversed_share
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.integrations.stripe.client import create_stripe_client
from cityos.jobs.billing import process_billing_cycles
from tests.commerce_flow import OPS, Shopper, send_event, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe
from tests.integration.test_billing import create_plan, my_subscriptions, subscribe, variant_and_vendor

__all__ = ["shop"]


async def ids(owner_engine: AsyncEngine, world: TenantWorld) -> dict[str, str]:
    """Global ids of the seeded products, categories and vendors, by handle."""
    found: dict[str, str] = {}
    async with owner_engine.connect() as connection:
        for table, type_name in (("product", "Product"), ("category", "Category"), ("vendor", "Vendor")):
            for handle, id in (await connection.execute(text(f"select handle, id from {table} where tenant_id = :t"),
                                                        {"t": world.tenant_id})).all():
                found[handle] = to_global_id(type_name, id)
    return found


class Admin:
    def __init__(self, gql: GraphQLClient, world: TenantWorld, token: str) -> None:
        self.gql, self.world, self.token = gql, world, token

    async def __call__(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.gql(OPS[name], variables, token=self.token)

    async def create(self, **fields: Any) -> dict[str, Any]:
        body = await self("admin/CreatePromotion", {"input": {
            "storeId": to_global_id("Store", self.world.store_id), "name": fields.pop("name", "Promo"), **fields}})
        assert "errors" not in body, body
        return dict(body["data"]["createPromotion"])


def amounts(cart: dict[str, Any]) -> dict[str, int]:
    return {line["sku"]: line["promotionDiscount"]["amount"] for line in cart["lines"]}


async def apply(shopper: Shopper, cart: str, code: str) -> dict[str, Any]:
    return dict((await shopper.ok("storefront/ApplyPromotionCode", {"cartId": cart, "code": code}))
                ["applyPromotionCode"])


async def remove(shopper: Shopper, cart: str, code: str) -> dict[str, Any]:
    return dict((await shopper.ok("storefront/RemovePromotionCode", {"cartId": cart, "code": code}))
                ["removePromotionCode"])


async def test_every_action_and_condition_on_a_cart(gql: GraphQLClient, shop: TenantWorld, tokens: Tokens,
                                                    owner_engine: AsyncEngine) -> None:
    admin = Admin(gql, shop, tokens("store_admin", shop, stores=["store-0"]))
    known = await ids(owner_engine, shop)
    customer = f"ada-{uuid.uuid4().hex[:8]}"
    shopper = Shopper(gql, shop, tokens("customer", shop, subject=customer))
    cart = await shopper.ready_cart({"NW-TEE-S": 2, "CP-HONEY-12": 1})  # 9000 + 1400, standard shipping 500

    actions = [  # (code, fields, tee, honey, shipping discount)
        ("SUMMER10", {"action": "ORDER_PERCENT", "percent": "10"}, 900, 140, 0),
        ("TENOFF", {"action": "ORDER_FIXED", "amount": 1000, "currencyCode": "usd"}, 865, 135, 0),
        ("HONEYHALF", {"action": "LINES_PERCENT", "percent": "50",
                       "conditions": {"productIds": [known["wildflower-honey"]]}}, 0, 700, 0),
        ("PANTRY3", {"action": "LINES_FIXED", "amount": 300, "currencyCode": "usd",
                     "conditions": {"categoryIds": [known["pantry"]]}}, 0, 300, 0),
        ("SHIPFREE", {"action": "FREE_SHIPPING"}, 0, 0, 500),
        ("TEE1FREE", {"action": "BUY_X_GET_Y", "buyQuantity": 1, "getQuantity": 1,
                      "conditions": {"productIds": [known["merino-tee"]]}}, 4500, 0, 0),
        ("SPEND", {"action": "TIERED", "currencyCode": "usd",
                   "tiers": [{"threshold": 5000, "amount": 500}, {"threshold": 10000, "amount": 1500}]}, 1298, 202, 0),
    ]
    for code, fields, tee, honey, shipping in actions:
        await admin.create(code=code, **fields)
        view = await apply(shopper, cart, code.lower())  # codes are case-insensitive
        assert amounts(view) == {"NW-TEE-S": tee, "CP-HONEY-12": honey}, (code, view)
        [applied] = view["promotions"]
        assert applied["code"] == code and applied["amount"]["amount"] == tee + honey
        assert applied["shippingDiscount"]["amount"] == shipping
        assert sum(line["amount"]["amount"] for line in applied["lines"]) == tee + honey
        totals = {key: value["amount"] for key, value in view["totals"].items()}
        taxable = 10400 - (tee + honey) + 500 - shipping  # tax on the discounted amounts (8.25 %, half up)
        assert totals["discountTotal"] == tee + honey and totals["shippingTotal"] == 500 - shipping
        assert totals["taxTotal"] == (taxable * 825 + 5000) // 10000
        assert totals["total"] == taxable + totals["taxTotal"]
        await remove(shopper, cart, code)

    company = uuid.uuid4()
    async with owner_engine.begin() as connection:
        await connection.execute(text(
            "insert into company (tenant_id, id, legal_name, currency_code, credit_limit, payment_terms) values "
            "(:t, :c, 'Promo Buyers', 'usd', 0, 'net30')"), {"t": shop.tenant_id, "c": company})
    conditions = [  # (conditions, applies) — each on a 10 % code
        ({"minSubtotal": 10400}, True), ({"minSubtotal": 10401}, False),
        ({"productIds": [known["wildflower-honey"]]}, True), ({"productIds": [known["single-origin-coffee"]]}, False),
        ({"categoryIds": [known["pantry"]]}, True), ({"categoryIds": [known["home"]]}, False),
        ({"vendorIds": [known["cedar-pantry"]]}, True), ({"vendorIds": [known["lumen-home"]]}, False),
        ({"customerIds": [customer]}, True), ({"customerIds": ["someone-else"]}, False),
        ({"companyIds": [to_global_id("Company", company)]}, False), ({"firstOrder": True}, True),
    ]
    for index, (condition, applies) in enumerate(conditions):
        code = f"COND{index}"
        await admin.create(code=code, action="ORDER_PERCENT", percent="10", conditions=condition)
        view = await apply(shopper, cart, code)
        assert code in view["promotionCodes"]
        assert (code in [item["code"] for item in view["promotions"]]) is applies, (condition, view)
        if index < len(conditions) - 2:  # the company's and the first-order codes stay for what follows
            await remove(shopper, cart, code)
    # The company's cart gets the company's promotion; a customer with an order no first-order one.
    async with owner_engine.begin() as connection:
        await connection.execute(text("update cart set company_id = :c where id = :id"),
                                 {"c": company, "id": from_global_id(cart)[1]})
        await connection.execute(text(
            "insert into orders (tenant_id, id, store_id, cart_id, customer_id, email, currency_code, status, "
            "subtotal, discount_total, shipping_total, tax_total, total, shipping_address, shipping_option_code) "
            "values (:t, gen_random_uuid(), :s, gen_random_uuid(), :c, 'ada@example.com', 'usd', 'paid', 100, 0, 0, "
            "0, 100, '{}', 'standard')"), {"t": shop.tenant_id, "s": shop.store_id, "c": customer})
    view = (await shopper.ok("storefront/CartPromotions", {"id": cart}))["cart"]
    assert [item["code"] for item in view["promotions"]] == ["COND10"]  # company yes; first order no more


async def test_stacking_and_automatic_promotions_follow_every_cart_change(gql: GraphQLClient, shop: TenantWorld,
                                                                         tokens: Tokens) -> None:
    admin = Admin(gql, shop, tokens("tenant_admin", shop))
    await admin.create(name="Spend 50, save 5 %", action="ORDER_PERCENT", percent="5",
                       conditions={"minSubtotal": 5000})
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"CP-HONEY-12": 1})  # 1400: below the automatic promotion's minimum
    view = (await shopper.ok("storefront/CartPromotions", {"id": cart}))["cart"]
    assert view["promotions"] == [] and view["promotionCodes"] == []
    line = view["lines"][0]["id"]
    view = (await shopper.ok("storefront/UpdateCartLine", {"cartId": cart, "lineId": line, "quantity": 4}))
    view = (await shopper.ok("storefront/CartPromotions", {"id": cart}))["cart"]  # 5600: it applies now
    assert [(item["name"], item["code"], item["amount"]["amount"]) for item in view["promotions"]] == [
        ("Spend 50, save 5 %", None, 280)]
    # Combinable codes stack on it in precedence order (priority, then the larger saving alone) …
    await admin.create(code="FIVEOFF", action="ORDER_FIXED", amount=500, currencyCode="usd")
    view = await apply(shopper, cart, "FIVEOFF")
    assert [item["amount"]["amount"] for item in view["promotions"]] == [500, 255]  # 500 first, then 5 % of 5100
    # … an exclusive code wins alone only when it saves more than they do together.
    await admin.create(code="SOLO10", action="ORDER_PERCENT", percent="10", stacking="EXCLUSIVE")
    view = await apply(shopper, cart, "SOLO10")
    assert [item["amount"]["amount"] for item in view["promotions"]] == [500, 255]
    await admin.create(code="SOLO20", action="ORDER_PERCENT", percent="20", stacking="EXCLUSIVE")
    view = await apply(shopper, cart, "SOLO20")
    assert [(item["code"], item["amount"]["amount"]) for item in view["promotions"]] == [("SOLO20", 1120)]
    assert view["totals"]["discountTotal"]["amount"] == 1120
    # The cart shrinks below every threshold: the automatic promotion goes; the codes stay applied.
    view = (await shopper.ok("storefront/UpdateCartLine", {"cartId": cart, "lineId": line, "quantity": 1}))
    view = (await shopper.ok("storefront/CartPromotions", {"id": cart}))["cart"]
    # 500 off alone now saves more than 20 % of 1400: the combinable code wins over the exclusive one
    assert [item["code"] for item in view["promotions"]] == ["FIVEOFF"] and len(view["promotionCodes"]) == 3
    # The PaymentIntent charges the discounted total.
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert session["amount"] == view["totals"]["total"]


async def test_bad_codes_and_bad_promotions_are_typed(gql: GraphQLClient, shop: TenantWorld, other_world: TenantWorld,
                                                      tokens: Tokens, owner_engine: AsyncEngine) -> None:
    admin = Admin(gql, shop, tokens("tenant_admin", shop))
    now = datetime.now(UTC)
    await admin.create(code="LATE", action="ORDER_PERCENT", percent="10", endsAt=(now - timedelta(days=1)).isoformat(),
                       startsAt=(now - timedelta(days=9)).isoformat())
    await admin.create(code="EARLY", action="ORDER_PERCENT", percent="10",
                       startsAt=(now + timedelta(days=1)).isoformat())
    used = await admin.create(code="USEDUP", action="ORDER_PERCENT", percent="10", usageLimit=1)
    async with owner_engine.begin() as connection:
        await connection.execute(text("update promotion set times_used = 1 where id = :id"),
                                 {"id": from_global_id(used["id"])[1]})
        await connection.execute(text(
            "insert into promotion (tenant_id, id, store_id, name, code, action, percent) values "
            "(:t, gen_random_uuid(), :s, 'Elsewhere', 'OTHERTENANT', 'order_percent', 10)"),
            {"t": other_world.tenant_id, "s": other_world.store_id})
    shopper = Shopper(gql, shop)
    cart = (await shopper.ok("storefront/CreateCart"))["createCart"]["id"]
    late = await shopper("storefront/ApplyPromotionCode", {"cartId": cart, "code": "late"})
    early = await shopper("storefront/ApplyPromotionCode", {"cartId": cart, "code": "EARLY"})
    assert error_codes(late) == ["PROMOTION_EXPIRED"] and late["errors"][0]["extensions"]["reason"] == "expired"
    assert error_codes(early) == ["PROMOTION_EXPIRED"]
    assert early["errors"][0]["extensions"]["reason"] == "not_started"
    assert "not started" in early["errors"][0]["message"]
    assert error_codes(await shopper("storefront/ApplyPromotionCode", {"cartId": cart, "code": "USEDUP"})) == [
        "PROMOTION_EXHAUSTED"]
    for code in ("NOSUCHCODE", "OTHERTENANT"):  # unknown, or another tenant's: the same NOT_FOUND
        assert error_codes(await shopper("storefront/ApplyPromotionCode", {"cartId": cart, "code": code})) == [
            "NOT_FOUND"]
    assert error_codes(await shopper("storefront/RemovePromotionCode", {"cartId": cart, "code": "LATE"})) == [
        "NOT_FOUND"]
    store = to_global_id("Store", shop.store_id)
    for fields, field in (({"action": "ORDER_PERCENT", "percent": "150"}, "percent"),
                          ({"action": "ORDER_PERCENT", "percent": "0"}, "percent"),
                          ({"action": "ORDER_FIXED", "amount": 100}, "currencyCode"),
                          ({"action": "ORDER_PERCENT", "percent": "5", "funding": "VENDOR"}, "funding"),
                          ({"action": "TIERED", "currencyCode": "usd", "tiers": [{"threshold": 100, "amount": 500}]},
                           "tiers")):
        body = await admin("admin/CreatePromotion", {"input": {"storeId": store, "name": "Bad", **fields}})
        assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == field, body
    await admin.create(code="ALLFREE", action="ORDER_PERCENT", percent="100")
    await admin.create(code="SHIPFREE", action="FREE_SHIPPING")
    free = await Shopper(gql, shop).ready_cart({"CP-HONEY-12": 1})
    await apply(shopper, free, "ALLFREE")
    view = await apply(shopper, free, "SHIPFREE")
    assert view["totals"]["total"]["amount"] == 0
    nothing = await shopper("storefront/StartCheckout", {"cartId": free})
    assert error_codes(nothing) == ["BAD_USER_INPUT"] and nothing["errors"][0]["extensions"]["field"] == "code"
    twin = await admin("admin/CreatePromotion", {"input": {"storeId": store, "name": "Twin", "code": "usedup",
                                                           "action": "ORDER_PERCENT", "percent": "5"}})
    assert error_codes(twin) == ["CONFLICT"]  # unique per store, whatever the case


async def test_vendor_promotions_their_products_only_and_the_stores_approval(
        gql: GraphQLClient, shop: TenantWorld, tokens: Tokens, owner_engine: AsyncEngine) -> None:
    known = await ids(owner_engine, shop)
    store = to_global_id("Store", shop.store_id)
    admin = Admin(gql, shop, tokens("store_admin", shop, stores=["store-0"]))
    vendor = Admin(gql, shop, tokens("vendor_admin", shop, vendor="lumen-home"))
    foreign = await vendor("admin/CreatePromotion", {"input": {
        "storeId": store, "vendorId": known["lumen-home"], "name": "Not mine", "action": "LINES_PERCENT",
        "percent": "10", "conditions": {"productIds": [known["merino-tee"]]}}})
    assert error_codes(foreign) == ["FORBIDDEN"]
    as_other = await vendor("admin/CreatePromotion", {"input": {
        "storeId": store, "vendorId": known["northwind-outfitters"], "name": "Theirs", "action": "ORDER_PERCENT",
        "percent": "10"}})
    assert error_codes(as_other) == ["FORBIDDEN"]
    assert error_codes(await vendor("admin/SetPromotionSettings", {"storeId": store,
                                                                   "vendorApprovalRequired": False})) == ["FORBIDDEN"]
    settings = await admin("admin/SetPromotionSettings", {"storeId": store, "vendorApprovalRequired": True})
    assert settings["data"]["setPromotionSettings"]["vendorApprovalRequired"] is True
    created = await vendor.create(vendorId=known["lumen-home"], name="Candle week", code="CANDLES",
                                  action="LINES_PERCENT", percent="10", funding="VENDOR",
                                  conditions={"productIds": [known["beeswax-candle"]]})
    assert created["status"] == "PENDING_APPROVAL" and created["funding"]["funding"] == "VENDOR"
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"LU-CANDLE": 1})
    assert error_codes(await shopper("storefront/ApplyPromotionCode", {"cartId": cart, "code": "CANDLES"})) == [
        "NOT_FOUND"]
    assert error_codes(await vendor("admin/ApprovePromotion", {"id": created["id"]})) == ["FORBIDDEN"]
    approved = await admin("admin/ApprovePromotion", {"id": created["id"]})
    assert approved["data"]["approvePromotion"]["status"] == "ACTIVE"
    assert amounts(await apply(shopper, cart, "CANDLES")) == {"LU-CANDLE": 240}
    # A vendor's change goes back to approval; the store's admins see usage and funding, shoppers never.
    changed = await vendor("admin/UpdatePromotion", {"id": created["id"], "input": {"percent": "15"}})
    assert changed["data"]["updatePromotion"]["status"] == "PENDING_APPROVAL"
    listed = await vendor("vendor/VendorPromotions", {"vendorId": known["lumen-home"], "first": 10})
    assert [node["code"] for node in listed["data"]["promotions"]["nodes"]] == ["CANDLES"]
    await admin.create(name="Everyone saves", action="ORDER_PERCENT", percent="1")
    public = await gql(OPS["admin/Promotions"], {"first": 10}, key=shop.key)
    assert [node["name"] for node in public["data"]["promotions"]["nodes"]] == ["Everyone saves"]
    assert public["data"]["promotions"]["nodes"][0]["usage"] is None
    assert set(error_codes(public)) == {"FORBIDDEN"}  # usage and funding are guarded fields
    spare = await vendor.create(vendorId=known["lumen-home"], name="Never used", action="ORDER_PERCENT", percent="1")
    deleted = await vendor("admin/DeletePromotion", {"id": spare["id"]})
    assert deleted["data"]["deletePromotion"] == spare["id"]
    assert error_codes(await vendor("admin/DeletePromotion", {"id": spare["id"]})) == ["NOT_FOUND"]
    archived = await admin("admin/ArchivePromotion", {"id": created["id"]})
    assert archived["data"]["archivePromotion"]["status"] == "ARCHIVED"
    assert error_codes(await admin("admin/UpdatePromotion", {"id": created["id"], "input": {"name": "x"}})) == [
        "INVALID_STATE_TRANSITION"]
    # Every change is in the audit log, with its mutation, actor and before/after.
    audit = await gql(OPS["admin/AuditLog"], {"entityKind": "promotion",
                                               "entityId": str(from_global_id(created["id"])[1]), "first": 20},
                      token=tokens("tenant_admin", shop))
    actions = [node["action"] for node in reversed(audit["data"]["auditLog"]["nodes"])]
    assert actions == ["createPromotion", "approvePromotion", "updatePromotion", "archivePromotion"], audit
    settings_audit = await gql(OPS["admin/AuditLog"], {"entityKind": "promotion_settings", "first": 5},
                               token=tokens("tenant_admin", shop))
    assert [node["action"] for node in settings_audit["data"]["auditLog"]["nodes"]] == ["setPromotionSettings"]


LEDGER = """
select l.sku, t.kind, t.line_amount, t.commission_amount, t.vendor_amount, t.gross_amount, t.discount_amount,
       t.platform_discount, t.vendor_discount, t.vendor_order_id
from commission_transaction t join order_line l on l.id = t.order_line_id and l.tenant_id = t.tenant_id
where t.order_id = :o order by l.sku, t.kind, t.created_at"""


VENDOR_LEDGER = """query($vendorId: ID!) { ledgerEntries(vendorId: $vendorId, first: 10) { nodes {
  lineAmount { amount } commissionAmount { amount } vendorAmount { amount }
  promotion { gross { amount } discount { amount } platformFunded { amount } vendorFunded { amount } } } } }"""


async def test_funding_across_two_vendors_keeps_the_ledger_and_a_refund_exact(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, tokens: Tokens, fake_stripe: FakeStripe,
        owner_engine: AsyncEngine) -> None:
    known = await ids(owner_engine, shop)
    admin = Admin(gql, shop, tokens("store_admin", shop, stores=["store-0"]))
    northwind = Admin(gql, shop, tokens("vendor_admin", shop, vendor="northwind-outfitters"))
    lumen = Admin(gql, shop, tokens("vendor_admin", shop, vendor="lumen-home"))
    tees = await northwind.create(vendorId=known["northwind-outfitters"], name="Tees 20 %", code="TEES20",
                                  action="LINES_PERCENT", percent="20", funding="VENDOR",
                                  conditions={"productIds": [known["merino-tee"]]})
    everyone = await admin.create(name="Platform 10 %", action="ORDER_PERCENT", percent="10")
    candles = await lumen.create(vendorId=known["lumen-home"], name="Candles 4 off, half each", action="LINES_FIXED",
                                 amount=400, currencyCode="usd", funding="SPLIT", vendorSharePercent="50",
                                 conditions={"productIds": [known["beeswax-candle"]]})
    shopper = Shopper(gql, shop)
    cart = await shopper.ready_cart({"NW-TEE-S": 2, "LU-CANDLE": 1})  # 9000 + 2400
    view = await apply(shopper, cart, "tees20")
    # Precedence: tees 1800 alone > platform 10 % (1140) > candles 400. Tees: 1800, then 10 % of what is left
    # (7200 + 2400 → 960: 720 and 240), then 400 off the candle.
    assert [(item["name"], item["amount"]["amount"]) for item in view["promotions"]] == [
        ("Tees 20 %", 1800), ("Platform 10 %", 960), ("Candles 4 off, half each", 400)]
    assert amounts(view) == {"NW-TEE-S": 2520, "LU-CANDLE": 640}
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    total = 6480 + 1760 + 500 + 721  # 8.25 % of 8740 = 721.05
    assert session["amount"]["amount"] == total == fake_stripe.intents[session["paymentIntentId"]]["amount"]
    paid = fake_stripe.pay(session["paymentIntentId"])
    assert (await send_event(http, fake_stripe, "payment_intent.succeeded", paid)).status_code == 200
    order = session["orderId"]
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text(LEDGER), {"o": from_global_id(order)[1]})).all()
        parts = {row.vendor_order_id: (row.subtotal, row.discount_total) for row in (await connection.execute(text(
            "select id as vendor_order_id, subtotal, discount_total from vendor_order where order_id = :o"),
            {"o": from_global_id(order)[1]})).all()}
    # (sku, kind, paid, commission, vendor share, gross, discount, platform-funded, vendor-funded)
    # Tee: the commission (2.5 %) is priced on 9000 − 1800 (the vendor's part): 180; the vendor keeps 7200 − 180;
    # the platform funds 720 of its 180 commission (−540). Candle: base 2400 − 200 → 55; 2145; 55 − 440.
    assert [tuple(row[:9]) for row in rows] == [
        ("LU-CANDLE", "sale", 1760, -385, 2145, 2400, 640, 440, 200),
        ("NW-TEE-S", "sale", 6480, -540, 7020, 9000, 2520, 720, 1800)]
    assert len(parts) == 2
    for row in rows:  # each vendor order's ledger: gross, discount and shares add up to what was paid, exactly
        subtotal, discount = parts[row.vendor_order_id]
        assert (row.gross_amount, row.discount_amount) == (subtotal, discount)
        assert row.commission_amount + row.vendor_amount == row.line_amount == subtotal - discount
        assert row.platform_discount + row.vendor_discount == discount
    report = await admin("admin/PromotionReport", {"id": everyone["id"]})
    [figures] = report["data"]["promotionReport"]["currencies"]
    assert (figures["uses"], figures["discount"]["amount"], figures["platformFunded"]["amount"],
            figures["vendorFunded"]["amount"], figures["revenue"]["amount"]) == (1, 960, 960, 0, total)
    [split] = (await lumen("admin/PromotionReport", {"id": candles["id"]}))["data"]["promotionReport"]["currencies"]
    assert (split["platformFunded"]["amount"], split["vendorFunded"]["amount"]) == (200, 200)
    [mine] = (await northwind("admin/PromotionReport", {"id": tees["id"]}))["data"]["promotionReport"]["currencies"]
    assert mine["vendorFunded"]["amount"] == 1800
    assert error_codes(await northwind("admin/PromotionReport", {"id": everyone["id"]})) == ["FORBIDDEN"]
    entries = await northwind.gql(VENDOR_LEDGER, {"vendorId": known["northwind-outfitters"]}, token=northwind.token)
    [entry] = entries["data"]["ledgerEntries"]["nodes"]  # the vendor sees its sale's funding
    assert (entry["lineAmount"]["amount"], entry["commissionAmount"]["amount"], entry["vendorAmount"]["amount"]) == \
        (6480, -540, 7020)
    assert {key: value["amount"] for key, value in entry["promotion"].items()} == {
        "gross": 9000, "discount": 2520, "platformFunded": 720, "vendorFunded": 1800}

    # A refund of one discounted tee gives back exactly its discounted share, and reverses exactly its part of the
    # commission (negative: the platform funded more than it earned) and of the vendor's share.
    sold = await gql("query($id: ID!) { order(id: $id) { lines { id sku total { amount } promotionDiscount { amount } "
                     "} } }", {"id": order}, token=admin.token)
    tee = next(line for line in sold["data"]["order"]["lines"] if line["sku"] == "NW-TEE-S")
    assert (tee["total"]["amount"], tee["promotionDiscount"]["amount"]) == (6480, 2520)
    body = await admin("admin/RefundOrder", {"orderId": order, "input": {"lines": [{"lineId": tee["id"],
                                                                                    "quantity": 1}]}})
    assert body["data"]["refundOrder"]["status"] == "SUCCEEDED", body
    share = reversed_share(6480, -540, 2, 0, 1)
    assert (share.commission, share.vendor) == (-270, 3510)
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text(LEDGER), {"o": from_global_id(order)[1]})).all()
    assert ("NW-TEE-S", "reversal", -3240, 270, -3510) in [tuple(row[:5]) for row in rows]
    done = await admin("admin/UpdateOrderStatus", {"id": order, "status": "REFUNDED"})
    assert done["data"]["updateOrderStatus"]["status"] == "REFUNDED", done
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text(LEDGER), {"o": from_global_id(order)[1]})).all()
    for sku in ("NW-TEE-S", "LU-CANDLE"):  # every sale reversed exactly, across both vendors
        assert sum(row.commission_amount for row in rows if row.sku == sku) == 0
        assert sum(row.vendor_amount for row in rows if row.sku == sku) == 0


async def test_many_buyers_racing_for_the_last_use_get_one_order_and_cancel_releases_it(
        gql: GraphQLClient, shop: TenantWorld, tokens: Tokens, fake_stripe: FakeStripe,
        owner_engine: AsyncEngine) -> None:
    admin = Admin(gql, shop, tokens("tenant_admin", shop))
    promotion = await admin.create(code="LASTONE", action="ORDER_PERCENT", percent="10", usageLimit=1)
    shoppers = [Shopper(gql, shop) for _ in range(4)]
    sessions = []
    for shopper in shoppers:
        cart = await shopper.ready_cart({"CP-HONEY-12": 1})
        assert amounts(await apply(shopper, cart, "LASTONE")) == {"CP-HONEY-12": 140}
        session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
        fake_stripe.pay(session["paymentIntentId"])
        sessions.append((shopper, cart, session))
    results = await asyncio.gather(*(shopper("storefront/CompleteCheckout", {
        "cartId": cart, "accessToken": session["orderAccessToken"]}) for shopper, cart, session in sessions))
    orders = [result["data"]["completeCheckout"]["id"] for result in results if "errors" not in result]
    refused = [result for result in results if "errors" in result]
    assert len(orders) == 1 and len(refused) == 3, results
    for result in refused:  # paid, but the last use was gone: refunded, and told why
        assert error_codes(result) == ["PAYMENT_FAILED"] and "no uses left" in result["errors"][0]["message"]
    listed = await admin("admin/Promotions", {"first": 50})
    usage = next(node["usage"] for node in listed["data"]["promotions"]["nodes"] if node["id"] == promotion["id"])
    assert usage == {"timesUsed": 1, "usageLimit": 1, "perCustomerLimit": None}
    async with owner_engine.connect() as connection:
        assert (await connection.execute(text("select count(*) from promotion_redemption where tenant_id = :t"),
                                         {"t": shop.tenant_id})).scalar_one() == 1
    canceled = await admin("admin/UpdateOrderStatus", {"id": orders[0], "status": "CANCELED"})
    assert canceled["data"]["updateOrderStatus"]["status"] == "CANCELED", canceled
    listed = await admin("admin/Promotions", {"first": 50})
    usage = next(node["usage"] for node in listed["data"]["promotions"]["nodes"] if node["id"] == promotion["id"])
    assert usage["timesUsed"] == 0  # released: the code can be used again
    report = await admin("admin/PromotionReport", {"id": promotion["id"]})
    assert report["data"]["promotionReport"]["currencies"] == []
    used = await admin("admin/DeletePromotion", {"id": promotion["id"]})
    assert error_codes(used) == ["CONFLICT"]  # a used promotion is archived, never deleted


@pytest.fixture
def stripe_client(settings: Any) -> Any:
    return create_stripe_client(settings)


@pytest.fixture
async def app_engine(database_url: str) -> Any:
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def test_a_subscription_carries_a_promotion_for_n_renewals(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    admin = Admin(gql, shop, tokens("tenant_admin", shop))
    plan = await create_plan(gql, admin.token, variant)  # 2500 a month after a 14-day trial
    await admin.create(code="TWOMONTHS", action="ORDER_PERCENT", percent="20", maxCycles=2)
    customer = tokens("customer", shop, subject=f"sub-{uuid.uuid4().hex[:8]}")
    body = await subscribe(gql, shop, customer, plan["id"])
    assert "errors" not in body, body
    subscription = body["data"]["subscribe"]["id"]
    bad = await gql(OPS["storefront/ApplySubscriptionPromotion"], {"subscriptionId": subscription, "code": "NOPE"},
                    token=customer, key=shop.key)
    assert error_codes(bad) == ["NOT_FOUND"]
    carried = await gql(OPS["storefront/ApplySubscriptionPromotion"],
                        {"subscriptionId": subscription, "code": "twomonths"}, token=customer, key=shop.key)
    assert carried["data"]["applySubscriptionPromotion"]["maxCycles"] == 2, carried
    charged = []
    for _ in range(3):
        [mine] = await my_subscriptions(gql, shop, customer)
        due = datetime.fromisoformat(mine["currentPeriodEnd"]) + timedelta(hours=1)
        ran = await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id,
                                           clock=lambda due=due: due)
        assert ran["paid"] == 1, ran
        [mine] = await my_subscriptions(gql, shop, customer)
        charged.append(mine["cycles"]["nodes"][0]["amount"]["amount"])
    assert charged == [2165, 2165, 2706]  # 20 % off the first two renewals, taxed after it (2000 × 1.0825)


async def test_a_customer_uses_a_code_as_often_as_it_allows(gql: GraphQLClient, http: httpx.AsyncClient,
                                                           shop: TenantWorld, tokens: Tokens,
                                                           fake_stripe: FakeStripe) -> None:
    admin = Admin(gql, shop, tokens("tenant_admin", shop))
    await admin.create(code="ONCEEACH", action="ORDER_PERCENT", percent="10", perCustomerLimit=1)
    ada = Shopper(gql, shop, tokens("customer", shop, subject=f"ada-{uuid.uuid4().hex[:8]}"))
    cart = await ada.ready_cart({"CP-HONEY-12": 1})
    await apply(ada, cart, "ONCEEACH")
    session = (await ada.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    paid = fake_stripe.pay(session["paymentIntentId"])
    assert (await send_event(http, fake_stripe, "payment_intent.succeeded", paid)).status_code == 200
    again = await ada.ready_cart({"CP-HONEY-12": 1})
    refused = await ada("storefront/ApplyPromotionCode", {"cartId": again, "code": "onceeach"})
    assert error_codes(refused) == ["PROMOTION_EXHAUSTED"]
    assert refused["errors"][0]["extensions"]["limit"] == "per_customer_limit"
    other = Shopper(gql, shop, tokens("customer", shop, subject=f"bob-{uuid.uuid4().hex[:8]}"))
    assert amounts(await apply(other, await other.ready_cart({"CP-HONEY-12": 1}), "ONCEEACH")) == {
        "CP-HONEY-12": 140}


async def test_a_cart_reads_its_promotions_in_statements_that_do_not_grow_with_them(
        gql: GraphQLClient, shop: TenantWorld, tokens: Tokens, owner_engine: AsyncEngine, server: Any) -> None:
    known = await ids(owner_engine, shop)
    admin = Admin(gql, shop, tokens("tenant_admin", shop))
    customer = f"n1-{uuid.uuid4().hex[:8]}"
    shopper = Shopper(gql, shop, tokens("customer", shop, subject=customer))
    cart = await shopper.ready_cart({"NW-TEE-S": 1, "CP-HONEY-12": 2, "LU-CANDLE": 1})

    async def statements() -> int:
        before = server.statements.count
        await shopper.ok("storefront/CartPromotions", {"id": cart})
        return int(server.statements.count - before)

    every_condition = {"categoryIds": [known["pantry"]], "firstOrder": True, "customerIds": [customer]}
    none = await statements()
    await admin.create(name="One", action="ORDER_PERCENT", percent="1", conditions=every_condition,
                       perCustomerLimit=5, code="ONE")
    await apply(shopper, cart, "ONE")
    one = await statements()
    assert one - none <= 5  # the codes, per-customer uses, categories, first order, the discounted shipping quote
    for index in range(9):
        await admin.create(name=f"More {index}", action="LINES_PERCENT", percent="1", conditions=every_condition,
                           perCustomerLimit=5, code=f"MORE{index}")
        await apply(shopper, cart, f"MORE{index}")
    view = (await shopper.ok("storefront/CartPromotions", {"id": cart}))["cart"]
    assert len(view["promotions"]) == 10
    assert await statements() == one
