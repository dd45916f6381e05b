"""Shipments through Fleetbase: the outbox written with the paid order, the dispatcher with retries and a dead
letter, signed webhooks moving shipments forward only, cancellation."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from cityos.db.engines import create_app_engine
from cityos.jobs.outbox import dispatch_outbox
from tests.commerce_flow import OPS, Shopper, paid_order, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.fleetbase import FakeFleetbase
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def rows(owner_engine, sql: str, **params) -> list:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def dispatch(app_engine, settings) -> str:
    async with httpx.AsyncClient() as client:
        return await dispatch_outbox(app_engine, settings, client)


async def test_a_paid_order_becomes_one_fleetbase_order_per_vendor(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                   shop: TenantWorld, fake_stripe: FakeStripe,
                                                                   fake_fleetbase: FakeFleetbase, owner_engine,
                                                                   app_engine, settings) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 2, "CP-HONEY-12": 1})
    pending = await rows(owner_engine, "select topic, status from outbox where tenant_id = :t", t=shop.tenant_id)
    assert pending == [("fleetbase.create_order", "pending")] * 2
    await dispatch(app_engine, settings)
    shipments = await rows(owner_engine, "select fleetbase_order_id, tracking_number, status from shipment "
                                         "where tenant_id = :t", t=shop.tenant_id)
    assert len(shipments) == 2
    for fleetbase_id, tracking, status in shipments:
        sent = fake_fleetbase.orders[fleetbase_id]
        assert tracking == sent["tracking_number"] and status == "created"
        assert sent["payload"]["dropoff"]["city"] == "San Francisco"
        assert sent["payload"]["dropoff"]["country"] == "US"
        assert sent["meta"]["tenant_id"] == str(shop.tenant_id)
        assert sent["payload"]["entities"] and sent["payload"]["pickup"]["name"]
    assert await rows(owner_engine, "select distinct status from outbox where tenant_id = :t",
                      t=shop.tenant_id) == [("sent",)]
    await dispatch(app_engine, settings)  # nothing is sent twice
    assert len(await rows(owner_engine, "select id from shipment where tenant_id = :t", t=shop.tenant_id)) == 2


async def test_failures_back_off_then_go_dead(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld,
                                              fake_stripe: FakeStripe, fake_fleetbase: FakeFleetbase, owner_engine,
                                              app_engine, settings, tokens: Tokens) -> None:
    from prometheus_client import REGISTRY

    await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-HONEY-32": 1})
    dead_before = REGISTRY.get_sample_value("cityos_outbox_dead_total", {"topic": "fleetbase.create_order"}) or 0
    for attempt in range(1, 6):
        fake_fleetbase.failures = [503] * 50
        await dispatch(app_engine, settings)
        fake_fleetbase.failures = []
        status, attempts, error, wait = (await rows(
            owner_engine, "select status, attempts, last_error, next_attempt_at > now() from outbox "
                          "where tenant_id = :t", t=shop.tenant_id))[0]
        assert attempts == attempt
        assert error.startswith("Fleetbase 503")
        assert status == ("dead" if attempt == 5 else "pending")
        assert wait is True  # backed off
        async with owner_engine.begin() as connection:  # let time pass
            await connection.execute(text("update outbox set next_attempt_at = now() where tenant_id = :t"),
                                     {"t": shop.tenant_id})
    await dispatch(app_engine, settings)  # a dead row is not retried
    assert await rows(owner_engine, "select status from outbox where tenant_id = :t", t=shop.tenant_id) == [("dead",)]
    assert REGISTRY.get_sample_value("cityos_outbox_dead_total", {"topic": "fleetbase.create_order"}) == dead_before + 1
    # the tenant's admins see it and send it again
    admin = tokens("tenant_admin", shop)
    dead = await gql(OPS["admin/OutboxMessages"], {"status": "DEAD"}, token=admin)
    message = dead["data"]["outboxMessages"]["nodes"][0]
    assert (message["topic"], message["attempts"], message["status"]) == ("fleetbase.create_order", 5, "DEAD")
    assert message["lastError"].startswith("Fleetbase 503")
    vendor = await gql(OPS["admin/OutboxMessages"], {"status": "DEAD"},
                       token=tokens("vendor_admin", shop, vendor="cedar-pantry"))
    assert vendor["data"]["outboxMessages"]["totalCount"] == 0
    retried = await gql(OPS["admin/RetryOutboxMessage"], {"id": message["id"]}, token=admin)
    assert retried["data"]["retryOutboxMessage"]["status"] == "PENDING"
    await dispatch(app_engine, settings)
    assert await rows(owner_engine, "select status from outbox where tenant_id = :t", t=shop.tenant_id) == [("sent",)]


async def shipped(gql, http, shop, fake_stripe, app_engine, settings, owner_engine) -> tuple[str, str]:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-THROW-OAT": 1})
    await dispatch(app_engine, settings)
    fleetbase_id, _shipment = (await rows(owner_engine, "select fleetbase_order_id, id from shipment "
                                                          "where tenant_id = :t", t=shop.tenant_id))[0]
    return order, fleetbase_id


async def post(http: httpx.AsyncClient, body: bytes, signature: str) -> httpx.Response:
    return await http.post("/webhooks/fleetbase", content=body,
                           headers={"signature": signature, "content-type": "application/json"})


async def test_webhooks_move_shipments_forward_only(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld,
                                                    fake_stripe: FakeStripe, fake_fleetbase: FakeFleetbase,
                                                    owner_engine, app_engine, settings) -> None:
    _, fleetbase_id = await shipped(gql, http, shop, fake_stripe, app_engine, settings, owner_engine)
    body, signature = fake_fleetbase.webhook("order.dispatched", fleetbase_id, event_id="event_dispatch")
    assert (await post(http, body, signature)).json()["outcome"] == "shipment picked_up"
    assert (await post(http, body, signature)).json()["duplicate"] is True
    started, signature2 = fake_fleetbase.webhook("order.updated", fleetbase_id, status="started",
                                                 location={"type": "Point", "coordinates": [-122.39, 37.79]})
    assert (await post(http, started, signature2)).json()["outcome"] == "shipment in_transit"
    done, signature3 = fake_fleetbase.webhook("order.completed", fleetbase_id)
    assert (await post(http, done, signature3)).json()["outcome"] == "shipment delivered"
    late, signature4 = fake_fleetbase.webhook("order.dispatched", fleetbase_id)  # reordered delivery
    assert (await post(http, late, signature4)).json()["outcome"] == "ignored: shipment already delivered"
    trail = await rows(owner_engine, "select status, location is not null from tracking_event where tenant_id = :t "
                                     "order by occurred_at, created_at", t=shop.tenant_id)
    assert trail == [("picked_up", False), ("in_transit", True), ("delivered", False)]
    assert (await post(http, body, "0" * 64)).status_code == 400
    assert (await post(http, body.replace(b"dispatched", b"completed"), signature)).status_code == 400
    assert (await http.post("/webhooks/fleetbase", content=body)).status_code == 400


async def test_canceling_the_order_cancels_the_fleetbase_order(gql: GraphQLClient, http: httpx.AsyncClient,
                                                               shop: TenantWorld, fake_stripe: FakeStripe,
                                                               fake_fleetbase: FakeFleetbase, owner_engine,
                                                               app_engine, settings, tokens: Tokens) -> None:
    order, fleetbase_id = await shipped(gql, http, shop, fake_stripe, app_engine, settings, owner_engine)
    admin = tokens("tenant_admin", shop)
    body = await gql(OPS["admin/UpdateOrderStatus"], {"id": order, "status": "CANCELED"}, token=admin)
    assert error_codes(body) == []
    await dispatch(app_engine, settings)
    assert fleetbase_id in fake_fleetbase.canceled


async def test_a_refused_fleetbase_event_is_kept_for_the_tenants_admins(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                       shop: TenantWorld, fake_stripe: FakeStripe,
                                                                       fake_fleetbase: FakeFleetbase, owner_engine,
                                                                       app_engine, settings, tokens: Tokens) -> None:
    """The same inbox as Stripe's: an event the domain refuses is acknowledged (Fleetbase does not retry it), kept
    with its reason under the shipment's tenant, listed to that tenant's admins only, and replayable."""
    _, fleetbase_id = await shipped(gql, http, shop, fake_stripe, app_engine, settings, owner_engine)
    async with owner_engine.begin() as connection:  # Fleetbase gave no tracking number when the order was made
        await connection.execute(text("update shipment set tracking_number = null where tenant_id = :t"),
                                 {"t": shop.tenant_id})
    body, signature = fake_fleetbase.webhook("order.dispatched", fleetbase_id, event_id="event_bad_tracking",
                                             tracking_number="T" * 101)
    response = await post(http, body, signature)
    assert response.status_code == 200
    assert response.json()["outcome"].startswith("refused: BAD_USER_INPUT: the tracking number")
    assert (await post(http, body, signature)).json()["duplicate"] is True
    assert await rows(owner_engine, "select status, tracking_number from shipment where tenant_id = :t",
                      t=shop.tenant_id) == [("created", None)]
    assert await rows(owner_engine, "select id from tracking_event where tenant_id = :t", t=shop.tenant_id) == []

    admin = tokens("tenant_admin", shop)
    listed = (await gql(OPS["admin/WebhookEvents"], {"status": "refused", "first": 10}, token=admin))["data"]
    event = next(e for e in listed["webhookEvents"]["nodes"] if e["eventId"] == "event_bad_tracking")
    assert (event["provider"], event["eventType"], event["status"], event["attempts"]) == (
        "fleetbase", "order.dispatched", "refused", 1)
    assert "the tracking number is not a text of at most 100 characters" in event["error"]
    store_admin = await gql(OPS["admin/WebhookEvents"], {"status": "refused", "first": 10},
                            token=tokens("store_admin", shop, stores=["store-0"]))
    assert store_admin["data"]["webhookEvents"]["totalCount"] == 0

    replayed = (await gql(OPS["admin/ReplayWebhookEvent"], {"id": event["id"]}, token=admin))["data"]
    assert (replayed["replayWebhookEvent"]["status"], replayed["replayWebhookEvent"]["attempts"]) == ("refused", 2)

    fixed, signature2 = fake_fleetbase.webhook("order.dispatched", fleetbase_id, tracking_number="TRK-1")
    assert (await post(http, fixed, signature2)).json()["outcome"] == "shipment picked_up"
    assert await rows(owner_engine, "select status, tracking_number from shipment where tenant_id = :t",
                      t=shop.tenant_id) == [("picked_up", "TRK-1")]
    processed = (await gql(OPS["admin/WebhookEvents"], {"status": "processed", "first": 10}, token=admin))["data"]
    assert {e["provider"] for e in processed["webhookEvents"]["nodes"]} == {"stripe", "fleetbase"}
