"""Live tracking over graphql-transport-ws with a real WebSocket client against uvicorn: authorization at connect
and per event, events only after commit, two app instances sharing one Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets
from sqlalchemy import text

from cityos.app import create_app
from cityos.db.engines import create_app_engine, tenant_transaction
from cityos.jobs.outbox import dispatch_outbox
from cityos.services import Services
from tests.commerce_flow import OPS, Shopper, paid_order, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, serve_asgi
from tests.fakes.fleetbase import FakeFleetbase
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]

VENDOR_EVENTS = "subscription { vendorOrderEvents { type status orderId vendorOrderId } }"
STORE_EVENTS = "subscription($s: ID!) { storeOrderEvents(storeId: $s) { type status orderStatus orderId } }"
ORDER_TRACKING = "subscription($o: ID!) { orderTracking(orderId: $o) { type status vendorOrderId } }"


async def drain(client: Client) -> None:
    """Read until the server closes the connection."""
    while True:
        await client.receive()


def error_codes_of(message: dict[str, Any]) -> list[str]:
    """Errors of a subscription arrive as `next` with `errors` (execution) or as `error` (validation)."""
    errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors", [])
    return [error.get("extensions", {}).get("code") for error in errors]


class Client:
    """A graphql-transport-ws client: init with the token, subscribe, read `next` messages."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.next_id = 0

    @classmethod
    async def connect(cls, base_url: str, token: str | None) -> Client:
        socket = await websockets.connect(base_url.replace("http://", "ws://") + "/graphql",
                                          subprotocols=["graphql-transport-ws"])
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await socket.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
        ack = orjson.loads(await asyncio.wait_for(socket.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        return cls(socket)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self.next_id += 1
        operation = str(self.next_id)
        await self.socket.send(orjson.dumps({"type": "subscribe", "id": operation, "payload": {
            "query": query, "variables": variables or {}}}).decode())
        await asyncio.sleep(0.2)  # the subscription reaches the broker
        return operation

    async def receive(self, seconds: float = 5) -> dict[str, Any]:
        while True:
            message = orjson.loads(await asyncio.wait_for(self.socket.recv(), seconds))
            if message["type"] == "ping":
                await self.socket.send(orjson.dumps({"type": "pong"}).decode())
                continue
            return message

    async def nothing_for(self, seconds: float) -> bool:
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message {message}")

    async def close(self) -> None:
        await self.socket.close()


async def test_a_bad_or_missing_token_closes_with_4403(server: Server, keycloak) -> None:
    for payload in ({}, {"Authorization": "Bearer not-a-token"}):
        socket = await websockets.connect(server.url.replace("http://", "ws://") + "/graphql",
                                          subprotocols=["graphql-transport-ws"])
        await socket.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403


async def test_vendors_store_admins_and_customers_get_their_events(server: Server, gql: GraphQLClient,
                                                                   http: httpx.AsyncClient, shop: TenantWorld,
                                                                   fake_stripe: FakeStripe, tokens: Tokens) -> None:
    from cityos.graphql.core.relay import to_global_id

    lumen = await Client.connect(server.url, tokens("vendor_user", shop, vendor="lumen-home"))
    cedar = await Client.connect(server.url, tokens("vendor_user", shop, vendor="cedar-pantry"))
    admin = await Client.connect(server.url, tokens("store_admin", shop, stores=["store-0"]))
    try:
        lumen_op = await lumen.subscribe(VENDOR_EVENTS)
        cedar_op = await cedar.subscribe(VENDOR_EVENTS)
        admin_op = await admin.subscribe(STORE_EVENTS, {"s": to_global_id("Store", shop.store_id)})
        order = await paid_order(Shopper(gql, shop, tokens("customer", shop, subject="ada")), http, fake_stripe,
                                 {"LU-CANDLE": 1})
        message = await lumen.receive()
        assert message["id"] == lumen_op
        assert message["payload"]["data"]["vendorOrderEvents"]["type"] == "order.created"
        assert message["payload"]["data"]["vendorOrderEvents"]["orderId"] == order
        store_message = await admin.receive()
        assert store_message["id"] == admin_op
        assert store_message["payload"]["data"]["storeOrderEvents"]["status"] == "paid"
        assert store_message["payload"]["data"]["storeOrderEvents"]["orderStatus"] == "PAID"
        assert await cedar.nothing_for(1.0)  # another vendor's order
        assert cedar_op

        customer = await Client.connect(server.url, tokens("customer", shop, subject="ada"))
        stranger = await Client.connect(server.url, tokens("customer", shop, subject="eve"))
        try:
            await customer.subscribe(ORDER_TRACKING, {"o": order})
            refused = await stranger.subscribe(ORDER_TRACKING, {"o": order})
            error = await stranger.receive()
            assert error["id"] == refused
            assert error_codes_of(error) == ["FORBIDDEN"], error
            body = await gql(OPS["admin/UpdateOrderStatus"], {"id": order, "status": "FULFILLED"},
                             token=tokens("tenant_admin", shop))
            assert "errors" not in body, body
            update = await customer.receive()
            assert update["payload"]["data"]["orderTracking"]["status"] == "fulfilled"
            refused_change = await gql(OPS["admin/UpdateOrderStatus"], {"id": order, "status": "PAID"},
                                       token=tokens("tenant_admin", shop))
            assert refused_change["errors"][0]["extensions"]["code"] == "INVALID_STATE_TRANSITION"
            assert await customer.nothing_for(1.0)  # a rolled-back change publishes nothing
        finally:
            await customer.close()
            await stranger.close()
    finally:
        for client in (lumen, cedar, admin):
            await client.close()


SHIPMENT_TRACKING = ("subscription($s: ID!) { shipmentTracking(shipmentId: $s) "
                     "{ type status shipmentStatus orderStatus trackingNumber shipmentId } }")


async def test_live_shipment_events_carry_the_tracking_number(server: Server, settings, database_url: str,
                                                              gql: GraphQLClient, http: httpx.AsyncClient,
                                                              shop: TenantWorld, fake_stripe: FakeStripe,
                                                              fake_fleetbase: FakeFleetbase, owner_engine,
                                                              tokens: Tokens) -> None:
    from cityos.graphql.core.relay import to_global_id

    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-THROW-OAT": 1})
    engine = create_app_engine(database_url, pool_size=2)
    try:
        async with httpx.AsyncClient() as client:
            await dispatch_outbox(engine, settings, client)  # creates the Fleetbase order and our shipment
    finally:
        await engine.dispose()
    async with owner_engine.connect() as connection:
        shipment_id, fleetbase_id, tracking = (await connection.execute(text(
            "select id, fleetbase_order_id, tracking_number from shipment where tenant_id = :t"),
            {"t": shop.tenant_id})).one()
    assert tracking
    watcher = await Client.connect(server.url, tokens("vendor_user", shop, vendor="lumen-home"))
    try:
        await watcher.subscribe(SHIPMENT_TRACKING, {"s": to_global_id("Shipment", shipment_id)})
        body, signature = fake_fleetbase.webhook("order.dispatched", fleetbase_id)
        response = await http.post("/webhooks/fleetbase", content=body,
                                   headers={"signature": signature, "content-type": "application/json"})
        assert response.json()["outcome"] == "shipment picked_up", response.text
        event = (await watcher.receive())["payload"]["data"]["shipmentTracking"]
        assert event == {"type": "shipment.updated", "status": "picked_up", "shipmentStatus": "PICKED_UP",
                         "orderStatus": None, "trackingNumber": tracking,
                         "shipmentId": to_global_id("Shipment", shipment_id)}
    finally:
        await watcher.close()


async def test_a_webhook_on_one_instance_reaches_a_subscriber_on_another(server: Server, settings, gql: GraphQLClient,
                                                                         http: httpx.AsyncClient, shop: TenantWorld,
                                                                         fake_stripe: FakeStripe,
                                                                         tokens: Tokens) -> None:
    assert settings.REDIS_URL
    other_services = Services.start(settings)
    uvicorn_server, task, port = await serve_asgi(create_app(settings, other_services))
    try:
        subscriber = await Client.connect(f"http://127.0.0.1:{port}",
                                          tokens("vendor_admin", shop, vendor="cedar-pantry"))
        try:
            await subscriber.subscribe(VENDOR_EVENTS)
            # the order is paid through the first instance's webhook endpoint
            await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-HONEY-12": 1})
            message = await subscriber.receive()
            assert message["payload"]["data"]["vendorOrderEvents"]["type"] == "order.created"
        finally:
            await subscriber.close()
    finally:
        uvicorn_server.should_exit = True
        await task
        await other_services.close()


async def test_the_subscription_ends_when_the_token_expires(server: Server, keycloak, shop: TenantWorld) -> None:
    short = keycloak.sign(keycloak.claims(roles=["vendor_user"], tenant=shop.slug, vendor="lumen-home", ttl=2))
    client = await Client.connect(server.url, short)
    try:
        operation = await client.subscribe(VENDOR_EVENTS)
        message = await client.receive(seconds=40)  # leeway of the verifier does not extend the subscription
        assert message["id"] == operation
        assert error_codes_of(message) == ["UNAUTHENTICATED"], message
    finally:
        await client.close()



async def test_subscriptions_per_connection_are_limited(server: Server, shop: TenantWorld, tokens: Tokens) -> None:
    from cityos.http.graphql import MAX_SUBSCRIPTIONS_PER_CONNECTION

    client = await Client.connect(server.url, tokens("vendor_user", shop, vendor="lumen-home"))
    try:
        for _ in range(MAX_SUBSCRIPTIONS_PER_CONNECTION):
            await client.socket.send(orjson.dumps({"type": "subscribe", "id": str(client.next_id + 1), "payload": {
                "query": VENDOR_EVENTS}}).decode())
            client.next_id += 1
        over = await client.subscribe(VENDOR_EVENTS)
        message = await client.receive()
        assert message["id"] == over
        assert message["type"] == "error"
        assert "limit" in message["payload"][0]["message"].lower()
    finally:
        await client.close()


async def test_a_subscriber_that_falls_behind_is_cut_off_with_4413(settings, shop: TenantWorld,
                                                                   tokens: Tokens) -> None:
    small = settings.model_copy(update={"REDIS_URL": None, "CITYOS_SUBSCRIBER_QUEUE": 2})
    services = Services.start(small)
    uvicorn_server, task, port = await serve_asgi(create_app(small, services))
    try:
        vendor = tokens("vendor_user", shop, vendor="lumen-home")
        client = await Client.connect(f"http://127.0.0.1:{port}", vendor)
        await client.subscribe(VENDOR_EVENTS)
        async with tenant_transaction(services.app_engine, shop.tenant_id) as connection:
            vendor_id = (await connection.execute(text("select id from vendor where handle = 'lumen-home'"))).scalar()
        for index in range(10):  # published in one go: the subscription's queue of 2 overflows
            await services.broker.publish(f"vendor:{vendor_id}", {
                "type": "order.created", "tenant_id": str(shop.tenant_id), "store_id": str(shop.store_id),
                "order_id": str(index), "vendor_id": str(vendor_id), "status": "paid", "at": "2026-11-26T00:00:00"})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await drain(client)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4413
    finally:
        uvicorn_server.should_exit = True
        await task
        await services.close()


def live_executions() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("cityos_live_executions_total") or 0.0


def frames_written() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("cityos_live_frames_written_total") or 0.0


async def test_subscribers_of_one_shape_share_one_execution_per_event(settings, shop: TenantWorld, keycloak,
                                                                      tokens: Tokens) -> None:
    """Twelve connections of one vendor user (same token, same document and variables) are one group: each event
    is executed and encoded once and reaches all twelve; a second user (another principal) is a group of its own,
    and a member that completes leaves the others undisturbed."""
    in_process = settings.model_copy(update={"REDIS_URL": None})
    services = Services.start(in_process)
    uvicorn_server, task, port = await serve_asgi(create_app(in_process, services))
    clients: list[Client] = []
    try:
        url = f"http://127.0.0.1:{port}"
        shared = tokens("vendor_user", shop, vendor="lumen-home", subject="vendor-user-a")
        clients = list(await asyncio.gather(*(Client.connect(url, shared) for _ in range(12))))
        other = await Client.connect(url, tokens("vendor_user", shop, vendor="lumen-home", subject="vendor-user-b"))
        clients.append(other)
        await asyncio.gather(*(client.subscribe(VENDOR_EVENTS) for client in clients))
        async with tenant_transaction(services.app_engine, shop.tenant_id) as connection:
            vendor_id = (await connection.execute(text("select id from vendor where handle = 'lumen-home'"))).scalar()
        assert services.broker.subscriber_count(f"vendor:{vendor_id}") == 2  # one per group, not per socket
        before, written = live_executions(), frames_written()
        for index in range(3):
            await services.broker.publish(f"vendor:{vendor_id}", {
                "type": "order.created", "tenant_id": str(shop.tenant_id), "store_id": str(shop.store_id),
                "order_id": f"00000000-0000-0000-0000-00000000000{index}", "vendor_id": str(vendor_id),
                "vendor_order_id": None, "status": "paid", "at": "2026-11-26T00:00:00+00:00"})
            messages = [await client.receive() for client in clients]
            assert {message["type"] for message in messages} == {"next"}
            payloads = {orjson.dumps(message["payload"]) for message in messages}
            assert len(payloads) == 1, payloads  # the same result for every subscriber
        assert live_executions() - before == 3 * 2  # per event: one execution per group (2), not per socket (13)
        # every frame went out encoded once, written to the sockets in the broadcast (cityos.http.frames)
        assert frames_written() - written == 3 * 13

        await clients[0].socket.send(orjson.dumps({"type": "complete", "id": "1"}).decode())
        await clients[0].socket.send(orjson.dumps({"type": "ping"}).decode())
        assert (await clients[0].receive())["type"] == "pong"  # messages are handled in order: complete is done
        await services.broker.publish(f"vendor:{vendor_id}", {
            "type": "order.created", "tenant_id": str(shop.tenant_id), "store_id": str(shop.store_id),
            "order_id": "00000000-0000-0000-0000-000000000009", "vendor_id": str(vendor_id),
            "vendor_order_id": None, "status": "paid", "at": "2026-11-26T00:00:00+00:00"})
        for client in clients[1:]:
            assert (await client.receive())["type"] == "next"
        assert await clients[0].nothing_for(0.3)
    finally:
        for client in clients:
            await client.close()
        uvicorn_server.should_exit = True
        await task
        await services.close()
