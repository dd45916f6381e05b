"""Subscriptions benchmark: N concurrent WebSocket subscribers on one store, events injected through the
Fleetbase webhook, fan-out latency and memory per connection.

    .venv/bin/python -m bench.subscriptions --subscribers 1000 --events 30 [--interval 0.2]

It starts `cityos serve` on its embedded defaults in a scratch data folder (one uvicorn worker, in-process broker),
creates shipments of the demo store directly in the database, connects N store-admin subscribers to
`storeOrderEvents`, then posts signed Fleetbase webhooks that move the shipments forward; every event reaches
every subscriber. By default the webhooks go back to back (each as soon as the previous one was answered), so an
event's latency includes the fan-out of the ones before it still in progress (a saturation measure);
`--interval S` paces them S seconds apart (each event's own latency). The subscribers run in this process: their
receiving (1,000 Python WebSocket clients) shares the machine with the server and is part of what is measured.
Results are printed and written to bench/results/subscriptions-<date>[-<label>].md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import asyncpg
import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-fleetbase-webhook-secret-0123456789"
STATUSES = ("order.dispatched", "order.updated", "order.completed")
SUBSCRIPTION = "subscription($s: ID!) { storeOrderEvents(storeId: $s) { type status shipmentId at } }"


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "CERBOS_URL", "REDIS_URL", "CITYOS_ENV"}}
    env.update(CITYOS_DATA_DIR=str(data_dir), CITYOS_PORT=str(port), LOG_LEVEL="warning",
               FLEETBASE_URL="http://127.0.0.1:9", FLEETBASE_API_KEY="flb_test_" + "b" * 32,
               CITYOS_FLEETBASE_WEBHOOK_SECRET=SECRET)
    process = subprocess.Popen([sys.executable, "-m", "cityos", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    assert process.stdout is not None
    while "demo key" not in output:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise RuntimeError(output)
        output += line
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process, output
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(output)


async def make_shipments(database_url: str, count: int) -> tuple[str, str, list[str]]:
    """(tenant slug, store id, Fleetbase order ids) of `count` shipments of the demo store."""
    connection = await asyncpg.connect(database_url)
    try:
        store = await connection.fetchrow("select s.id, s.tenant_id, t.slug from store s join tenant t "
                                          "on t.id = s.tenant_id where s.handle = 'demo-store'")
        fleetbase_ids = []
        for _ in range(count):
            order_id, vendor_order_id, shipment_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            fleetbase_id = f"order_bench_{uuid.uuid4().hex[:10]}"
            await connection.execute(
                "insert into orders (tenant_id, id, store_id, cart_id, email, currency_code, status, subtotal, "
                "discount_total, shipping_total, tax_total, total, payment_intent_id, shipping_address, "
                "shipping_option_code) values ($1, $2, $3, $4, 'bench@example.com', 'usd', 'paid', 1000, 0, 0, 0, "
                "1000, $5, '{}', 'standard')", store["tenant_id"], order_id, store["id"], uuid.uuid4(),
                f"pi_bench_{uuid.uuid4().hex}")
            await connection.execute(
                "insert into vendor_order (tenant_id, id, order_id, store_id, status, subtotal, discount_total, "
                "shipping_total, tax_total, total) values ($1, $2, $3, $4, 'paid', 1000, 0, 0, 0, 1000)",
                store["tenant_id"], vendor_order_id, order_id, store["id"])
            await connection.execute(
                "insert into shipment (tenant_id, id, vendor_order_id, order_id, store_id, status, fleetbase_order_id)"
                " values ($1, $2, $3, $4, $5, 'created', $6)", store["tenant_id"], shipment_id, vendor_order_id,
                order_id, store["id"], fleetbase_id)
            fleetbase_ids.append(fleetbase_id)
        return store["slug"], str(store["id"]), fleetbase_ids
    finally:
        await connection.close()


async def post_event(client: httpx.AsyncClient, status: str, fleetbase_id: str) -> None:
    """One signed Fleetbase webhook moving a shipment on."""
    envelope = {"id": f"event_{uuid.uuid4().hex[:13]}", "api_version": "2024-03-12", "event": status,
                "created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "data": {"id": fleetbase_id, "status": "started"}}
    body = json.dumps(envelope).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post("/webhooks/fleetbase", content=body, headers={"signature": signature})
    response.raise_for_status()


class Subscriber(asyncio.Protocol):
    """One graphql-transport-ws subscriber on a bare asyncio connection: the upgrade, masked client frames and the
    parsing of the server's unmasked text frames, nothing else. A general-purpose client (the `websockets`
    package) costs more CPU per message than the server's fan-out does, and on a shared 2-core machine it would
    be the client that is measured; this one stamps each `next` as its bytes arrive. While the events are
    measured it only keeps the bytes with their arrival time (`recording`) and parses them after the run: parsing
    1,000 subscribers' frames one after the other in this process would otherwise delay the stamps of the last
    ones by the client's own work."""

    def __init__(self, expected: int, done: asyncio.Event) -> None:
        self.received: list[tuple[str, float]] = []
        self.expected = expected
        self.done = done
        self.buffer = b""
        self.upgraded = False
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.error: str | None = None
        self.errors: list[str] = []
        self.recording = False  # while events are measured: bytes kept with their arrival time, parsed after
        self.chunks: list[tuple[bytes, float]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def send_text(self, message: dict[str, object]) -> None:
        payload = orjson.dumps(message)
        mask = os.urandom(4)
        length = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | length]) if length < 126 else
                                  bytes([0x80 | 126]) + length.to_bytes(2, "big") if length < 65536 else
                                  bytes([0x80 | 127]) + length.to_bytes(8, "big"))
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        assert self.transport is not None
        self.transport.write(header + mask + masked)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.recording:
            self.chunks.append((data, now))
            return
        self.parse(data, now)

    def replay(self) -> None:
        """Parse what arrived while recording, each frame with the arrival time of the bytes that completed it."""
        self.recording = False
        chunks, self.chunks = self.chunks, []
        for data, at in chunks:
            self.parse(data, at)

    def parse(self, data: bytes, now: float) -> None:
        self.buffer += data
        if not self.upgraded:
            head, separator, rest = self.buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.error = head.decode(errors="replace")
                self.accepted.set_exception(RuntimeError(self.error))
                return
            self.upgraded, self.buffer = True, rest
            self.accepted.set_result(None)
        while len(self.buffer) >= 2:
            length = self.buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, offset = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < offset + length:
                return
            opcode, payload = self.buffer[0] & 0x0F, self.buffer[offset:offset + length]
            self.buffer = self.buffer[offset + length:]
            if opcode == 0x1:
                self.message(orjson.loads(payload), now)
            elif opcode == 0x8 and not self.acked.done():
                self.acked.set_exception(RuntimeError(f"closed: {payload!r}"))

    def message(self, message: dict[str, object], now: float) -> None:
        kind = message["type"]
        if kind == "connection_ack":
            self.acked.set_result(None)
        elif kind == "ping":
            self.send_text({"type": "pong"})
        elif kind == "next":
            payload = message["payload"]
            assert isinstance(payload, dict)
            if payload.get("errors"):  # e.g. UNAVAILABLE when the PDP timed out: counted, not timed
                self.errors.append(str(payload["errors"])[:300])
                self.received.append(("error", now))
            else:
                event = payload["data"]["storeOrderEvents"]
                if event["shipmentId"] is None:  # the order's own event beside a shipment's (e.g. fulfilled):
                    return  # delivered like the others, not one of the timed webhook events
                self.received.append((f"{event['shipmentId']}:{event['status']}", now))
            if len(self.received) >= self.expected and not any(s.recording for s in SUBSCRIBERS) and all(
                    len(s.received) >= s.expected for s in SUBSCRIBERS):
                self.done.set()

    async def run(self, port: int, token: str, store_global_id: str, connected: list[float]) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, "127.0.0.1", port)
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write((f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode())
        await asyncio.wait_for(self.accepted, 30)
        self.send_text({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        await asyncio.wait_for(self.acked, 30)
        self.send_text({"type": "subscribe", "id": "1", "payload": {
            "query": SUBSCRIPTION, "variables": {"s": store_global_id}}})
        connected.append(time.perf_counter() - started)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


SUBSCRIBERS: list[Subscriber] = []


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


async def run(subscribers: int, events: int, port: int, interval: float = 0.0) -> str:
    from cityos.auth import dev_issuer
    from cityos.graphql.core.relay import to_global_id

    with tempfile.TemporaryDirectory(prefix="cityos-bench-") as scratch:
        data_dir = Path(scratch)
        process, output = start_server(data_dir, port)
        server = psutil.Process(process.pid)
        try:
            pg_port = re.search(r"127\.0\.0\.1:(\d+), data in", output)
            assert pg_port, output
            password = (data_dir / "postgres" / "superuser-password").read_text().strip()
            database_url = f"postgresql://postgres:{password}@127.0.0.1:{pg_port.group(1)}/cityos"
            shipments = max(1, events // len(STATUSES))
            slug, store_id, fleetbase_ids = await make_shipments(database_url, shipments + 1)
            warm_up_id, fleetbase_ids = fleetbase_ids[-1], fleetbase_ids[:-1]  # its events are not measured
            token = dev_issuer.mint(data_dir, dev_issuer.keycloak_shaped_claims(
                subject="bench-admin", roles=["tenant_admin"], tenant=slug, stores=[], vendor=None, company=None,
                ttl_seconds=3600, client_id="medusa-backend"))
            rss_before = server.memory_info().rss
            expected = shipments * len(STATUSES)
            connected: list[float] = []
            done = asyncio.Event()
            for _ in range(subscribers):
                subscriber = Subscriber(expected, done)
                SUBSCRIBERS.append(subscriber)
                await subscriber.run(port, token, to_global_id("Store", store_id), connected)
            connect_total = sum(connected)
            await asyncio.sleep(1.0)
            rss_connected = server.memory_info().rss
            send_times: list[float] = []  # in order; each subscriber receives the events in the same order
            answered_times: list[float] = []  # the webhook's answer: the event was committed and published
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                # Warm-up, not measured: one shipment's events reach every subscriber first (the first event
                # prepares statements, fetches the live decisions' query plan and runs the group's first
                # execution); its fan-out is reported on its own.
                warm_up_sent = []
                for status in STATUSES:
                    warm_up_sent.append(time.time())
                    await post_event(client, status, warm_up_id)
                    await asyncio.sleep(max(interval, 0.2))
                for _ in range(100):
                    if all(len(s.received) >= len(STATUSES) for s in SUBSCRIBERS):
                        break
                    await asyncio.sleep(0.1)
                warm_up = [(received_at - warm_up_sent[index]) * 1000 for subscriber in SUBSCRIBERS
                           for index, (_, received_at) in enumerate(subscriber.received[:len(STATUSES)])]
                for subscriber in SUBSCRIBERS:
                    subscriber.received.clear()
                    subscriber.recording = True
                gc.collect()
                gc.disable()  # the client's own collections would pause its stamping, not the server
                for status in STATUSES:
                    for fleetbase_id in fleetbase_ids:
                        send_times.append(time.time())
                        await post_event(client, status, fleetbase_id)
                        answered_times.append(time.time())
                        if interval:
                            await asyncio.sleep(interval)
            for _ in range(600):  # until every subscriber has all its bytes (counted cheaply), then parse them
                if all(b"".join(chunk for chunk, _ in s.chunks).count(b'"next"') >= s.expected for s in SUBSCRIBERS):
                    break
                await asyncio.sleep(0.5)
            gc.enable()
            for subscriber in SUBSCRIBERS:
                subscriber.replay()
            await asyncio.wait_for(done.wait(), 300)
            elapsed = time.time() - send_times[0]
            for subscriber in SUBSCRIBERS:
                subscriber.close()
            latencies = [(received_at - send_times[index]) * 1000 for subscriber in SUBSCRIBERS
                         for index, (what, received_at) in enumerate(subscriber.received) if what != "error"]
            errors = [error for subscriber in SUBSCRIBERS for error in subscriber.errors]
            webhook = [(answered - sent) * 1000 for sent, answered in zip(send_times, answered_times, strict=True)]
            after_answer = [(received_at - answered_times[index]) * 1000 for subscriber in SUBSCRIBERS
                            for index, (what, received_at) in enumerate(subscriber.received) if what != "error"]
            per_connection = (rss_connected - rss_before) / subscribers
            deliveries = sum(len(s.received) for s in SUBSCRIBERS)
            lines = [
                f"# Subscriptions benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", "",
                f"- subscribers: {subscribers} on one store (storeOrderEvents), one uvicorn worker, in-process broker",
                f"- events injected through POST /webhooks/fleetbase: {expected}, "
                + (f"{interval * 1000:.0f} ms apart" if interval else "back to back")
                + f"; deliveries: {deliveries} in {elapsed:.2f} s ({deliveries / elapsed:.0f}/s)",
                "- client: bare asyncio WebSocket connections on uvloop in the benchmark process (each `next` stamped "
                "on arrival, parsed after the run)",
                f"- connect + init + subscribe: mean {connect_total / subscribers * 1000:.1f} ms, "
                f"p99 {percentile(connected, 0.99) * 1000:.1f} ms",
                f"- fan-out latency (webhook sent → event received): p50 {percentile(latencies, 0.5):.1f} ms, "
                f"p99 {percentile(latencies, 0.99):.1f} ms",
                f"- of which the webhook itself (sent → answered: inbox, shipment update, commit, publish): "
                f"p50 {percentile(webhook, 0.5):.1f} ms, p99 {percentile(webhook, 0.99):.1f} ms; "
                f"after the answer → received: p50 {percentile(after_answer, 0.5):.1f} ms, "
                f"p99 {percentile(after_answer, 0.99):.1f} ms",
                f"- warm-up before the measured events (not in the figures above): {len(STATUSES)} events of "
                f"another shipment, fan-out p50 {percentile(warm_up, 0.5):.1f} ms, max {max(warm_up):.1f} ms",
                f"- events answered with errors instead: {len(errors)}"
                + (f" (first: {errors[0]})" if errors else ""),
                f"- server memory per connection: {per_connection / 1024:.1f} KiB "
                f"(RSS {rss_before / 2**20:.0f} → {rss_connected / 2**20:.0f} MiB)",
            ]
            return "\n".join(lines) + "\n"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between events (0: back to back)")
    parser.add_argument("--label", default="", help="suffix of the results file")
    arguments = parser.parse_args()
    import uvloop  # the server's loop (uvicorn picks it): the client's 1,000 sockets on the same fast loop

    report = uvloop.run(run(arguments.subscribers, arguments.events, arguments.port, arguments.interval))
    print(report)
    suffix = f"-{arguments.label}" if arguments.label else ""
    out = ROOT / "bench" / "results" / f"subscriptions-{datetime.now(UTC):%Y-%m-%d}{suffix}.md"
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
