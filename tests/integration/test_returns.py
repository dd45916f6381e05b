"""Returns over HTTP against the fake Stripe: a buyer asks to return delivered lines within the store's window,
the vendor (or store) approves or rejects, receiving restocks per line and refunds those units; live events."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from cityos.domain.marketplace.rules import units_part
from cityos.domain.orders.rules import tax_shares
from cityos.graphql.core.relay import to_global_id
from tests.commerce_flow import OPS, Shopper, paid_order, shop, stock
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe
from tests.integration.test_refunds import LINES, line_of
from tests.integration.test_subscriptions import Client

__all__ = ["shop"]

STORE_EVENTS = "subscription($s: ID!) { storeOrderEvents(storeId: $s) { type status returnId refundId orderId } }"


async def test_a_buyer_returns_delivered_items_and_gets_the_money_back(
        server: Server, gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe,
        owner_engine, tokens: Tokens) -> None:
    buyer_token = tokens("customer", shop, subject="ada-returns")
    buyer = Shopper(gql, shop, buyer_token)
    order = await paid_order(buyer, http, fake_stripe, {"CP-HONEY-12": 3, "LU-CANDLE": 1})
    admin = tokens("store_admin", shop, stores=["store-0"])
    sold = (await gql(LINES, {"id": order}, token=admin))["data"]["order"]
    honey, candle = line_of(sold, "CP-HONEY-12"), line_of(sold, "LU-CANDLE")
    ask = {"orderId": order, "lines": [{"lineId": honey["id"], "quantity": 2}], "reason": "arrived crystallised"}

    early = await buyer("storefront/RequestReturn", ask)
    assert error_codes(early) == ["BAD_USER_INPUT"]  # not delivered yet
    fulfilled = await gql(OPS["admin/UpdateOrderStatus"], {"id": order, "status": "FULFILLED"}, token=admin)
    assert fulfilled["data"]["updateOrderStatus"]["status"] == "FULFILLED", fulfilled
    stranger = await gql(OPS["storefront/RequestReturn"], ask, key=shop.key,
                         token=tokens("customer", shop, subject="someone-else"))
    assert error_codes(stranger) in (["FORBIDDEN"], ["NOT_FOUND"])
    too_many = await buyer("storefront/RequestReturn", {**ask, "lines": [{"lineId": honey["id"], "quantity": 4}]})
    assert error_codes(too_many) == ["BAD_USER_INPUT"]

    watcher = await Client.connect(server.url, admin)
    try:
        await watcher.subscribe(STORE_EVENTS, {"s": to_global_id("Store", shop.store_id)})
        asked = (await buyer.ok("storefront/RequestReturn", ask))["requestReturn"]
        assert asked["status"] == "REQUESTED" and asked["lines"] == [
            {"orderLineId": honey["id"], "quantity": 2, "restock": None}]
        event = (await watcher.receive())["payload"]["data"]["storeOrderEvents"]
        assert (event["type"], event["status"], event["returnId"]) == ("return.updated", "requested", asked["id"])
    finally:
        await watcher.socket.close()

    async with owner_engine.connect() as connection:
        cedar = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = "
                                               "'cedar-pantry'"), {"t": shop.tenant_id})).scalar_one()
        lumen = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = "
                                               "'lumen-home'"), {"t": shop.tenant_id})).scalar_one()
    other_vendor = await gql(OPS["admin/ApproveReturn"], {"id": asked["id"]},
                             token=tokens("vendor_admin", shop, vendor=str(lumen)))
    assert error_codes(other_vendor) in (["FORBIDDEN"], ["NOT_FOUND"])
    vendor = tokens("vendor_admin", shop, vendor=str(cedar))  # the return is all cedar's lines: cedar decides
    approved = await gql(OPS["admin/ApproveReturn"], {"id": asked["id"], "note": "send them back"}, token=vendor)
    assert approved["data"]["approveReturn"]["status"] == "APPROVED", approved
    twice = await gql(OPS["admin/RejectReturn"], {"id": asked["id"]}, token=vendor)
    assert error_codes(twice) == ["INVALID_STATE_TRANSITION"]

    stock_before = await stock(owner_engine, "CP-HONEY-12", shop.tenant_id)
    received = await gql(OPS["admin/ReceiveReturn"], {"id": asked["id"], "lines": [
        {"lineId": honey["id"], "restock": False}]}, token=vendor)
    settled = received["data"]["receiveReturn"]
    assert settled["status"] == "REFUNDED" and settled["lines"][0]["restock"] is False, received
    assert await stock(owner_engine, "CP-HONEY-12", shop.tenant_id) == stock_before  # not restocked
    refunds = (await gql(OPS["admin/Refunds"], {"orderId": order, "first": 5}, token=admin))["data"]["refunds"]
    refund = refunds["nodes"][0]
    line_tax = tax_shares([line["total"]["amount"] for line in sold["lines"]],
                          sold["totals"]["shippingTotal"]["amount"], sold["totals"]["taxTotal"]["amount"])[0]
    honey_tax = line_tax[sold["lines"].index(honey)]
    assert refund["id"] == settled["refundId"] and refund["returnId"] == asked["id"]
    assert refund["amount"]["amount"] == units_part(4200, 3, 0, 2) + units_part(honey_tax, 3, 0, 2)
    assert fake_stripe.refunds[refund["stripeRefundId"]]["amount"] == refund["amount"]["amount"]

    rest = (await buyer.ok("storefront/RequestReturn", {"orderId": order, "reason": "changed my mind", "lines": [
        {"lineId": honey["id"], "quantity": 1}, {"lineId": candle["id"], "quantity": 1}]}))["requestReturn"]
    rejected = await gql(OPS["admin/RejectReturn"], {"id": rest["id"], "note": "opened candle"}, token=admin)
    assert rejected["data"]["rejectReturn"] == {"id": rest["id"], "status": "REJECTED",
                                                "decisionNote": "opened candle"}
    mine = await buyer.ok("admin/Returns", {"orderId": order, "first": 10})
    assert {node["status"] for node in mine["returns"]["nodes"]} == {"REFUNDED", "REJECTED"}

    store_admin_sets = await gql(OPS["admin/UpdateStore"], {"id": to_global_id("Store", shop.store_id),
                                                            "input": {"returnWindowDays": 0}}, token=admin)
    assert store_admin_sets["data"]["updateStore"]["returnWindowDays"] == 0, store_admin_sets
    bad = await gql(OPS["admin/UpdateStore"], {"id": to_global_id("Store", shop.store_id),
                                               "input": {"returnWindowDays": -1}}, token=admin)
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    closed = await buyer("storefront/RequestReturn", {"orderId": order, "reason": "late", "lines": [
        {"lineId": candle["id"], "quantity": 1}]})
    assert error_codes(closed) == ["BAD_USER_INPUT"]
    assert "return window" in closed["errors"][0]["message"]
