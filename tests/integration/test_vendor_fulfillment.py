"""Vendors fulfil their own vendor orders over HTTP: pickup addresses (validated) used as the Fleetbase pickup,
processing → ready → shipped with tracking numbers, Fleetbase events moving a handed-over part, the order's
fulfilment derived from its parts and seen by the store; another vendor's order is NOT_FOUND."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cityos.db.engines import create_app_engine
from cityos.graphql.core.relay import to_global_id
from tests.commerce_flow import OPS, Shopper, paid_order, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes
from tests.fakes.fleetbase import FakeFleetbase
from tests.fakes.stripe import FakeStripe
from tests.integration.test_fulfillment import dispatch, post, rows
from tests.integration.test_subscriptions import Client

__all__ = ["shop"]
PICKUP = {"company": "Cedar Pantry dock", "address1": "200 Harbor Way", "city": "Oakland", "province": "ca",
          "postalCode": "94607", "countryCode": "US", "phone": "+1 510 555 0100"}


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


class Caller:
    def __init__(self, gql: GraphQLClient, token: str) -> None:
        self.gql, self.token = gql, token

    async def __call__(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.gql(OPS[name], variables, token=self.token)

    async def ok(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await self(name, variables)
        assert "errors" not in body, (name, body)
        return body["data"]


async def parts_of(owner_engine, shop: TenantWorld) -> dict[str, tuple[str, str]]:
    """vendor handle → (vendor id, vendor order id), global ids (read, not written)."""
    found = await rows(owner_engine, "select v.handle, v.id, vo.id from vendor_order vo join vendor v on "
                                     "v.id = vo.vendor_id and v.tenant_id = vo.tenant_id where vo.tenant_id = :t",
                       t=shop.tenant_id)
    return {handle: (to_global_id("Vendor", vendor), to_global_id("VendorOrder", part))
            for handle, vendor, part in found}


async def test_vendors_fulfil_their_own_parts_and_the_order_follows(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, tokens: Tokens, fake_stripe: FakeStripe,
        fake_fleetbase: FakeFleetbase, owner_engine, app_engine, settings) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 2, "CP-HONEY-12": 1})
    parts = await parts_of(owner_engine, shop)
    lumen = Caller(gql, tokens("vendor_user", shop, vendor="lumen-home"))
    cedar = Caller(gql, tokens("vendor_admin", shop, vendor="cedar-pantry"))
    store = Caller(gql, tokens("store_admin", shop, stores=[str(shop.store_id)]))
    lumen_part, cedar_part = parts["lumen-home"][1], parts["cedar-pantry"][1]

    # Another vendor's part: not found, whatever the step; nothing changes.
    for name, variables in (("vendor/UpdateVendorOrderFulfillment", {"id": cedar_part, "status": "PROCESSING"}),
                            ("vendor/RequestVendorOrderPickup", {"id": cedar_part})):
        assert error_codes(await lumen(name, variables)) == ["NOT_FOUND"]
    # Forward only; shipping needs the carrier and its tracking number.
    moved = await lumen.ok("vendor/UpdateVendorOrderFulfillment", {"id": lumen_part, "status": "PROCESSING"})
    assert moved["updateVendorOrderFulfillment"]["fulfillmentStatus"] == "PROCESSING"
    view = (await store.ok("admin/OrderFulfillment", {"id": order}))["order"]
    assert (view["status"], view["fulfillmentStatus"]) == ("PAID", "PROCESSING")
    no_tracking = await lumen("vendor/UpdateVendorOrderFulfillment", {"id": lumen_part, "status": "SHIPPED"})
    assert error_codes(no_tracking) == ["BAD_USER_INPUT"]
    await lumen.ok("vendor/UpdateVendorOrderFulfillment", {"id": lumen_part, "status": "READY"})
    back = await lumen("vendor/UpdateVendorOrderFulfillment", {"id": lumen_part, "status": "PROCESSING"})
    assert error_codes(back) == ["INVALID_STATE_TRANSITION"]
    shipped = (await lumen.ok("vendor/UpdateVendorOrderFulfillment", {
        "id": lumen_part, "status": "SHIPPED", "carrier": "ups", "trackingNumber": "1Z999AA10123456784"}))
    assert shipped["updateVendorOrderFulfillment"]["trackingNumber"] == "1Z999AA10123456784"
    assert shipped["updateVendorOrderFulfillment"]["shippedAt"]
    view = (await store.ok("admin/OrderFulfillment", {"id": order}))["order"]
    assert (view["status"], view["fulfillmentStatus"]) == ("PAID", "PARTIALLY_SHIPPED")

    # Cedar hands its part to Fleetbase, which collects at its (validated) pickup address.
    missing = await cedar("vendor/RequestVendorOrderPickup", {"id": cedar_part})
    assert error_codes(missing) == ["BAD_USER_INPUT"] and "pickup address" in missing["errors"][0]["message"]
    bad_zip = await cedar("vendor/SetVendorPickupAddress", {"vendorId": parts["cedar-pantry"][0],
                                                            "address": {**PICKUP, "postalCode": "9460"}})
    assert error_codes(bad_zip) == ["BAD_USER_INPUT"]
    others = await lumen("vendor/SetVendorPickupAddress", {"vendorId": parts["cedar-pantry"][0], "address": PICKUP})
    assert error_codes(others) == ["FORBIDDEN"]
    address = await cedar.ok("vendor/SetVendorPickupAddress", {"vendorId": parts["cedar-pantry"][0],
                                                               "address": PICKUP})
    assert address["setVendorPickupAddress"]["pickupAddress"]["province"] == "CA"
    handed = (await cedar.ok("vendor/RequestVendorOrderPickup", {"id": cedar_part}))["requestVendorOrderPickup"]
    assert (handed["fulfillmentStatus"], handed["carrier"]) == ("READY", "fleetbase")
    again = await cedar("vendor/RequestVendorOrderPickup", {"id": cedar_part})
    assert error_codes(again) == ["BAD_USER_INPUT"]
    await dispatch(app_engine, settings)  # one courier order per vendor order, never a second one
    shipments = await rows(owner_engine, "select s.fleetbase_order_id, v.handle from shipment s join vendor v on "
                                         "v.id = s.vendor_id where s.tenant_id = :t", t=shop.tenant_id)
    assert sorted(handle for _, handle in shipments) == ["cedar-pantry", "lumen-home"]
    cedar_fleetbase = next(fleetbase for fleetbase, handle in shipments if handle == "cedar-pantry")
    pickup = fake_fleetbase.orders[cedar_fleetbase]["payload"]["pickup"]
    assert (pickup["name"], pickup["street1"], pickup["city"], pickup["postal_code"], pickup["country"]) == \
        ("Cedar Pantry", "200 Harbor Way", "Oakland", "94607", "US")

    # Fleetbase collects: cedar's part ships; with every part shipped the paid order is fulfilled.
    body, signature = fake_fleetbase.webhook("order.dispatched", cedar_fleetbase)
    assert (await post(http, body, signature)).status_code == 200
    view = (await store.ok("admin/OrderFulfillment", {"id": order}))["order"]
    parts_view = {part["vendor"]["handle"]: part for part in view["vendorOrders"]}
    assert parts_view["cedar-pantry"]["fulfillmentStatus"] == "SHIPPED"
    assert parts_view["cedar-pantry"]["trackingNumber"] == parts_view["cedar-pantry"]["shipment"]["trackingNumber"]
    assert (view["status"], view["fulfillmentStatus"]) == ("FULFILLED", "SHIPPED")
    done, signature = fake_fleetbase.webhook("order.completed", cedar_fleetbase)
    assert (await post(http, done, signature)).status_code == 200
    view = (await store.ok("admin/OrderFulfillment", {"id": order}))["order"]
    assert view["fulfillmentStatus"] == "PARTIALLY_DELIVERED"
    await lumen.ok("vendor/UpdateVendorOrderFulfillment", {"id": lumen_part, "status": "DELIVERED"})
    view = (await store.ok("admin/OrderFulfillment", {"id": order}))["order"]
    assert view["fulfillmentStatus"] == "DELIVERED"
    assert all(part["deliveredAt"] for part in view["vendorOrders"])


async def test_a_canceled_order_is_not_fulfilled(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld,
                                                 tokens: Tokens, fake_stripe: FakeStripe, owner_engine) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
    admin = Caller(gql, tokens("tenant_admin", shop))
    await admin.ok("admin/UpdateOrderStatus", {"id": order, "status": "CANCELED"})
    part = (await parts_of(owner_engine, shop))["lumen-home"][1]
    refused = await admin("vendor/UpdateVendorOrderFulfillment", {"id": part, "status": "PROCESSING"})
    assert error_codes(refused) == ["INVALID_STATE_TRANSITION"]


FULFILLMENT_EVENTS = ("subscription { vendorOrderEvents { type status orderStatus fulfillmentStatus "
                      "orderFulfillmentStatus trackingNumber vendorOrderId } }")
STORE_FULFILLMENT = ("subscription($s: ID!) { storeOrderEvents(storeId: $s) { type fulfillmentStatus "
                     "orderFulfillmentStatus vendorOrderId } }")


async def test_fulfilment_changes_are_live_events(server: Server, gql: GraphQLClient, http: httpx.AsyncClient,
                                                  shop: TenantWorld, tokens: Tokens, fake_stripe: FakeStripe,
                                                  owner_engine) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    parts = await parts_of(owner_engine, shop)
    lumen_token = tokens("vendor_user", shop, vendor="lumen-home")
    lumen = await Client.connect(server.url, lumen_token)
    cedar = await Client.connect(server.url, tokens("vendor_user", shop, vendor="cedar-pantry"))
    admin = await Client.connect(server.url, tokens("store_admin", shop, stores=["store-0"]))
    try:
        await lumen.subscribe(FULFILLMENT_EVENTS)
        await cedar.subscribe(FULFILLMENT_EVENTS)
        await admin.subscribe(STORE_FULFILLMENT, {"s": to_global_id("Store", shop.store_id)})
        await Caller(gql, lumen_token).ok("vendor/UpdateVendorOrderFulfillment", {
            "id": parts["lumen-home"][1], "status": "SHIPPED", "carrier": "ups", "trackingNumber": "1Z-LIVE"})
        live = (await lumen.receive())["payload"]["data"]["vendorOrderEvents"]
        assert live == {"type": "order.fulfillment_changed", "status": "paid", "orderStatus": "PAID",
                        "fulfillmentStatus": "SHIPPED", "orderFulfillmentStatus": "PARTIALLY_SHIPPED",
                        "trackingNumber": "1Z-LIVE", "vendorOrderId": parts["lumen-home"][1]}
        seen = (await admin.receive())["payload"]["data"]["storeOrderEvents"]
        assert (seen["type"], seen["orderFulfillmentStatus"]) == ("order.fulfillment_changed", "PARTIALLY_SHIPPED")
        assert await cedar.nothing_for(1.0)  # another vendor's part
    finally:
        for client in (lumen, cedar, admin):
            await client.close()


async def test_two_vendors_shipping_at_once_fulfil_the_order_once(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                  shop: TenantWorld, tokens: Tokens,
                                                                  fake_stripe: FakeStripe, owner_engine) -> None:
    """Each writer takes the order's lock before its part's, so the last of two concurrent shipments sees the
    other and derives SHIPPED (never a stale PARTIALLY_SHIPPED), and the order becomes FULFILLED once."""
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    parts = await parts_of(owner_engine, shop)
    callers = {handle: Caller(gql, tokens("vendor_admin", shop, vendor=handle)) for handle in parts}
    results = await asyncio.gather(*(callers[handle]("vendor/UpdateVendorOrderFulfillment", {
        "id": part, "status": "SHIPPED", "carrier": "dhl", "trackingNumber": f"JD-{handle}"})
        for handle, (_, part) in parts.items()))
    assert all("errors" not in result for result in results), results
    view = (await Caller(gql, tokens("tenant_admin", shop)).ok("admin/OrderFulfillment", {"id": order}))["order"]
    assert (view["status"], view["fulfillmentStatus"]) == ("FULFILLED", "SHIPPED")
    events = await rows(owner_engine, "select count(*) from audit_log where tenant_id = :t and action = "
                                      "'update_vendor_order_fulfillment'", t=shop.tenant_id)
    assert events == [(2,)]
