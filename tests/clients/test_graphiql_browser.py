"""GraphiQL in Debian's chromium (driven by npm playwright-core) against the real server: it renders from our own
assets with no request leaving 127.0.0.1, runs a query with the prefilled development header, and streams a
subscription over text frames. Screenshots go to the test's tmp dir (and to $CITYOS_SCREENSHOT_DIR if set)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from cityos.config import Settings
from cityos.graphql.core.relay import to_global_id
from tests.commerce_flow import Shopper, paid_order, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]

BROWSER_DIR = Path(__file__).parent / "browser"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def demo_key(settings: Settings, shop: TenantWorld) -> Iterator[str]:
    """The shop's key where `cityos seed` keeps the demo store's key, so the page prefills it (development)."""
    path = settings.CITYOS_DATA_DIR / "demo-publishable-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(shop.key + "\n")
    yield shop.key
    path.unlink()


async def read_line(process: asyncio.subprocess.Process, seconds: float = 60) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), seconds)
    if not line:
        assert process.stderr is not None
        raise AssertionError("the browser script exited early: " + (await process.stderr.read()).decode())
    message: dict[str, Any] = orjson.loads(line)
    return message


async def test_graphiql_renders_offline_runs_a_query_and_streams_a_subscription(
        server: Server, gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, demo_key: str,
        fake_stripe: FakeStripe, tokens: Tokens, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is required"
    assert CHROMIUM.is_file(), "chromium is required: `make test` installs Debian's chromium"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), \
        "`make test` runs npm ci in tests/clients/browser"
    screenshot = tmp_path / "graphiql.png"
    subscription_headers = orjson.dumps({"x-publishable-api-key": demo_key,
                                         "Authorization": f"Bearer {tokens('store_admin', shop, stores=['store-0'])}"})
    query = f'subscription {{ storeOrderEvents(storeId: "{to_global_id("Store", shop.store_id)}") ' \
            "{ type status orderId } }"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        node, str(BROWSER_DIR / "graphiql.mjs"), server.url, str(screenshot), query, subscription_headers.decode(),
        cwd=BROWSER_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        ready = await read_line(process)
        assert ready["type"] == "ready", ready
        assert ready["title"] == "CityOS Commerce · GraphiQL"
        assert orjson.loads(ready["headers"]) == {"x-publishable-api-key": demo_key}  # prefilled in development
        result = await read_line(process)
        assert result == {"type": "result", "response": {"data": {"currentStore": {"name": "Store 0 of " + shop.slug}}}}
        assert (await read_line(process))["type"] == "subscribing"
        await asyncio.sleep(0.5)  # the subscribe message reaches the broker
        order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
        event = await read_line(process)
        assert event["type"] == "event", event
        summary = await read_line(process)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert event["response"]["data"]["storeOrderEvents"] == {"type": "order.created", "status": "paid",
                                                              "orderId": order}, event
    # offline: every request and WebSocket stayed on the test server's host
    assert summary["requests"], summary
    hosts = {urlsplit(url).hostname for url in summary["requests"] + summary["websockets"]
             if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, summary["requests"]
    assert any("/graphiql/assets/" in url and url.endswith("/graphiql.js") for url in summary["requests"])
    assert summary["websockets"] == [server.url.replace("http://", "ws://") + "/graphql"]
    assert summary["frames"] and all(frame["text"] for frame in summary["frames"]), summary["frames"]
    assert not summary["consoleErrors"], summary["consoleErrors"]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    if target := os.environ.get("CITYOS_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in tmp_path.glob("graphiql*.png"):
            shutil.copy(path, Path(target) / path.name)
    assert time.monotonic() - started < 90
