"""Shared storefront flow for tests: a seeded shop, a shopper driving the operations, signed Stripe events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cityos.seed import seed_catalog, seed_region
from tests.conftest import GraphQLClient, TenantWorld, make_tenant
from tests.fakes.stripe import FakeStripe
from tests.operations import all_operations

OPS = all_operations()
WEBHOOK = "/api/admin/integrations/stripe/webhook"
ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "address1": "1 Market St", "city": "San Francisco",
           "province": "CA", "postalCode": "94105", "countryCode": "US"}


def usd(amount: int) -> dict[str, Any]:
    """A Money value as the API returns it."""
    return {"amount": amount, "currencyCode": "usd"}


@pytest.fixture
async def shop(owner_engine) -> TenantWorld:
    world = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_region(connection, world.tenant_id)
        await connection.execute(text("update region set tax_rate = 0.0825 where tenant_id = :t"),
                                 {"t": world.tenant_id})
        await seed_catalog(connection, world.tenant_id, world.store_id)
    return world


class Shopper:
    def __init__(self, gql: GraphQLClient, shop: TenantWorld, token: str | None = None) -> None:
        self.gql, self.shop, self.token = gql, shop, token

    async def __call__(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.gql(OPS[name], variables or {}, key=self.shop.key, token=self.token)

    async def ok(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self(name, variables)
        assert "errors" not in body, (name, body)
        return body["data"]

    async def variant(self, sku: str) -> str:
        products = await self.ok("storefront/Products", {"first": 100})
        return next(variant["id"] for product in products["products"]["nodes"]
                    for variant in product["variants"] if variant["sku"] == sku)

    async def ready_cart(self, lines: dict[str, int], option: str = "standard") -> str:
        cart = (await self.ok("storefront/CreateCart", {"input": {"email": "ada@example.com"}}))["createCart"]["id"]
        for sku, quantity in lines.items():
            await self.ok("storefront/AddCartLine", {"cartId": cart, "variantId": await self.variant(sku),
                                                     "quantity": quantity})
        options = (await self.ok("storefront/SetShippingAddress", {"cartId": cart, "address": ADDRESS}))
        chosen = next(o["id"] for o in options["setShippingAddress"]["availableShippingOptions"] if o["code"] == option)
        await self.ok("storefront/SetShippingOption", {"cartId": cart, "shippingOptionId": chosen})
        return cart


async def send_event(http: httpx.AsyncClient, stripe: FakeStripe, event_type: str, intent: dict[str, Any],
                     event_id: str | None = None) -> httpx.Response:
    payload = stripe.event(event_type, intent, event_id)
    return await http.post(WEBHOOK, content=payload, headers={"stripe-signature": stripe.sign(payload),
                                                              "content-type": "application/json"})


async def stock(owner_engine, sku: str, tenant) -> int:
    async with owner_engine.connect() as connection:
        return (await connection.execute(
            text("select inventory_quantity from variant where sku = :s and tenant_id = :t"),
            {"s": sku, "t": tenant})).scalar_one()


async def order_count(owner_engine, tenant) -> int:
    async with owner_engine.connect() as connection:
        return (await connection.execute(text("select count(*) from orders where tenant_id = :t"),
                                         {"t": tenant})).scalar_one()




async def paid_order(shopper: Shopper, http: httpx.AsyncClient, stripe: FakeStripe, lines: dict[str, int],
                     option: str = "standard") -> str:
    """Check a cart out and deliver Stripe's payment_intent.succeeded; returns the order's global id."""
    cart = await shopper.ready_cart(lines, option)
    session = (await shopper.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    response = await send_event(http, stripe, "payment_intent.succeeded", stripe.pay(session["paymentIntentId"]))
    assert response.status_code == 200, response.text
    return str(session["orderId"])
