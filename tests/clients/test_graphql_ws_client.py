"""Third-party WebSocket clients against the real server: the npm `graphql-ws` client (node, with `ws`) receives a
store's order event and completes cleanly, and every frame the server sends is a text frame."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from cityos.graphql.core.relay import to_global_id
from tests.commerce_flow import Shopper, paid_order, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]

CLIENT_DIR = Path(__file__).parent / "graphql-ws"
STORE_EVENTS = "subscription($s: ID!) { storeOrderEvents(storeId: $s) { type status orderId } }"


def node() -> str:
    executable = shutil.which("node")
    assert executable, "node is required (a fresh machine has node 20 + npm)"
    assert (CLIENT_DIR / "node_modules" / "graphql-ws").is_dir(), \
        "the test client is not installed: `make test` runs npm ci in tests/clients/graphql-ws"
    return executable


async def read_line(process: asyncio.subprocess.Process, seconds: float = 15) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), seconds)
    assert line, "the node client exited early"
    message: dict[str, Any] = orjson.loads(line)
    return message


async def test_the_npm_graphql_ws_client_receives_a_store_order_event(server: Server, gql: GraphQLClient,
                                                                      http: httpx.AsyncClient, shop: TenantWorld,
                                                                      fake_stripe: FakeStripe,
                                                                      tokens: Tokens) -> None:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        node(), str(CLIENT_DIR / "subscribe.mjs"), server.url.replace("http://", "ws://") + "/graphql",
        tokens("store_admin", shop, stores=["store-0"]), to_global_id("Store", shop.store_id), "1",
        cwd=CLIENT_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert (await read_line(process))["type"] == "subscribed"
        assert (await read_line(process)) == {"type": "connected"}
        await asyncio.sleep(0.5)  # the subscribe message reaches the server and the broker
        order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
        lines = [await read_line(process)]
        while lines[-1]["type"] != "done":
            lines.append(await read_line(process))
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, (lines, stderr.decode())
    assert lines[0]["type"] == "next", lines
    event = lines[0]["payload"]["data"]["storeOrderEvents"]
    assert event == {"type": "order.created", "status": "paid", "orderId": order}, lines
    assert "errors" not in lines[0]["payload"], lines
    assert not [line for line in lines if line["type"] == "error"], lines
    # the client completed its operation and closed the socket normally
    assert {"type": "closed", "code": 1000, "reason": "Normal Closure"} in lines, lines
    assert lines[-1] == {"type": "done", "events": 1}
    assert time.monotonic() - started < 30


async def test_every_websocket_frame_is_text(server: Server, gql: GraphQLClient, http: httpx.AsyncClient,
                                             shop: TenantWorld, fake_stripe: FakeStripe, tokens: Tokens) -> None:
    received: list[str | bytes] = []
    async with websockets.connect(server.url.replace("http://", "ws://") + "/graphql",
                                  subprotocols=["graphql-transport-ws"]) as socket:
        token = tokens("store_admin", shop, stores=["store-0"])
        await socket.send(orjson.dumps({"type": "connection_init",
                                        "payload": {"Authorization": f"Bearer {token}"}}).decode())
        received.append(await asyncio.wait_for(socket.recv(), 5))
        await socket.send(orjson.dumps({"type": "ping"}).decode())
        received.append(await asyncio.wait_for(socket.recv(), 5))
        await socket.send(orjson.dumps({"type": "subscribe", "id": "1", "payload": {
            "query": STORE_EVENTS, "variables": {"s": to_global_id("Store", shop.store_id)}}}).decode())
        await socket.send(orjson.dumps({"type": "subscribe", "id": "2", "payload": {
            "query": "subscription { nope }"}}).decode())
        received.append(await asyncio.wait_for(socket.recv(), 5))  # the validation error of "2"
        await asyncio.sleep(0.3)
        await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
        received.append(await asyncio.wait_for(socket.recv(), 5))  # next of "1"
    assert all(isinstance(message, str) for message in received), [type(message) for message in received]
    types = [orjson.loads(message)["type"] for message in received]
    assert types == ["connection_ack", "pong", "error", "next"], received
