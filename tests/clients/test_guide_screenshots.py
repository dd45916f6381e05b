"""The guides' GraphiQL screenshots (docs/guides/, docs/screenshots/), taken by Debian's chromium against the real
server with the operation documents the guides show: each run proves the guides' operations work for their role
in the browser; CITYOS_UPDATE_SCREENSHOTS=1 also writes the pictures into docs/screenshots/."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from cityos.graphql.core.relay import to_global_id
from tests.commerce_flow import Shopper, paid_order, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens
from tests.fakes.stripe import FakeStripe
from tests.integration.test_b2b import Acme, make_company
from tests.operations import all_operations

__all__ = ["shop"]

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).parent / "browser"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def shots(shop: TenantWorld, tokens: Tokens, vendor_id: str, acme: Acme) -> list[dict[str, Any]]:
    operations = all_operations()
    admin = {"Authorization": f"Bearer {tokens('store_admin', shop, stores=['store-0'])}"}
    vendor = {"Authorization": f"Bearer {tokens('vendor_admin', shop, vendor='cedar-pantry')}"}
    guest = {"x-publishable-api-key": shop.key}
    store = to_global_id("Store", shop.store_id)
    return [
        {"name": "storefront-products", "query": operations["storefront/Products"], "headers": guest,
         "variables": {"first": 3}},
        {"name": "admin-orders", "query": operations["admin/StoreOrders"], "headers": admin,
         "variables": {"first": 5}},
        {"name": "vendor-orders", "query": operations["vendor/VendorOrders"], "headers": vendor,
         "variables": {"first": 5}},
        {"name": "vendor-products", "query": operations["vendor/VendorProducts"], "headers": vendor,
         "variables": {"storeId": store, "filter": {"vendorId": vendor_id}}},
        {"name": "b2b-quotes", "query": operations["storefront/Quotes"], "variables": {"first": 5},
         "headers": {**guest, "Authorization": f"Bearer {acme.buyer}"}},
        {"name": "b2b-company", "query": operations["storefront/Company"], "variables": {"id": acme.id},
         "headers": {**guest, "Authorization": f"Bearer {acme.admin}"}},
    ]


async def test_the_guides_screenshots_run_their_operations_in_the_browser(
        server: Server, gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe,
        tokens: Tokens, tmp_path: Path, owner_engine) -> None:
    node = shutil.which("node")
    assert node, "node is required"
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 2})
    async with owner_engine.connect() as connection:
        vendor_pk = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = "
                                                   "'cedar-pantry'"), {"t": shop.tenant_id})).scalar_one()
    acme = await make_company(gql, tokens, shop)
    await gql(all_operations()["storefront/RequestQuote"], {"input": {"lines": [
        {"sku": "NW-SOCK-1", "quantity": 40}, {"sku": "CP-COFFEE-1LB", "quantity": 30}]}}, token=acme.buyer,
        key=shop.key)
    planned = shots(shop, tokens, to_global_id("Vendor", vendor_pk), acme)
    process = await asyncio.create_subprocess_exec(  # the server runs on this event loop: never block it
        node, str(BROWSER_DIR / "screenshots.mjs"), server.url, str(tmp_path), json.dumps(planned), cwd=BROWSER_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, stderr.decode()
    results = {line["name"]: line["response"] for line in map(json.loads, stdout.decode().splitlines())}
    assert set(results) == {shot["name"] for shot in planned}
    for name, response in results.items():
        assert "errors" not in response, (name, response)
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert results["admin-orders"]["data"]["orders"]["totalCount"] >= 1
    assert results["vendor-orders"]["data"]["vendorOrders"]["totalCount"] >= 1
    if os.environ.get("CITYOS_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in results:
            shutil.copyfile(tmp_path / f"{name}.png", SCREENSHOTS / f"{name}.png")
    # Every picture the guides show is one this test takes.
    shown = {match for guide in (ROOT / "docs" / "guides").glob("*.md")
             for match in re.findall(r"\.\./screenshots/([a-z-]+)\.png", guide.read_text())}
    assert shown <= set(results), shown - set(results)
    assert all((SCREENSHOTS / f"{name}.png").is_file() for name in shown)
